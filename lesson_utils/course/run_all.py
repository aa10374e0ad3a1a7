"""Execute the course's notebooks with papermill and write a summary.

    python -m lesson_utils.course.run_all [--quick] [--only 02 03] [-p EPOCHS 3] [--out runs]
                                          [--jobs 2]

Each notebook's last cell displays a `metrics` dict; the summary (summary.md and summary.json in
the output folder) lists, per notebook and in course order, its status, its run time and those
metrics, then the wall time of the whole run. A failed notebook is named there with its cell, the
exception's name and a short reason, and the exit code is 1.

Statuses: "ok", "failed", "interrupted" (Ctrl-C arrived while it ran; exit code 130) and "not run"
(Ctrl-C arrived before it started). One notebook's failure never stops the others; the summary is
written whatever happens, Ctrl-C included. Metrics that are not finite (nan, inf) are read from
the notebook as floats; summary.md shows them as nan/inf and summary.json, which is strict JSON,
as null.

--jobs N runs the notebooks in N lanes: N worker processes, each running papermill one notebook
at a time, with OMP_NUM_THREADS = MKL_NUM_THREADS = max(1, cores // N) in its kernels'
environment (cores: the CPUs this process may use; N: at most the number of notebooks). NEEDS
below says which notebook waits for which: 03, 05 and 06 start only once 02 has finished (when
02 is among the selected notebooks). A free lane takes, among the notebooks whose NEEDS are done,
first one that other selected notebooks wait for (02), then the longest according to the last
summary.json in the output folder (when there is one), then the first in course order.
--jobs 1 (the default) runs them one after the other in this process, in course order.
"""

import argparse
import ast
import difflib
import json
import math
import multiprocessing
import os
import pickle
import signal
import sys
import time
from multiprocessing.connection import wait as wait_for_connections
from pathlib import Path

import nbformat
import papermill
from tqdm.auto import tqdm

from ..paths import NOTEBOOK_DIR, REPO_ROOT
from ..support.checks import positive_int_arg

# notebook prefix -> the prefix of the notebook it waits for (03, 05 and 06 load 02's baseline)
NEEDS = {"03": "02", "05": "02", "06": "02"}
ERROR_CHARS = 300  # the longest error text a summary row keeps
GRACE_S = 10  # after Ctrl-C: how long lanes get to stop their kernels before they are terminated


def prefix(path):
    """'02' for 02_training_on_gpu.ipynb."""
    return Path(path).name.split("_", 1)[0]


# ---------------------------------------------------------------------------------------------
# reading an executed notebook

_NUMBER_NAMES = {
    "nan": math.nan,
    "inf": math.inf,
    "NaN": math.nan,
    "Infinity": math.inf,
    "True": True,
    "False": False,
    "None": None,
}
# numpy and torch scalars as their repr shows them, e.g. np.float64(0.5) or tensor(0.5)
_SCALAR_CALLS = {
    "float",
    "int",
    "float16",
    "float32",
    "float64",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "bool_",
    "tensor",
}


def _literal(node):
    """ast.literal_eval, plus nan, inf and scalar wrappers such as np.float64(x) (no code runs)."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in _NUMBER_NAMES:
        return _NUMBER_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _literal(node.operand)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Dict):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values)}
    if isinstance(node, (ast.List, ast.Tuple)):
        values = [_literal(e) for e in node.elts]
        return values if isinstance(node, ast.List) else tuple(values)
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        name = (
            node.func.attr
            if isinstance(node.func, ast.Attribute)
            else getattr(node.func, "id", None)
        )
        if name in _SCALAR_CALLS:
            value = _literal(node.args[0])
            if name.startswith("float") and isinstance(value, str):  # float('nan')
                return float(value)
            return value
    raise ValueError(f"not a literal: {ast.dump(node)[:80]}")


def parse_metrics(text):
    """The dict that `text` (a displayed dict, nan and inf included) shows; ValueError if none."""
    try:
        value = _literal(ast.parse(text.strip(), mode="eval").body)
    except SyntaxError as err:
        raise ValueError(f"metrics are not a Python literal: {text[:100]!r}") from err
    if not isinstance(value, dict):
        raise ValueError(f"metrics are not a dict: {text[:100]!r}")
    return value


def read_metrics(path):
    """The `metrics` dict that an executed notebook's last code cell displayed, or {}."""
    nb = nbformat.read(path, as_version=4)
    for cell in reversed([c for c in nb.cells if c.cell_type == "code"]):
        if cell.source.strip().endswith("metrics"):
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/plain")
                if text:
                    return parse_metrics("".join(text) if isinstance(text, list) else text)
    return {}


