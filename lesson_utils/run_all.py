"""Execute the course's notebooks in order with papermill and write a summary.

    python -m lesson_utils.run_all [--quick] [--only 02 03] [-p EPOCHS 3] [--out runs]

Each notebook's last cell displays a `metrics` dict; the summary (summary.md and summary.json in
the output folder) lists, per notebook, its status, its run time and those metrics. A failed
notebook is named there with its cell and the last line of its error, and the exit code is 1.
"""
import argparse
import ast
import json
import os
import queue
import sys
import time
from pathlib import Path

import nbformat
import papermill
from jupyter_client.channels import AsyncZMQSocketChannel
from tqdm.auto import tqdm

from .data import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"


def read_metrics(path):
    """The `metrics` dict that an executed notebook's last code cell displayed, or {}."""
    nb = nbformat.read(path, as_version=4)
    for cell in reversed([c for c in nb.cells if c.cell_type == "code"]):
        if cell.source.strip().endswith("metrics"):
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/plain")
                if text:
                    return ast.literal_eval(text)
    return {}


def parse_value(text):
    """A -p value as papermill's command line reads it: a Python literal, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


async def _get_msg_in_slices(self, timeout=None):
    """AsyncZMQSocketChannel.get_msg, waiting in slices of at most a second."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        wait = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
        if await self.socket.poll(int(wait * 1000)):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise queue.Empty


def poll_replies_in_slices():
    """Work around a lost wake-up in papermill's wait for a cell's reply (jupyter_client's async
    channels): after a widget cell the reply can sit unnoticed until the wait times out, so a cell
    of a second takes the whole cell timeout. Waiting in 1-second slices sees it within a second.
    Measured here: notebook 06 in QUICK mode, `papermill --execution-timeout 30`: 59 s, of which 30
    in the `interact` cell; with this patch 31 s."""
    AsyncZMQSocketChannel.get_msg = _get_msg_in_slices


def run_all(notebooks, out_dir, parameters=None, kernel="python3", quick=False, timeout=3600):
    """timeout: seconds a cell may run; a lost kernel message then fails the notebook instead of
    hanging the run."""
    poll_replies_in_slices()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = dict(parameters or {})
    if quick:
        parameters["QUICK"] = True
    env_progress = os.environ.get("LESSON_PROGRESS")
    os.environ["LESSON_PROGRESS"] = "0"  # no frozen progress bars in the saved notebooks
    rows, start_all = [], time.perf_counter()
    bar = tqdm(notebooks, desc="notebooks", unit="notebook")
    try:
        for path in bar:
            bar.set_postfix_str(path.name)
            row = {"notebook": path.name, "status": "ok", "error": ""}
            start = time.perf_counter()
            try:
                papermill.execute_notebook(str(path), str(out_dir / path.name), parameters=parameters,
                                           kernel_name=kernel, cwd=str(path.parent),
                                           progress_bar=False, execution_timeout=timeout)
                row["metrics"] = read_metrics(out_dir / path.name)
            except TimeoutError as err:  # nbclient's CellTimeoutError is one
                row.update(status="failed", metrics={}, error=f"timeout: {err}".splitlines()[0])
            except papermill.PapermillExecutionError as err:
                last = (err.evalue or "").strip().splitlines()
                where = f"cell In [{err.exec_count}] of the executed copy"
                row.update(status="failed", metrics={},
                           error=f"{where}: {err.ename}: {last[-1] if last else ''}")
            row["seconds"] = round(time.perf_counter() - start, 1)
            rows.append(row)
    finally:
        if env_progress is None:
            os.environ.pop("LESSON_PROGRESS", None)
        else:
            os.environ["LESSON_PROGRESS"] = env_progress
    summary = {"parameters": parameters, "seconds": round(time.perf_counter() - start_all, 1),
               "notebooks": rows}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (out_dir / "summary.md").write_text(summary_markdown(summary))
    return summary


def summary_markdown(summary):
    lines = ["| notebook | status | seconds | metrics |", "|---|---|---|---|"]
    for row in summary["notebooks"]:
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"].items()) or row["error"]
        lines.append(f"| {row['notebook']} | {row['status']} | {row['seconds']} | {metrics} |")
    lines.append(f"\nTotal: {summary['seconds']} s; parameters: {summary['parameters']}\n")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="QUICK = True in every notebook")
    parser.add_argument("--only", nargs="+", default=None,
                        help="notebooks whose names start with these prefixes, e.g. 02 03")
    parser.add_argument("-p", "--parameter", nargs=2, action="append", default=[],
                        metavar=("NAME", "VALUE"), help="a papermill parameter, as many as needed")
    parser.add_argument("--kernel", default="python3")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds a cell may run")
    parser.add_argument("--out", default=str(REPO_ROOT / "runs"), help="output folder (git-ignored)")
    parser.add_argument("--dir", default=str(NOTEBOOK_DIR), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    notebooks = sorted(Path(args.dir).glob("*.ipynb"))
    if args.only:
        notebooks = [nb for nb in notebooks if nb.name.startswith(tuple(args.only))]
    if not notebooks:
        parser.error("no notebook matches")
    parameters = {name: parse_value(value) for name, value in args.parameter}
    summary = run_all(notebooks, args.out, parameters, args.kernel, args.quick, args.timeout)
    print(summary_markdown(summary))
    return 1 if any(row["status"] != "ok" for row in summary["notebooks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
