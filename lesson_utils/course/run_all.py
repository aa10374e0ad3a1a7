"""Execute the course's notebooks with papermill and write a summary.

    python -m lesson_utils.course.run_all [--quick] [--only 02 03] [-p EPOCHS 3] [--out runs]
                                          [--jobs 2] [--timeout 3600]

Each notebook runs in its own papermill process, its executed copy written to the output folder,
with those of the -p parameters (and QUICK = True for --quick) that its parameters cell declares.
Its metrics are what its seed tables publish, in their output's metadata ("lesson_metrics": the
mean of every row; support/seeds.py), which a student does not see. The summary (summary.md and
summary.json in the output folder) lists, per notebook and in course order, its status, its run
time and those metrics, then the wall time of the whole run. A failed notebook is named there with
its cell, the exception's name and a short reason, and the exit code is 1.

Statuses: "ok", "failed", "interrupted" (Ctrl-C or SIGTERM arrived while it ran; exit code 130)
and "not run" (it arrived before the notebook started). One notebook's failure never stops the
others; the summary is written whatever happens, Ctrl-C and SIGTERM included.

--jobs N runs up to N notebooks at a time, their kernels with OMP_NUM_THREADS = MKL_NUM_THREADS =
max(1, cores // N) (cores: the CPUs this process may use); --jobs 1 (the default) runs them one
after the other, in course order, with the environment's thread settings. NEEDS says which
notebook waits for which: 05 and 06 start only once 02 has finished (when 02 is selected; 03 loads
02's baselines only at its end and starts at once); with N > 1 the notebooks others wait for start
first (02), then the others in START_ORDER, the longest first (03 beside 02, 06 before 05). While it
runs, a run holds the lock file .run_all.lock in the output folder: a second run on the same folder
is refused (exit code 2). A lock left by a run that was killed (SIGKILL, a crash) is taken over,
with a line that says so; its papermill processes and kernels end with it (each papermill process
watches its parent; each kernel, its papermill).

The executed copies hold no papermill "injected-parameters" cell: the values passed are written
into the notebook's own parameters cell (each `NAME = value` line's value replaced, its comment
kept), so the stored parameters cell holds exactly the values its outputs came from.
"""

import argparse
import ast
import difflib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import nbformat
import papermill
from tqdm.auto import tqdm

from ..paths import NOTEBOOK_DIR, REPO_ROOT
from . import notebook_process
from .notebook_process import fold_parameters  # noqa: F401 (part of run_all's interface)

try:
    import fcntl  # POSIX: a lock that ends with the process that holds it
except ImportError:  # Windows: the lock file alone
    fcntl = None
from ..support.checks import check_int, positive_int_arg

# notebook prefix -> the prefix of the notebook it waits for (05 and 06 load 02's baseline early;
# 03 trains its own recipes first and reads 02's baselines in its last cells, so it need not wait)
NEEDS = {"05": "02", "06": "02"}
# With --jobs N > 1, after the notebooks others wait for (NEEDS), the order the others start in:
# the longest first, so that no lane ends with a long notebook alone (one seed, two lanes: 03 about
# 25 min, 06 17, 02 12, 05 7, 07 2, 01 and 04 seconds). A notebook not listed starts last.
START_ORDER = ("03", "06", "02", "05", "07", "01", "04")
ERROR_CHARS = 300  # the longest error text a summary row keeps
GRACE_S = 10  # after an interrupt: how long papermill gets to stop its kernel before it is killed
LOCK = ".run_all.lock"
# One notebook's process: notebook_process.execute with the keyword arguments given as JSON
# (argv[1]). Its first lines watch the runner (argv[2], its pid): when the runner is gone (killed,
# even by SIGKILL), this process ends, and its kernel, which watches it in turn (ipykernel's parent
# poller), too. notebook_process.py runs from its path (argv[3]): importing lesson_utils here
# would cost each notebook seconds (torch).
PAPERMILL = """
import os, sys, threading, time
def watch(runner=int(sys.argv[2])):
    while os.getppid() == runner:
        time.sleep(0.5)
    os._exit(137)
threading.Thread(target=watch, daemon=True).start()
import json, runpy
runpy.run_path(sys.argv[3])["execute"](**json.loads(sys.argv[1]))
"""