def parse_value(text):
    """A -p value as papermill's command line reads it: a Python literal, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _short(text, limit=ERROR_CHARS):
    """First and last line of `text` (one if they are the same), at most `limit` characters."""
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    short = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"
    return short if len(short) <= limit else short[: limit - 3] + "..."


def error_text(err):
    """What a summary row says about an exception a notebook's run raised."""
    if isinstance(err, papermill.PapermillExecutionError):
        where = f"cell In [{err.exec_count}] of the executed copy"
        return _short(f"{where}: {err.ename}: {_short(err.evalue or '')}")
    if isinstance(err, TimeoutError):  # nbclient's CellTimeoutError is one
        return _short(f"timeout: {err}")
    return _short(f"{type(err).__name__}: {err}")


# ---------------------------------------------------------------------------------------------
# papermill's wait for replies


# ---------------------------------------------------------------------------------------------
# running one notebook


def execute_with_papermill(path, out_path, parameters, kernel, timeout):
    """The default way to run one notebook (run_all's `execute`)."""
    papermill.execute_notebook(
        str(path),
        str(out_path),
        parameters=parameters,
        kernel_name=kernel,
        cwd=str(Path(path).parent),
        progress_bar=False,
        execution_timeout=timeout,
    )


def run_one(path, out_path, parameters, kernel, timeout, execute=None):
    """Run one notebook and return its summary row; never raises (Ctrl-C: status interrupted)."""
    execute = execute or execute_with_papermill
    row = {"notebook": Path(path).name, "status": "ok", "seconds": None, "metrics": {}, "error": ""}
    start = time.perf_counter()
    try:
        execute(path, out_path, parameters, kernel, timeout)
    except KeyboardInterrupt:
        row.update(status="interrupted", error="interrupted (Ctrl-C)")
    except Exception as err:  # any failure of this notebook is its own row's, not the run's
        row.update(status="failed", error=error_text(err))
    else:
        try:
            row["metrics"] = read_metrics(out_path)
        except Exception as err:  # ran fine, but its metrics cannot be read: say so, keep going
            row["error"] = _short(f"metrics not readable: {type(err).__name__}: {err}")
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


# ---------------------------------------------------------------------------------------------
# lanes: where notebooks run


class _InlineLane:
    """--jobs 1: each notebook runs here, in this process, when it is started."""

    def __init__(self):
        self._done = []

    def free(self):
        return 0 if self._done else 1  # one at a time: its row is collected before the next

    def busy(self):
        return len(self._done)

    def start(self, name, task):
        self._done.append((name, run_one(**task)))

    def wait(self):
        done, self._done = self._done, []
        return done

    def stop(self):
        return self.wait()

    def close(self):
        pass


