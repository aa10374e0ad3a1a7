"""run_all on tiny notebooks built here, run for real with papermill and the python3 kernel."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

from lesson_utils.course import run_all

REPO = Path(__file__).resolve().parent.parent


def _notebook(path, parameters, *sources, metrics=None):
    """A notebook: its parameters cell, `sources`, then (when `metrics`, the source of a dict) a
    cell that publishes that dict as a seed table does (support/seeds.py)."""
    cells = [new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(source) for source in sources]
    if metrics:
        source = (  # as support/seeds.py's tables publish them (IPython only: a fast cell)
            "from IPython.display import publish_display_data\n"
            f"publish_display_data({{'text/plain': 'a table'}}, {{'lesson_metrics': {metrics}}})"
        )
        cells.append(new_code_cell(source))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _write_executed(out, metrics):
    """An executed notebook whose two tables carry `metrics` in their outputs' metadata."""
    cells = []
    for i, part in enumerate((dict(list(metrics.items())[:1]), dict(list(metrics.items())[1:]))):
        cell = new_code_cell("seed_table(...)", execution_count=i + 1)
        meta = {"lesson_metrics": part}
        cell.outputs = [new_output("display_data", data={"text/plain": "table"}, metadata=meta)]
        cells.append(cell)
    nbformat.write(new_notebook(cells=cells), out)


def _summary(out):
    text = (out / "summary.json").read_text()
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in summary.json"))


def _statuses(out):
    return [(row["notebook"][:2], row["status"]) for row in _summary(out)["notebooks"]]


def test_read_metrics_merges_what_the_tables_publish(tmp_path):
    _write_executed(tmp_path / "a.ipynb", {"acc": 71.5, "loss": None, "per_class": [1, 2]})
    assert run_all.read_metrics(tmp_path / "a.ipynb") == {
        "acc": 71.5,
        "loss": None,
        "per_class": [1, 2],
    }
    nb = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    for cell in nb.cells:  # the same text without the metadata carries no metrics
        cell.outputs[0].metadata = {}
    nbformat.write(nb, tmp_path / "b.ipynb")
    assert run_all.read_metrics(tmp_path / "b.ipynb") == {}


def test_summary_metrics_declared_parameters_and_a_failing_cell(tmp_path):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir()
    _notebook(
        src / "01_fine.ipynb",
        "QUICK = False\nEPOCHS = 2",
        metrics="{'epochs': EPOCHS, 'quick': QUICK, 'loss': None}",
    )
    _notebook(src / "02_broken.ipynb", "QUICK = False", "x = 1", "1 / 0", metrics="{'x': x}")
    _notebook(
        src / "03_other.ipynb",
        "QUICK = False",
        metrics="{'quick': QUICK, 'got_epochs': 'EPOCHS' in globals()}",
    )
    _notebook(src / "04_slow.ipynb", "QUICK = False", "import time\ntime.sleep(60)")
    argv = ["--dir", str(src), "--out", str(out), "--quick", "-p", "EPOCHS", "3"]
    argv += ["--timeout", "4", "--jobs", "2"]
    assert run_all.main(argv) == 1
    rows = _summary(out)["notebooks"]
    assert _statuses(out) == [("01", "ok"), ("02", "failed"), ("03", "ok"), ("04", "failed")]
    assert rows[0]["metrics"] == {"epochs": 3, "quick": True, "loss": None}
    assert rows[2]["metrics"] == {"quick": True, "got_epochs": False}  # 03 declares no EPOCHS
    # In [3]: the notebook's own cells run, no injected parameters cell
    assert (
        rows[1]["error"] == "cell In [3] of the executed copy: ZeroDivisionError: division by zero"
    )
    assert rows[3]["error"].startswith("cell In [2] of the executed copy: CellTimeoutError: ")
    # the stored copies: the parameters cell holds the values the outputs came from
    for name, parameters in [("01_fine", "QUICK = True\nEPOCHS = 3"), ("03_other", "QUICK = True")]:
        cells = nbformat.read(out / f"{name}.ipynb", as_version=4).cells
        assert [c.metadata.get("tags", []) for c in cells][0] == ["parameters"]
        assert not any("injected-parameters" in c.metadata.get("tags", []) for c in cells)
        assert cells[0].source == parameters and cells[0].execution_count == 1
    assert rows[1]["metrics"] == {} and all(row["seconds"] > 0 for row in rows)
    markdown = (out / "summary.md").read_text()
    assert "| 02_broken.ipynb | failed |" in markdown and "epochs=3," in markdown
    assert "Total: " in markdown and not (out / run_all.LOCK).exists()