class OutDirError(ValueError):
    """The output folder cannot take this run: not a folder we may write in, or in use."""


def prefix(path):
    """'02' for 02_training_on_gpu.ipynb."""
    return Path(path).name.split("_", 1)[0]


def read_metrics(path):
    """The metrics that an executed notebook's outputs carry in their metadata
    ("lesson_metrics"), merged in the notebook's order; {} when none does."""
    metrics = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            found = output.get("metadata", {}).get("lesson_metrics")
            if isinstance(found, dict):
                metrics.update(found)
    return metrics


def parse_value(text):
    """A -p value: a Python literal (3, 0.5, True, [1, 2]), else the string itself."""
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


def failure_text(out_path, stderr, returncode):
    """What a summary row says about a papermill process that failed: the cell that ran last in
    the executed copy (the failing one), and the exception papermill ended with (a cell's timeout,
    a dead kernel, ...) or, when a cell raised, that cell's exception."""
    _, found, tail = stderr.rpartition("Traceback (most recent call last):")
    ends = [line for line in tail.splitlines() if line.strip() and not line[0].isspace()]
    lines = stderr.strip().splitlines()
    last = ends[0] if found and ends else lines[-1] if lines else f"exit code {returncode}"
    error = re.sub(r"^(\w+\.)+(?=\w+:)", "", last)  # without the exception's module
    try:
        ran = [c for c in nbformat.read(out_path, as_version=4).cells if c.get("execution_count")]
    except (OSError, ValueError):  # papermill wrote no copy (e.g. the kernel did not start)
        ran = []
    if not ran:
        return _short(error)
    errors = [o for o in ran[-1].get("outputs", []) if o.output_type == "error"]
    if error.startswith("PapermillExecutionError") and errors:
        error = f"{errors[0].ename}: {_short(errors[0].evalue)}"
    return _short(f"cell In [{ran[-1].execution_count}] of the executed copy: {error}")


def _row(name, status, seconds=None, error=""):
    return {"notebook": name, "status": status, "seconds": seconds, "metrics": {}, "error": error}


# ---------------------------------------------------------------------------------------------
# running the notebooks


class _Processes:
    """The papermill processes of a run, so that an interrupt can stop them (and start no more)."""

    def __init__(self):
        self.lock, self.started, self.stopped = threading.Lock(), [], False

    def start(self, command, env):
        """A new papermill process, in its own session (Ctrl-C in a terminal reaches only us, and
        we pass it on once); None after stop."""
        with self.lock:
            if self.stopped:
                return None
            process = subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            self.started.append(process)
            return process

    def stop(self, signum):
        """Send `signum` to those still running: SIGINT stops papermill and its kernel."""
        with self.lock:
            self.stopped = True
            for process in self.started:
                if process.poll() is None:
                    process.send_signal(signum)


def run_one(path, out_dir, parameters, kernel, timeout, env, processes):
    """Run one notebook in a papermill process and return its summary row; never raises."""
    out_path = out_dir / path.name
    arguments = dict(
        input_path=str(path),
        output_path=str(out_path),
        parameters=parameters,
        kernel_name=kernel,
        cwd=str(path.parent),
        progress_bar=False,
        execution_timeout=timeout,
    )
    start = time.perf_counter()
    try:
        out_path.unlink(missing_ok=True)  # an error must not be read from an older copy
        command = [sys.executable, "-c", PAPERMILL, json.dumps(arguments, default=str)]
        process = processes.start(command + [str(os.getpid()), notebook_process.__file__], env)
        if process is None:
            return _row(path.name, "not run")
        _, stderr = process.communicate()
        if process.returncode:
            row = _row(
                path.name, "failed", error=failure_text(out_path, stderr, process.returncode)
            )
        else:
            row = _row(path.name, "ok")
            try:
                row["metrics"] = read_metrics(out_path)
            except Exception as err:  # ran fine, but its metrics cannot be read: say so
                row["error"] = _short(f"metrics not readable: {type(err).__name__}: {err}")
    except Exception as err:  # this notebook's trouble is its row's, not the run's
        row = _row(path.name, "failed", error=_short(f"{type(err).__name__}: {err}"))
    row["seconds"] = round(time.perf_counter() - start, 1)
    return row


