"""One recipe trained with several seeds, and what the runs agree on: a difference smaller than
the spread between seeds can be luck. Two protocols: the lesson's (the test accuracy after the
last epoch) and early stopping's (the test accuracy of the epoch with the best validation
accuracy: the epoch is chosen without looking at the test set)."""

from ..training import final_metrics


def _stats(values):
    return {
        "values": values,
        "mean": round(sum(values) / len(values), 4),
        "min": min(values),
        "max": max(values),
    }


def seed_summary(histories):
    """What several runs of one recipe (one history per seed, with validation metrics) agree on:
    for the final test accuracy, the test loss, the train-test gap, and the test accuracy at the
    best validation epoch, the value of each run and their mean, min and max; and the epoch that
    validation chose in each run."""
    if not histories or isinstance(histories, dict):
        raise TypeError("seed_summary: histories must be a non-empty list of fit histories")
    metrics = [final_metrics(h) for h in histories]
    if any("best_epoch" not in m for m in metrics):
        raise ValueError("seed_summary: every history needs validation metrics (fit's val_loader)")
    summary = {"runs": len(histories), "best_epoch": [m["best_epoch"] for m in metrics]}
    for name in ("test_acc", "test_loss", "gap", "test_acc_at_best"):
        summary[name] = _stats([m[name] for m in metrics])
    return summary


def seed_table(histories, seeds):
    """Print one row per recipe ({name: [history per seed]}): mean and min-max over the seeds of
    the final epoch's test accuracy, test loss and train-test gap, and the test accuracy at each
    run's best validation epoch (with the epochs chosen). Returns {name: seed_summary}."""
    seeds = list(seeds)
    summaries = {}
    for name, runs in histories.items():
        if len(runs) != len(seeds):
            raise ValueError(f"seed_table: {name!r} has {len(runs)} runs for {len(seeds)} seeds")
        summaries[name] = seed_summary(runs)
    print(
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}): "
        "mean (min to max)"
    )
    print(f"{'':<18}{'at the last epoch':<66}at the best validation epoch")
    columns = ("test acc %", 21), ("test loss", 24), ("gap (points)", 21), ("test acc %", 21)
    print(" " * 18 + "".join(f"{title:<{width}}" for title, width in columns) + "epochs")
    for name, s in summaries.items():
        cells = [
            f"{s[k]['mean']:{f}} ({s[k]['min']:{f}} to {s[k]['max']:{f}})"
            for k, f in (
                ("test_acc", ".1f"),
                ("test_loss", ".3f"),
                ("gap", ".1f"),
                ("test_acc_at_best", ".1f"),
            )
        ]
        epochs = ", ".join(map(str, s["best_epoch"]))
        print(f"{name:<18}{cells[0]:<21}{cells[1]:<24}{cells[2]:<21}{cells[3]:<21}{epochs}")
    if len(seeds) == 1:
        print("One seed: a difference of a point or two can be luck. SEEDS = 3 shows the spread.")
    return summaries
