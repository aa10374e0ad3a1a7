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
    """A notebook: its parameters cell, `sources`, then (when `metrics`, the source of a dict) the
    cell tagged "metrics" that displays that dict as JSON."""
    cells = [new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [new_code_cell(source) for source in sources]
    if metrics:
        source = f"from IPython.display import JSON\nJSON({metrics})"
        cells.append(new_code_cell(source, metadata={"tags": ["metrics"]}))
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def _write_executed(out, metrics):
    """An executed notebook whose cell tagged "metrics" shows `metrics` as IPython's JSON does."""
    cell = new_code_cell("JSON(metrics)", metadata={"tags": ["metrics"]}, execution_count=1)
    data = {"application/json": metrics, "text/plain": "<IPython.core.display.JSON object>"}
    cell.outputs = [new_output("execute_result", data=data, execution_count=1)]
    nbformat.write(new_notebook(cells=[cell]), out)


def _summary(out):
    text = (out / "summary.json").read_text()
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in summary.json"))


def _statuses(out):
    return [(row["notebook"][:2], row["status"]) for row in _summary(out)["notebooks"]]


def test_read_metrics_takes_the_json_of_the_cell_tagged_metrics(tmp_path):
    _write_executed(tmp_path / "a.ipynb", {"acc": 71.5, "loss": None, "per_class": [1, 2]})
    assert run_all.read_metrics(tmp_path / "a.ipynb") == {
        "acc": 71.5,
        "loss": None,
        "per_class": [1, 2],
    }
    nb = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    nb.cells[0].metadata["tags"] = []  # the same output in an untagged cell is not the metrics
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
    # In [4]: papermill numbers its injected parameters cell too
    assert (
        rows[1]["error"] == "cell In [4] of the executed copy: ZeroDivisionError: division by zero"
    )
    assert rows[3]["error"].startswith("cell In [3] of the executed copy: CellTimeoutError: ")
    assert rows[1]["metrics"] == {} and all(row["seconds"] > 0 for row in rows)
    markdown = (out / "summary.md").read_text()
    assert "| 02_broken.ipynb | failed |" in markdown and "epochs=3," in markdown
    assert "Total: " in markdown and not (out / run_all.LOCK).exists()


def test_jobs_2_runs_02_first_and_03_after_it(tmp_path):
    src, out = tmp_path / "nbs", tmp_path / "out"
    src.mkdir()
    metrics = (
        "{'start': START, 'end': time.time(), 'omp': os.environ.get('OMP_NUM_THREADS'), "
        "'mkl': os.environ.get('MKL_NUM_THREADS')}"
    )
    for name, seconds in [("01_a", 0), ("02_b", 5), ("03_c", 0)]:
        steps = f"import os, time\nSTART = time.time()\ntime.sleep({seconds})"
        _notebook(src / f"{name}.ipynb", "QUICK = False", steps, metrics=metrics)
    summary = run_all.run_all(sorted(src.glob("*.ipynb")), out, jobs=2)
    rows = {row["notebook"][:2]: row for row in summary["notebooks"]}
    assert [row["status"] for row in rows.values()] == ["ok", "ok", "ok"]
    # 01 ends seconds before 02 does: a free slot, but 03 waits for 02 (NEEDS)
    assert rows["01"]["metrics"]["end"] < rows["02"]["metrics"]["end"] - 2
    assert rows["03"]["metrics"]["start"] > rows["02"]["metrics"]["end"]
    assert rows["02"]["start"] <= rows["01"]["start"]
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
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
        assert len(lines) == 1 and str(out / run_all.LOCK) in lines[0] and "stale" in lines[0]
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
