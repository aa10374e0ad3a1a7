"""One recipe trained with several seeds, and what the runs agree on: a difference smaller than
the spread between seeds can be luck."""

from ..training import final_metrics
from .checks import check_int


def seed_summary(histories, last=3):
    """What several runs of one recipe (one history per seed) agree on: for the final test
    accuracy, the test loss, the train-test gap and the test accuracy averaged over the last `last`
    epochs (steadier than one epoch), the value of each run and their mean, min and max."""
    check_int("seed_summary: last", last, 1)
    if not histories or isinstance(histories, dict):
        raise TypeError("seed_summary: histories must be a non-empty list of fit histories")
    columns = {"test_acc": [], "test_loss": [], "gap": [], "last_test_acc": []}
    for h in histories:
        m = final_metrics(h)
        columns["test_acc"].append(m["test_acc"])
        columns["test_loss"].append(m["test_loss"])
        columns["gap"].append(m["gap"])
        tail = h["test_acc"][-last:]
        columns["last_test_acc"].append(round(sum(tail) / len(tail), 2))
    return {
        "runs": len(histories),
        "last": last,
        **{
            name: {"values": v, "mean": round(sum(v) / len(v), 4), "min": min(v), "max": max(v)}
            for name, v in columns.items()
        },
    }


def seed_table(histories, seeds, last=3):
    """Print one row per recipe ({name: [history per seed]}): mean and min-max over the seeds of
    the final test accuracy, test loss and train-test gap, and of the test accuracy over the last
    `last` epochs. Returns {name: seed_summary}."""
    seeds = list(seeds)
    summaries = {}
    for name, runs in histories.items():
        if len(runs) != len(seeds):
            raise ValueError(f"seed_table: {name!r} has {len(runs)} runs for {len(seeds)} seeds")
        summaries[name] = seed_summary(runs, last)
    print(
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}): "
        "mean (min to max)"
    )
    print(
        f"{'':<18}{'test acc %':<21}{'test loss':<24}{'gap (points)':<21}"
        f"test acc %, last {last} epochs"
    )
    for name, s in summaries.items():
        cells = [
            f"{s[k]['mean']:{f}} ({s[k]['min']:{f}} to {s[k]['max']:{f}})"
            for k, f in (
                ("test_acc", ".1f"),
                ("test_loss", ".3f"),
                ("gap", ".1f"),
                ("last_test_acc", ".1f"),
            )
        ]
        print(f"{name:<18}{cells[0]:<21}{cells[1]:<24}{cells[2]:<21}{cells[3]}")
    if len(seeds) == 1:
        print("One seed: a difference of a point or two can be luck. SEEDS = 3 shows the spread.")
    return summaries