def _stop(processes, running):
    """After an interrupt: stop the running notebooks (SIGINT, then SIGKILL after GRACE_S) and
    return their rows; one that did not end "ok" was interrupted."""
    processes.stop(signal.SIGINT)
    if wait(running, timeout=GRACE_S).not_done:
        processes.stop(signal.SIGKILL)
        wait(running, timeout=5)
    rows = {}
    for task, path in running.items():
        row = task.result() if task.done() else _row(path.name, "interrupted")
        if row["status"] == "failed":
            row.update(status="interrupted", error="interrupted")
        rows[path.name] = row
    return rows


def available_cores():
    """The CPUs this process may run on (its affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def check_out_dir(out_dir, notebook_dir):
    """The reason `out_dir` must not receive executed copies (it would overwrite the sources, or it
    is a file), or None when it may."""
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


def take_lock(out_dir):
    """Create `out_dir` and hold its lock file, one run at a time; returns (path, file descriptor):
    release_lock(...) at the end. Where the OS allows (fcntl.flock: Linux, macOS), the lock ends
    with the process that holds it: a lock file left by a killed run is taken over, with a line on
    stderr that says so. Elsewhere the file alone decides (O_EXCL)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutDirError(f"{out_dir}: cannot create this folder ({err.strerror})") from None
    lock = out_dir / LOCK
    try:
        fd = _hold(lock) if fcntl else os.open(lock, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    except FileExistsError:  # O_EXCL, without fcntl: the holder may be gone
        raise _in_use(out_dir, lock, _holder(lock), stale=True) from None
    except OSError as err:
        raise OutDirError(f"{out_dir}: cannot write in this folder ({err.strerror})") from None
    left = os.read(fd, 200).decode(errors="replace").strip()
    if left:
        print(
            f"run_all: {lock} was left by a run_all that is no longer running ({left}): taken over",
            file=sys.stderr,
        )
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, f"pid {os.getpid()}\n".encode())
    return lock, fd


def _hold(lock):
    """A descriptor of `lock` that holds its flock; OutDirError when a live run holds it."""
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _in_use(lock.parent, lock, _holder(lock), stale=False) from None
        try:
            if os.stat(lock).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:  # the run that held it deleted it meanwhile: try again
            pass
        os.close(fd)


def _holder(lock):
    try:
        return lock.read_text().strip() or "?"
    except OSError:  # gone meanwhile
        return "?"


def _in_use(out_dir, lock, holder, stale):
    more = f"; if no run_all is running (a stale lock), delete {lock}" if stale else ""
    return OutDirError(
        f"{out_dir} is in use: {lock} says another run_all ({holder}) writes there; wait for "
        f"it, or use another --out{more}"
    )


def release_lock(lock, fd):
    lock.unlink(missing_ok=True)  # before the descriptor closes: the next run makes a new one
    os.close(fd)