def test_jobs_2_start_02_and_03_first_then_06_before_05_after_02(tmp_path):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir()
    metrics = (
        "{'start': START, 'end': time.time(), 'omp': os.environ.get('OMP_NUM_THREADS'), "
        "'mkl': os.environ.get('MKL_NUM_THREADS')}"
    )
    for name, seconds in [("01_a", 0), ("02_b", 6), ("03_c", 3), ("05_d", 0), ("06_e", 0)]:
        steps = f"import os, time\nSTART = time.time()\ntime.sleep({seconds})"
        _notebook(src / f"{name}.ipynb", "QUICK = False", steps, metrics=metrics)
    summary = run_all.run_all(sorted(src.glob("*.ipynb")), out, jobs=2)
    rows = {row["notebook"][:2]: row for row in summary["notebooks"]}
    assert [row["status"] for row in rows.values()] == ["ok"] * 5
    # the longest first (START_ORDER): 02 and 03 at once, 01 (seconds) only after them
    assert rows["02"]["start"] <= rows["03"]["start"] < rows["01"]["start"]
    assert rows["03"]["metrics"]["start"] < rows["02"]["metrics"]["start"] + 3
    # 05 and 06 wait for 02 (NEEDS); then 06 (the longer) starts before 05
    assert rows["06"]["metrics"]["start"] > rows["02"]["metrics"]["end"]
    assert rows["05"]["start"] >= rows["06"]["start"]
    assert rows["05"]["metrics"]["start"] > rows["02"]["metrics"]["end"]
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert {row["metrics"]["omp"] for row in rows.values()} == {threads}
    assert {row["metrics"]["mkl"] for row in rows.values()} == {threads}
    assert _summary(out)["jobs"] == 2 and _summary(out)["threads_per_kernel"] == int(threads)


def _wait_for(path, timeout=60):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.1)


