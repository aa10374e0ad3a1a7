"""One recipe trained with several seeds, and what the runs agree on: a difference smaller than
the spread between seeds can be luck. Two protocols: the lesson's (the last epoch) and early
stopping's (the epoch with the best validation accuracy). At both, validation chooses which
recipe is better (or calls a tie); the test set is read after the choice, to report it."""

import math

from ..training import final_metrics

COLUMNS = ("val_acc", "test_acc", "test_loss", "gap", "best_val_acc", "test_acc_at_best")


def _stats(values):
    return {
        "values": values,
        "mean": round(sum(values) / len(values), 4),
        "min": min(values),
        "max": max(values),
    }


def seed_summary(histories):
    """What several runs of one recipe (one history per seed, with validation metrics) agree on:
    for each of COLUMNS (validation and test accuracy at the last epoch, test loss, train-test gap,
    validation and test accuracy at the best validation epoch), the value of each run and their
    mean, min and max; and the epoch that validation chose in each run."""
    if not histories or isinstance(histories, dict):
        raise TypeError("seed_summary: histories must be a non-empty list of fit histories")
    metrics = [final_metrics(h) for h in histories]
    if any("best_epoch" not in m for m in metrics):
        raise ValueError("seed_summary: every history needs validation metrics (fit's val_loader)")
    summary = {"runs": len(histories), "best_epoch": [m["best_epoch"] for m in metrics]}
    for name in COLUMNS:
        summary[name] = _stats([m[name] for m in metrics])
    return summary


def verdict(a, b):
    """b against a, from their values over the seeds: "higher" when b's worst run is above a's
    best, "lower" when b's best is below a's worst, else "a tie" (the ranges overlap). With one
    seed there is no range: the difference alone, which can be luck."""
    if b["max"] < a["min"]:
        return "lower"
    if b["min"] > a["max"]:
        return "higher"
    return "a tie"


def _cell(s, f):
    if len(s["values"]) == 1:
        return f"{s['mean']:{f}}"
    return f"{s['mean']:{f}} ({s['min']:{f}}-{s['max']:{f}})"


def _table(summaries, columns, width=20, epochs=False):
    titles = [title for title, _, _ in columns] + (["best epochs"] if epochs else [])
    lines = [(" " * 18 + "".join(f"{title:<{width}}" for title in titles)).rstrip()]
    for name, s in summaries.items():
        cells = [_cell(s[key], f) for _, key, f in columns]
        cells += [", ".join(map(str, s["best_epoch"]))] if epochs else []
        lines.append(f"{name:<18}" + "".join(f"{cell:<{width}}" for cell in cells).rstrip())
    return lines


def seed_table(histories, seeds):
    """Print, for each recipe ({name: [history per seed]}), mean (min-max) over the seeds:
    first validation, which chooses: the accuracy at the last epoch and at each run's best
    validation epoch (with the epochs chosen), and the verdict of each recipe against the first
    row at both protocols; then the test set, read to report: accuracy at both protocols, test
    loss and train-test gap at the last epoch. Returns {name: seed_summary}."""
    seeds = list(seeds)
    summaries = {}
    for name, runs in histories.items():
        if len(runs) != len(seeds):
            raise ValueError(f"seed_table: {name!r} has {len(runs)} runs for {len(seeds)} seeds")
        summaries[name] = seed_summary(runs)
    n = len(seeds)
    spread = " (min-max)" if n > 1 else ""
    lines = [f"{n} seed{'s' if n > 1 else ''} ({', '.join(map(str, seeds))}): mean{spread}"]
    lines.append("Validation (chooses):")
    lines += _table(
        summaries,
        (("last epoch %", "val_acc", ".1f"), ("best epoch %", "best_val_acc", ".1f")),
        epochs=True,
    )
    reference = next(iter(summaries))
    for name in list(summaries)[1:]:
        said = []
        for key, protocol in (("val_acc", "last epoch"), ("best_val_acc", "best epoch")):
            a, b = summaries[reference][key], summaries[name][key]
            said.append(f"{verdict(a, b)} at the {protocol} ({b['mean'] - a['mean']:+.1f})")
        lines.append(f"  {name} against {reference}: " + ", ".join(said))
    lines.append("Test (read after the choice, to report it):")
    lines += _table(
        summaries,
        (
            ("last epoch %", "test_acc", ".1f"),
            ("best epoch %", "test_acc_at_best", ".1f"),
            ("test loss", "test_loss", ".3f"),
            ("gap (points)", "gap", ".1f"),
        ),
    )
    if n == 1:
        lines.append("One seed: a difference of a point or two can be luck. SEEDS = 3 shows it.")
    _show("\n".join(lines), _metrics(summaries, n))
    return summaries


def _metrics(summaries, n):
    """The means of every row, for the batch runner (lesson_utils.course.run_all)."""
    metrics = {"seeds": n}
    for name, s in summaries.items():
        for key in COLUMNS:
            value = s[key]["mean"]
            metrics[f"{name}_{key}"] = None if math.isnan(value) else value
    return metrics


def _show(text, metrics):
    """Print `text`; in a notebook, as a display whose metadata carries `metrics`, which the batch
    runner reads (the student sees only the text)."""
    try:
        from IPython import get_ipython
        from IPython.display import publish_display_data
    except ImportError:
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        publish_display_data({"text/plain": text}, metadata={"lesson_metrics": metrics})
    else:
        print(text)