def _check_run_args(notebooks, out_dir, parameters, kernel, timeout, jobs):
    notebooks = sorted((Path(nb).absolute() for nb in notebooks), key=lambda nb: nb.name)
    if not notebooks:
        raise ValueError("notebooks is empty: pass at least one .ipynb path")
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing:
        raise ValueError(f"notebooks: no such file: {', '.join(missing)}")
    if parameters is not None and not isinstance(parameters, dict):
        raise TypeError(
            f"parameters must be a dict of notebook parameters, got "
            f"{type(parameters).__name__}: {parameters!r}"
        )
    if not isinstance(kernel, str) or not kernel.strip():
        raise ValueError(f"kernel must be a kernel name such as 'python3', got {kernel!r}")
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise ValueError(f"out_dir must be a folder (str or Path), got {out_dir!r}")
    timeout, jobs = check_int("timeout", timeout, 1), check_int("jobs", jobs, 1)  # np.int64 too
    for folder in sorted({nb.parent for nb in notebooks}):
        reason = check_out_dir(out_dir, folder)
        if reason:
            raise OutDirError(reason)
    return notebooks, timeout, jobs


def run_all(
    notebooks, out_dir, parameters=None, kernel="python3", quick=False, timeout=3600, jobs=1
):
    """Run `notebooks` (paths, taken in course order: by file name) into `out_dir`, write
    summary.json and summary.md there, return the summary. timeout: the seconds a cell may run.
    jobs: notebooks at a time (see the module's docstring). OutDirError if `out_dir` cannot be
    used. KeyboardInterrupt (Ctrl-C, or SIGTERM under main): the summary is written, then it is
    raised again."""
    notebooks, timeout, jobs = _check_run_args(
        notebooks, out_dir, parameters, kernel, timeout, jobs
    )
    out_dir = Path(out_dir).absolute()  # papermill writes from the notebook's folder
    parameters = dict(parameters or {})
    if quick:
        parameters["QUICK"] = True
    jobs = min(jobs, len(notebooks))
    pending, threads, env = list(notebooks), None, None  # env None: the kernels get ours
    if jobs > 1:
        threads = max(1, available_cores() // jobs)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        waited_for = {NEEDS.get(prefix(nb)) for nb in notebooks}
        listed = {name: i for i, name in enumerate(START_ORDER)}
        pending.sort(  # stable: course order among the notebooks not listed
            key=lambda nb: (prefix(nb) not in waited_for, listed.get(prefix(nb), len(listed)))
        )
    rows, starts, running, processes = {}, {}, {}, _Processes()  # running: future -> path
    pool = ThreadPoolExecutor(jobs, thread_name_prefix="run_all")
    lock, lock_fd = take_lock(out_dir)
    interrupted, start_all = False, time.perf_counter()
    bar = tqdm(total=len(notebooks), desc="notebooks", unit="notebook")
    try:
        while pending or running:
            ready = [nb for nb in pending if not _waits(nb, notebooks, rows)]
            for path in ready[: jobs - len(running)]:
                pending.remove(path)
                starts[path.name] = round(time.perf_counter() - start_all, 1)
                args = (path, out_dir, declared_by(path, parameters), kernel, timeout, env)
                running[pool.submit(run_one, *args, processes)] = path
            bar.set_postfix_str(", ".join(path.name for path in running.values()))
            for task in wait(running, return_when=FIRST_COMPLETED).done:
                rows[running.pop(task).name] = task.result()
                bar.update()
    except KeyboardInterrupt:
        interrupted = True
        rows.update(_stop(processes, running))
    finally:
        processes.stop(signal.SIGKILL)  # none left, unless a second interrupt cut _stop short
        pool.shutdown(cancel_futures=True)
        bar.close()
        ordered = []
        for path in notebooks:  # course order, whatever order they finished in
            status = "interrupted" if path.name in starts else "not run"
            row = rows.get(path.name) or _row(path.name, status)
            ordered.append(dict(row, start=starts.get(path.name)))
        summary = {
            "parameters": parameters,
            "jobs": jobs,
            "threads_per_kernel": threads,
            "seconds": round(time.perf_counter() - start_all, 1),
            "interrupted": interrupted,
            "notebooks": ordered,
        }
        try:
            write_summary(out_dir, summary)
        finally:
            release_lock(lock, lock_fd)
    if interrupted:
        raise KeyboardInterrupt
    return summary


def _waits(path, notebooks, rows):
    """Whether `path` waits for a selected notebook (NEEDS) that has not finished."""
    need = NEEDS.get(prefix(path))
    return any(prefix(nb) == need and nb.name not in rows for nb in notebooks)


def write_summary(out_dir, summary):
    """summary.json (strict JSON: nan and inf are null, what is not JSON its str) and summary.md."""
    strict = json.loads(json.dumps(summary, default=str), parse_constant=lambda name: None)
    (Path(out_dir) / "summary.json").write_text(
        json.dumps(strict, indent=2, allow_nan=False) + "\n"
    )
    (Path(out_dir) / "summary.md").write_text(summary_markdown(summary))


def summary_markdown(summary):
    lines = ["| notebook | status | seconds | metrics |", "|---|---|---|---|"]
    for row in summary["notebooks"]:
        metrics = ", ".join(f"{k}={v}" for k, v in row["metrics"].items())
        text = "; ".join(part for part in (metrics, row["error"]) if part).replace("|", "\\|")
        seconds = "-" if row["seconds"] is None else row["seconds"]
        lines.append(f"| {row['notebook']} | {row['status']} | {seconds} | {text} |")
    jobs = summary["jobs"]
    at_once = (
        f"; {jobs} jobs, {summary['threads_per_kernel']} threads per kernel" if jobs > 1 else ""
    )
    lines.append(
        f"\nTotal: {summary['seconds']} s (wall){at_once}; parameters: {summary['parameters']}\n"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# command line


def check_not_blank(parser, args):
    """An empty value of a flag ("", "  ") is refused by name: --only "" would select every
    notebook, --out "" the current folder, -p "" 3 no parameter."""
    flags = [("--only", value) for value in args.only or []]
    flags += [("-p", name) for name, _ in args.parameter]
    flags += [("--out", args.out), ("--kernel", args.kernel), ("--dir", args.dir)]
    for flag, value in flags:
        if not value.strip():
            what = "NAME" if flag == "-p" else "value"
            parser.error(f"{flag} {value!r}: an empty {what}; give one, or leave the flag out")


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


def _terminated(signum, frame):
    raise KeyboardInterrupt  # SIGTERM ends the run as Ctrl-C does: the summary is written


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
        help="notebooks run at once, each kernel with cores/N threads (default 1: one after "
        "the other)",
    )
    parser.add_argument(
        "--out",
        default=str(REPO_ROOT / "runs"),
        help="output folder (git-ignored); never the notebooks' own folder",
    )
    parser.add_argument("--dir", default=str(NOTEBOOK_DIR), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    check_not_blank(parser, args)
    notebooks = sorted(Path(args.dir).glob("*.ipynb"))
    if not notebooks:
        parser.error(f"no notebook in {args.dir}")
    notebooks = select_notebooks(parser, notebooks, args.only)
    check_parameters(parser, notebooks, [name for name, _ in args.parameter])
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = KernelSpecManager().find_kernel_specs()
    if args.kernel not in kernels:
        parser.error(
            f"--kernel {args.kernel}: no such Jupyter kernel; installed: "
            f"{', '.join(sorted(kernels)) or 'none'}"
        )
    parameters = {name: parse_value(value) for name, value in args.parameter}
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        summary = run_all(
            notebooks, args.out, parameters, args.kernel, args.quick, args.timeout, jobs=args.jobs
        )
    except OutDirError as err:
        parser.exit(2, f"run_all: --out {err}\n")
    except KeyboardInterrupt:
        try:
            print((Path(args.out) / "summary.md").read_text(), file=sys.stderr)
        except OSError:
            pass
        print(f"interrupted: the summary is in {Path(args.out) / 'summary.md'}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(summary_markdown(summary))
    return 1 if any(row["status"] != "ok" for row in summary["notebooks"]) else 0


if __name__ == "__main__":
    sys.exit(main())