def _lane_main(conn, threads):
    """A worker process: run the notebooks it is sent, one at a time, until it is sent None."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if our parent ignored it

    def terminated(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, terminated)  # stops the kernel cleanly, like Ctrl-C
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    try:
        while True:
            task = conn.recv()
            if task is None:
                break
            conn.send(run_one(**task))
    except (KeyboardInterrupt, EOFError, OSError):
        pass


class _ProcessLanes:
    """--jobs N: N worker processes (started on first use); a dead one is replaced."""

    def __init__(self, n, threads):
        self.n, self.threads = n, threads
        self.context = multiprocessing.get_context("spawn")  # a clean process, on every OS
        self.idle, self.running = [], {}  # running: connection -> (process, name, start time)

    def free(self):
        return self.n - len(self.running)

    def busy(self):
        return len(self.running)

    def start(self, name, task):
        while self.idle:
            process, conn = self.idle.pop()
            try:
                conn.send(task)
                break
            except OSError:  # this idle lane died: retire it
                conn.close()
                process.join(1)
        else:
            conn, child = self.context.Pipe()
            process = self.context.Process(
                target=_lane_main, args=(child, self.threads), name="run_all lane", daemon=True
            )
            process.start()
            child.close()
            conn.send(task)
        self.running[conn] = (process, name, time.perf_counter())

    def wait(self, timeout=None):
        """(name, row) of the notebooks that finished, waiting for at least one."""
        done = []
        for conn in wait_for_connections(list(self.running), timeout):
            process, name, start = self.running.pop(conn)
            try:
                done.append((name, conn.recv()))
                self.idle.append((process, conn))
            except (EOFError, OSError):  # the lane died without answering
                process.join(5)
                row = _row(
                    name,
                    "failed",
                    time.perf_counter() - start,
                    f"its worker process died (exit code {process.exitcode})",
                )
                done.append((name, row))
        return done

    def stop(self):
        """After Ctrl-C: the running notebooks' rows. Ctrl-C in a terminal reaches the lanes too,
        and each stops its kernel; a SIGINT sent to this process only is passed on after 2 s; a
        lane that has not answered after GRACE_S is terminated. A notebook that failed meanwhile
        counts as interrupted (its kernel was stopped under it)."""
        done, begin, forwarded = [], time.monotonic(), False
        while self.running and time.monotonic() - begin < GRACE_S:
            if not forwarded and time.monotonic() - begin > 2:
                for process, _, _ in self.running.values():
                    if process.is_alive():
                        os.kill(process.pid, signal.SIGINT)
                forwarded = True
            try:
                done += self.wait(timeout=0.5)
            except KeyboardInterrupt:  # Ctrl-C again: stop waiting
                break
        for conn, (process, name, start) in list(self.running.items()):
            done.append(
                (
                    name,
                    _row(name, "interrupted", time.perf_counter() - start, "interrupted (Ctrl-C)"),
                )
            )
            process.terminate()
            process.join(5)
            if process.is_alive():
                process.kill()
            conn.close()
        self.running = {}
        for _, row in done:
            if row["status"] == "failed":
                row.update(status="interrupted", error=_short(f"interrupted: {row['error']}"))
        return done

    def close(self):
        for process, conn in self.idle:
            try:
                conn.send(None)
            except OSError:
                pass
        for process, conn in self.idle:
            process.join(10)
            if process.is_alive():
                process.terminate()
                process.join(5)
            conn.close()
        self.idle = []
        for process, _, _ in self.running.values():  # only after an error in this process
            process.terminate()
            process.join(5)
        self.running = {}


def _row(name, status, seconds=None, error=""):
    return {
        "notebook": name,
        "status": status,
        "seconds": None if seconds is None else round(seconds, 1),
        "metrics": {},
        "error": error,
    }


# ---------------------------------------------------------------------------------------------
# the run


def available_cores():
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def threads_per_kernel(jobs, cores=None):
    return max(1, (cores or available_cores()) // jobs)


def check_out_dir(out_dir, notebook_dir):
    """The reason `out_dir` must not receive executed copies (it would overwrite the sources), or
    None when it is safe."""
    out, src = Path(out_dir).resolve(), Path(notebook_dir).resolve()
    if out == src:
        return (
            f"{out_dir} is the course's notebook folder: the executed copies would "
            f"overwrite the notebooks; choose another folder, e.g. runs"
        )
    if out.is_dir():
        for source in sorted(src.glob("*.ipynb")):
            copy = out / source.name
            if copy.exists() and os.path.samefile(copy, source):
                return (
                    f"{out_dir} holds the course's notebook {source.name} (the same "
                    "file): the executed copies would overwrite it; choose another folder"
                )
    elif out.exists():
        return f"{out_dir} is a file, not a folder"
    return None


def _previous_seconds(out_dir):
    try:
        rows = json.loads((Path(out_dir) / "summary.json").read_text())["notebooks"]
        return {
            r["notebook"]: float(r["seconds"])
            for r in rows
            if r.get("status") == "ok" and r.get("seconds") is not None
        }
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _next_ready(pending, notebooks, rows, priority):
    """The notebook a free lane takes next, or None while every pending one waits for NEEDS: a
    notebook waits until every selected notebook with the prefix it NEEDS has finished."""

    def waits(path):
        need = NEEDS.get(prefix(path))
        return any(prefix(nb) == need and nb.name not in rows for nb in notebooks)

    ready = [path for path in pending if not waits(path)]
    return min(ready, key=priority) if ready else None


def _json_safe(value):
    """summary.json is strict JSON: nan and inf become null (summary.md shows them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def write_summary(out_dir, summary):
    out_dir = Path(out_dir)
    (out_dir / "summary.json").write_text(
        json.dumps(_json_safe(summary), indent=2, allow_nan=False) + "\n"
    )
    (out_dir / "summary.md").write_text(summary_markdown(summary))


def _check_run_args(notebooks, out_dir, parameters, kernel, timeout, jobs, execute):
    notebooks = sorted((Path(nb) for nb in notebooks), key=lambda nb: nb.name)  # course order
    if not notebooks:
        raise ValueError("notebooks is empty: pass at least one .ipynb path")
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing:
        raise ValueError(f"notebooks: no such file: {', '.join(missing)}")
    for folder in sorted({nb.parent for nb in notebooks}):
        reason = check_out_dir(out_dir, folder)
        if reason:
            raise ValueError(f"out_dir: {reason}")
    if parameters is not None and not isinstance(parameters, dict):
        raise TypeError(
            f"parameters must be a dict of notebook parameters, got "
            f"{type(parameters).__name__}: {parameters!r}"
        )
    if not isinstance(kernel, str) or not kernel:
        raise ValueError(f"kernel must be a kernel name such as 'python3', got {kernel!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 1:
        raise ValueError(f"timeout must be a whole number of seconds >= 1, got {timeout!r}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    if execute is not None and not callable(execute):
        raise TypeError(f"execute must be a function, got {type(execute).__name__}")
    if execute is not None and jobs > 1:
        try:
            pickle.dumps(execute)
        except Exception as err:
            raise TypeError(
                f"execute must be a module-level function when jobs > 1 (it is "
                f"sent to worker processes), got {execute!r}: {err}"
            ) from None
    return notebooks


def run_all(
    notebooks,
    out_dir,
    parameters=None,
    kernel="python3",
    quick=False,
    timeout=3600,
    jobs=1,
    execute=None,
):
    """Run `notebooks` (paths, taken in course order: by file name) into `out_dir`, write
    summary.json and summary.md, return the summary. timeout: seconds a cell may run; a lost
    kernel message then fails the notebook instead of hanging the run. jobs: lanes (see the
    module's docstring). execute: a function (path, out_path, parameters, kernel, timeout) that
    runs one notebook (default: papermill), for tests. Ctrl-C: the summary is written, then
    KeyboardInterrupt is raised again."""
    notebooks = _check_run_args(notebooks, out_dir, parameters, kernel, timeout, jobs, execute)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parameters = dict(parameters or {})
    if quick:
        parameters["QUICK"] = True
    lanes_n = min(jobs, len(notebooks))
    threads = threads_per_kernel(lanes_n) if lanes_n > 1 else None
    previous = _previous_seconds(out_dir)
    waited_for = {NEEDS[prefix(nb)] for nb in notebooks if prefix(nb) in NEEDS}
    order = {nb: i for i, nb in enumerate(notebooks)}
    if lanes_n > 1:

        def priority(path):
            return (prefix(path) not in waited_for, -previous.get(path.name, 0.0), order[path])
    else:

        def priority(path):
            return order[path]

    lanes = _InlineLane() if lanes_n == 1 else _ProcessLanes(lanes_n, threads)
    rows, starts, pending = {}, {}, list(notebooks)
    interrupted = False
    start_all = time.perf_counter()
    bar = tqdm(total=len(notebooks), desc="notebooks", unit="notebook")
    try:
        while pending or lanes.busy():
            while pending and lanes.free():
                path = _next_ready(pending, notebooks, rows, priority)
                if path is None:
                    break
                pending.remove(path)
                starts[path.name] = round(time.perf_counter() - start_all, 1)
                bar.set_postfix_str(path.name)
                lanes.start(
                    path.name,
                    dict(
                        path=path,
                        out_path=out_dir / path.name,
                        parameters=declared_by(path, parameters),
                        kernel=kernel,
                        timeout=timeout,
                        execute=execute,
                    ),
                )
            if not lanes.busy():
                break  # nothing runs and nothing is ready: cannot happen with NEEDS as it is
            for name, row in lanes.wait():
                rows[name] = row
                bar.update(1)
            if any(row["status"] == "interrupted" for row in rows.values()):
                raise KeyboardInterrupt  # a notebook saw Ctrl-C: stop the others as well
    except KeyboardInterrupt:
        interrupted = True
        for name, row in lanes.stop():
            rows[name] = row
    finally:
        lanes.close()
        bar.close()
        ordered = []
        for path in notebooks:  # course order, whatever order they finished in
            row = rows.get(path.name)
            if row is None and path.name in starts:  # started, never answered
                row = _row(
                    path.name,
                    "interrupted",
                    time.perf_counter() - start_all - starts[path.name],
                    "interrupted",
                )
            elif row is None:
                row = _row(path.name, "not run")
            row["start"] = starts.get(path.name)
            ordered.append(row)
        summary = {
            "parameters": parameters,
            "jobs": lanes_n,
            "threads_per_kernel": threads,
            "seconds": round(time.perf_counter() - start_all, 1),
            "interrupted": interrupted,
            "notebooks": ordered,
        }
        write_summary(out_dir, summary)
    if interrupted:
        raise KeyboardInterrupt
    return summary


def summary_markdown(summary):
    lines = ["| notebook | status | seconds | metrics |", "|---|---|---|---|"]
    for row in summary["notebooks"]:
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"].items())
        text = "; ".join(part for part in (metrics, row["error"]) if part).replace("|", "\\|")
        seconds = "-" if row["seconds"] is None else row["seconds"]
        lines.append(f"| {row['notebook']} | {row['status']} | {seconds} | {text} |")
    jobs = summary.get("jobs", 1)
    lanes = (
        f"; {jobs} lanes, {summary.get('threads_per_kernel')} threads per kernel"
        if jobs > 1
        else ""
    )
    lines.append(
        f"\nTotal: {summary['seconds']} s (wall){lanes}; parameters: {summary['parameters']}\n"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# command line


def select_notebooks(parser, notebooks, only):
    if not only:
        return notebooks
    available = sorted({prefix(nb) for nb in notebooks})
    unknown = [p for p in only if not any(nb.name.startswith(p) for nb in notebooks)]
    if unknown:
        parser.error(
            f"--only {' '.join(unknown)}: no notebook starts with "
            f"{'this' if len(unknown) == 1 else 'these'}; available prefixes: "
            f"{', '.join(available)}"
        )
    return [nb for nb in notebooks if nb.name.startswith(tuple(only))]


def declared_by(path, parameters):
    """The parameters that a notebook's parameters cell declares: papermill would inject the others
    too, as stray variables (e.g. -p SEEDS 3 in a notebook without seeds). A notebook without a
    parameters cell gets them all, as papermill gives them."""
    try:
        declared = set(papermill.inspect_notebook(str(path)))
    except Exception:  # noqa: BLE001 (not a notebook papermill can read: let papermill say why)
        return parameters
    if not declared:
        return parameters
    return {name: value for name, value in parameters.items() if name in declared}


def check_parameters(parser, notebooks, names):
    """Every -p NAME must be declared in the parameters cell of at least one selected notebook."""
    declared = {nb.name: set(papermill.inspect_notebook(str(nb))) for nb in notebooks}
    known = set().union(*declared.values())
    for name in names:
        if name in known:
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1)
        listing = "; ".join(
            f"{nb}: {', '.join(sorted(params)) or '(no parameters cell)'}"
            for nb, params in declared.items()
        )
        parser.error(
            f"-p {name}: no selected notebook declares {name} in its parameters cell"
            f"{f' (did you mean {close[0]}?)' if close else ''}. Declared: {listing}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="QUICK = True in every notebook")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="notebooks whose names start with these prefixes, e.g. 02 03",
    )
    parser.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="a papermill parameter, as many as needed",
    )
    parser.add_argument("--kernel", default="python3")
    parser.add_argument(
        "--timeout",
        type=positive_int_arg,
        default=3600,
        help="seconds a cell may run (an integer >= 1)",
    )
    parser.add_argument(
        "--jobs",
        type=positive_int_arg,
        default=1,
        help="notebooks run at once, each in its own process with cores/N "
        "threads (default 1: one after the other)",
    )
    parser.add_argument(
        "--out",
        default=str(REPO_ROOT / "runs"),
        help="output folder (git-ignored); never the notebooks' own folder",
    )
    parser.add_argument("--dir", default=str(NOTEBOOK_DIR), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    notebooks = sorted(Path(args.dir).glob("*.ipynb"))
    if not notebooks:
        parser.error(f"no notebook in {args.dir}")
    notebooks = select_notebooks(parser, notebooks, args.only)
    reason = check_out_dir(args.out, args.dir)
    if reason:
        parser.error(f"--out {reason}")
    check_parameters(parser, notebooks, [name for name, _ in args.parameter])
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = KernelSpecManager().find_kernel_specs()
    if args.kernel not in kernels:
        parser.error(
            f"--kernel {args.kernel}: no such Jupyter kernel; installed: "
            f"{', '.join(sorted(kernels)) or 'none'}"
        )
    parameters = {name: parse_value(value) for name, value in args.parameter}
    try:
        summary = run_all(
            notebooks, args.out, parameters, args.kernel, args.quick, args.timeout, jobs=args.jobs
        )
    except KeyboardInterrupt:
        print(summary_markdown_from(Path(args.out)), file=sys.stderr)
        print(
            "interrupted: the summary above is in " + str(Path(args.out) / "summary.md"),
            file=sys.stderr,
        )
        return 130
    print(summary_markdown(summary))
    return 1 if any(row["status"] != "ok" for row in summary["notebooks"]) else 0


def summary_markdown_from(out_dir):
    try:
        return (Path(out_dir) / "summary.md").read_text()
    except OSError:
        return ""


if __name__ == "__main__":
    sys.exit(main())