def _alive(pid):
    """Whether process `pid` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the OS
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def test_sigterm_writes_the_summary_and_a_second_runner_is_refused(tmp_path):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir()
    _notebook(src / "01_a.ipynb", "QUICK = False", metrics="{'acc': 1.0}")
    sleeper = "import os, time\nopen('kernel.pid', 'w').write(str(os.getpid()))\ntime.sleep(120)"
    _notebook(src / "02_b.ipynb", "QUICK = False", sleeper, metrics="{'acc': 2.0}")
    _notebook(src / "03_c.ipynb", "QUICK = False", metrics="{'acc': 3.0}")
    command = [sys.executable, "-m", "lesson_utils.course.run_all", "--dir", str(src)]
    first = subprocess.Popen(
        command + ["--out", str(out)], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        _wait_for(out / run_all.LOCK)
        second = subprocess.run(
            command + ["--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and str(out / run_all.LOCK) in lines[0]
        assert f"pid {first.pid}" in lines[0] and "in use" in lines[0]
        _wait_for(src / "kernel.pid")  # 01 has finished, 02 sleeps (cwd: the notebook's folder)
        kernel = int((src / "kernel.pid").read_text())
        assert (out / run_all.LOCK).exists() and not (out / "summary.json").exists()
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=30)
    finally:
        first.kill()
    assert first.returncode == 130, err.decode()
    assert _statuses(out) == [("01", "ok"), ("02", "interrupted"), ("03", "not run")]
    rows = _summary(out)["notebooks"]
    assert rows[0]["metrics"] == {"acc": 1.0} and _summary(out)["interrupted"] is True
    assert "| 02_b.ipynb | interrupted |" in (out / "summary.md").read_text()
    assert not (out / run_all.LOCK).exists()
    deadline = time.monotonic() + 10  # papermill stopped 02's kernel
    while _alive(kernel) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(kernel)


@pytest.mark.parametrize("case", ["below a file", "a file", "read-only"])
def test_a_bad_out_exits_2_with_one_line(tmp_path, capsys, case):
    if case == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes in read-only folders")
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "01_a.ipynb", "QUICK = False")
    (tmp_path / "file").write_text("x")
    (tmp_path / "ro").mkdir(mode=0o555)
    out = {"below a file": "file/sub", "a file": "file", "read-only": "ro"}[case]
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--dir", str(src), "--out", str(tmp_path / out)])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"run_all: --out {tmp_path / out}")
    assert (tmp_path / "file").read_text() == "x" and not any((tmp_path / "ro").iterdir())


@pytest.mark.skipif(run_all.fcntl is None, reason="a lock that ends with its process needs fcntl")
def test_a_killed_runner_leaves_no_process_and_its_lock_is_taken_over(tmp_path, capsys):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir()
    sleeper = (
        "import os, time\nopen('pids', 'w').write(f'{os.getppid()} {os.getpid()}')\ntime.sleep(120)"
    )
    _notebook(src / "01_a.ipynb", "QUICK = False", sleeper)
    command = [sys.executable, "-m", "lesson_utils.course.run_all", "--dir", str(src)]
    runner = subprocess.Popen(
        command + ["--out", str(out)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(src / "pids")  # the notebook runs: papermill's process, then its kernel's
        _wait_for_text(src / "pids")
        papermill_pid, kernel_pid = map(int, (src / "pids").read_text().split())
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
    finally:
        runner.kill()
    deadline = time.monotonic() + 10
    while (_alive(papermill_pid) or _alive(kernel_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _alive(papermill_pid) and not _alive(kernel_pid)
    assert (out / run_all.LOCK).read_text().strip() == f"pid {runner.pid}"  # left behind
    lock, fd = run_all.take_lock(out)  # what the next run does first: it takes the lock over
    try:
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(lock) in err[0] and f"pid {runner.pid}" in err[0]
        assert lock.read_text() == f"pid {os.getpid()}\n"
        with pytest.raises(run_all.OutDirError, match="in use"):  # and holds it (flock: even
            run_all.take_lock(out)  # against another descriptor of the same process)
    finally:
        run_all.release_lock(lock, fd)
    assert not lock.exists()


def _wait_for_text(path, timeout=10):
    deadline = time.monotonic() + timeout
    while not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} stayed empty"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--only", ""], "--only"),
        (["--only", "02", "  "], "--only"),
        (["--out", ""], "--out"),
        (["-p", "", "3"], "-p"),
        (["--kernel", ""], "--kernel"),
    ],
)
def test_an_empty_flag_value_is_refused_before_anything_runs(tmp_path, capsys, argv, flag):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "01_a.ipynb", "QUICK = False")
    _notebook(src / "02_b.ipynb", "QUICK = False")
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(["--dir", str(src), "--out", str(tmp_path / "out")] + argv)
    assert exit_info.value.code == 2 and flag in capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_fold_parameters_keeps_comments_and_adds_missing_names():
    from papermill.parameterize import parameterize_notebook

    source = 'QUICK = False        # True: quick\nEPOCHS = 14\nDEVICE = "auto"  # where\n'
    nb = new_notebook(cells=[new_code_cell(source, metadata={"tags": ["parameters"]})])
    nb.cells.append(new_code_cell("print(EPOCHS)", metadata={"tags": []}))
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.metadata["papermill"] = {}
    values = {"QUICK": True, "EPOCHS": 3, "DEVICE": "cuda:0", "SEEDS": 2}
    nb = run_all.fold_parameters(parameterize_notebook(nb, values))
    assert [c.source for c in nb.cells] == [
        'QUICK = True         # True: quick\nEPOCHS = 3\nDEVICE = "cuda:0"  # where\nSEEDS = 2',
        "print(EPOCHS)",
    ]
    namespace = {}
    exec(nb.cells[0].source, namespace)
    assert {k: namespace[k] for k in values} == values
    # without a parameters cell, papermill's cell becomes the parameters cell
    nb = new_notebook(cells=[new_code_cell("x = 1", metadata={"tags": []})])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "P"}
    nb.metadata["papermill"] = {}
    nb = run_all.fold_parameters(parameterize_notebook(nb, {"EPOCHS": 3}))
    assert [c.metadata["tags"] for c in nb.cells] == [["parameters"], []]


@pytest.mark.parametrize("parameters, epochs", [({"EPOCHS": 3}, "3"), ({}, "5")])
def test_an_injected_cell_left_in_the_source_is_folded_too(tmp_path, parameters, epochs):
    from lesson_utils.course import notebook_process

    _notebook(tmp_path / "a.ipynb", "EPOCHS = 14  # epochs", "print(EPOCHS)")
    nb = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    stale = new_code_cell("# Parameters\nEPOCHS = 5\n", metadata={"tags": ["injected-parameters"]})
    nb.cells.insert(1, stale)  # what an earlier papermill run left
    nbformat.write(nb, tmp_path / "a.ipynb")
    notebook_process.execute(
        input_path=str(tmp_path / "a.ipynb"),
        output_path=str(tmp_path / "b.ipynb"),
        parameters=parameters,
        kernel_name="python3",
        prepare_only=True,  # papermill's preparation, without a kernel
        progress_bar=False,
    )
    cells = nbformat.read(tmp_path / "b.ipynb", as_version=4).cells
    # the comment stays at its column
    assert [c.source for c in cells] == [f"EPOCHS = {epochs}   # epochs", "print(EPOCHS)"]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(out_dir=""), "out_dir"),
        (dict(kernel=" "), "kernel"),
        (dict(jobs=0), "jobs"),
        (dict(jobs=1.5), "jobs"),
        (dict(timeout=True), "timeout"),
    ],
)
def test_run_all_refuses_a_bad_argument_by_name_before_anything_runs(tmp_path, kwargs, name):
    _notebook(tmp_path / "01_a.ipynb", "QUICK = False")
    arguments = {"notebooks": [tmp_path / "01_a.ipynb"], "out_dir": tmp_path / "out", **kwargs}
    with pytest.raises((TypeError, ValueError), match=name):
        run_all.run_all(**arguments)
    assert not (tmp_path / "out").exists()
