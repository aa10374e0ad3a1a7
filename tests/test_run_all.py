import json
import os
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from lesson_utils.course import run_all


def _notebook(path, *sources):
    cells = [new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


def test_runs_in_order_and_reports_metrics_and_failures(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(
        src / "01_fine.ipynb",
        "QUICK = False\nEPOCHS = 2",
        "metrics = {'epochs': EPOCHS, 'quick': QUICK}\nmetrics",
    )
    _notebook(src / "02_broken.ipynb", "QUICK = False", "x = 1", "1 / 0")
    _notebook(src / "03_other.ipynb", "QUICK = False", "metrics = {'acc': 1.5}\nmetrics")
    out = tmp_path / "out"
    code = run_all.main(
        ["--dir", str(src), "--out", str(out), "--quick", "-p", "EPOCHS", "3", "--only", "01", "02"]
    )
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["notebooks"]
    assert [r["notebook"] for r in rows] == ["01_fine.ipynb", "02_broken.ipynb"]
    assert rows[0]["status"] == "ok" and rows[0]["metrics"] == {"epochs": 3, "quick": True}
    assert rows[1]["status"] == "failed"
    # In [4]: papermill numbers its injected parameters cell too
    assert rows[1]["error"] == (
        "cell In [4] of the executed copy: ZeroDivisionError: division by zero"
    )
    markdown = (out / "summary.md").read_text()
    assert "02_broken.ipynb | failed" in markdown and "epochs=3" in markdown
    assert run_all.main(["--dir", str(src), "--out", str(out), "--only", "03"]) == 0


def _write_executed(out, metrics_text):
    nb = new_notebook(cells=[new_code_cell("metrics")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output(
            "execute_result", data={"text/plain": metrics_text}, execution_count=1
        )
    ]
    nbformat.write(nb, out)


def _summary(out):
    return json.loads((out / "summary.json").read_text())


@pytest.fixture
def course(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    for name in ["01_a", "02_b", "03_c", "04_d", "05_e", "06_f"]:
        _notebook(src / f"{name}.ipynb", "QUICK = False", "metrics = {'acc': 1.0}\nmetrics")
    return src


# --jobs


def _paths(*names):
    return [Path(f"/c/{name}.ipynb") for name in names]


def test_next_ready_respects_needs_and_priority():
    nbs = _paths("01_a", "02_b", "03_c", "05_e", "07_g")
    order = {p: i for i, p in enumerate(nbs)}
    longest = {"07_g.ipynb": 50.0}

    def priority(path):  # run_all's, for lanes: first what others wait for, then the longest
        return (run_all.prefix(path) != "02", -longest.get(path.name, 0.0), order[path])

    assert run_all._next_ready(nbs, nbs, {}, priority).name == "02_b.ipynb"
    pending = [p for p in nbs if p.name != "02_b.ipynb"]
    assert run_all._next_ready(pending, nbs, {}, priority).name == "07_g.ipynb"
    waiting = _paths("03_c", "05_e")
    assert run_all._next_ready(waiting, nbs, {}, priority) is None  # 02 still runs
    assert run_all._next_ready(waiting, nbs, {"02_b.ipynb": {}}, priority).name == "03_c.ipynb"
    without_02 = _paths("03_c", "05_e")
    assert run_all._next_ready(without_02, without_02, {}, priority).name == "03_c.ipynb"


def fake_execute(path, out_path, parameters, kernel, timeout):
    """run_all's `execute` in the worker processes: logs start and end, shows its environment."""
    log = Path(out_path).parent / "events.log"
    with open(log, "a") as f:
        f.write(f"{time.time():.6f} start {Path(path).name[:2]}\n")
    time.sleep(1.5 if Path(path).name.startswith("02") else 0.3)
    _write_executed(
        out_path,
        repr(
            {
                "omp": os.environ.get("OMP_NUM_THREADS"),
                "mkl": os.environ.get("MKL_NUM_THREADS"),
                "pid": os.getpid(),
            }
        ),
    )
    with open(log, "a") as f:
        f.write(f"{time.time():.6f} end {Path(path).name[:2]}\n")


def test_jobs_runs_lanes_in_processes_and_respects_needs(course, tmp_path):
    notebooks = sorted(course.glob("*.ipynb"))  # 01 .. 06
    out = tmp_path / "out"
    summary = run_all.run_all(notebooks, out, jobs=3, execute=fake_execute)
    events = [line.split() for line in (out / "events.log").read_text().splitlines()]
    times = {(kind, nb): float(t) for t, kind, nb in events}
    assert {nb for _, nb in times} == {"01", "02", "03", "04", "05", "06"}
    for later in ("03", "05", "06"):
        assert times[("start", later)] >= times[("end", "02")]
    rows = summary["notebooks"]
    assert [r["notebook"][:2] for r in rows] == ["01", "02", "03", "04", "05", "06"]
    assert all(r["status"] == "ok" for r in rows)
    threads = str(max(1, len(os.sched_getaffinity(0)) // 3))
    assert {r["metrics"]["omp"] for r in rows} == {r["metrics"]["mkl"] for r in rows} == {threads}
    pids = {r["metrics"]["pid"] for r in rows}
    assert os.getpid() not in pids and len(pids) <= 3
    assert summary["jobs"] == 3 and _summary(out)["threads_per_kernel"] == int(threads)
    assert "3 lanes" in (out / "summary.md").read_text()


def test_jobs_2_with_real_notebooks(tmp_path):
    """01 and 04 train nothing: 35 s here for both, in two lanes of one thread each."""
    start = time.perf_counter()
    assert (
        run_all.main(["--jobs", "2", "--quick", "--only", "01", "04", "--out", str(tmp_path)]) == 0
    )
    rows = _summary(tmp_path)["notebooks"]
    assert [r["status"] for r in rows] == ["ok", "ok"]
    print(f"--jobs 2, 01 + 04: {time.perf_counter() - start:.0f} s")


def test_each_notebook_gets_the_parameters_it_declares():
    notebooks = Path(__file__).resolve().parent.parent / "notebooks"
    given = {"QUICK": True, "SEEDS": 3, "EPOCHS": 2}
    assert run_all.declared_by(notebooks / "01_cnn_shapes.ipynb", given) == {"QUICK": True}
    assert run_all.declared_by(notebooks / "02_training_on_gpu.ipynb", given) == given
