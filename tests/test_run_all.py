import json

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from lesson_utils import run_all


def _notebook(path, *sources):
    cells = [new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_runs_in_order_and_reports_metrics_and_failures(tmp_path):
    src = tmp_path / "nbs"
    src.mkdir()
    _notebook(src / "01_fine.ipynb", "QUICK = False\nEPOCHS = 2",
              "metrics = {'epochs': EPOCHS, 'quick': QUICK}\nmetrics")
    _notebook(src / "02_broken.ipynb", "QUICK = False", "x = 1", "1 / 0")
    _notebook(src / "03_other.ipynb", "QUICK = False", "metrics = {'acc': 1.5}\nmetrics")
    out = tmp_path / "out"
    code = run_all.main(["--dir", str(src), "--out", str(out), "--quick", "-p", "EPOCHS", "3",
                         "--only", "01", "02"])
    assert code == 1
    summary = json.loads((out / "summary.json").read_text())
    rows = summary["notebooks"]
    assert [r["notebook"] for r in rows] == ["01_fine.ipynb", "02_broken.ipynb"]
    assert rows[0]["status"] == "ok" and rows[0]["metrics"] == {"epochs": 3, "quick": True}
    assert rows[1]["status"] == "failed"
    # In [4]: papermill numbers its injected parameters cell too
    assert rows[1]["error"] == "cell In [4] of the executed copy: ZeroDivisionError: division by zero"
    markdown = (out / "summary.md").read_text()
    assert "02_broken.ipynb | failed" in markdown and "epochs=3" in markdown
    assert run_all.main(["--dir", str(src), "--out", str(out), "--only", "03"]) == 0
