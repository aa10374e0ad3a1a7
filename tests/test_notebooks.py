"""Every notebook in notebooks/ runs top to bottom in QUICK mode, and its checked cells keep outputs.

nbval (configured in pyproject.toml) separately re-runs each notebook and compares the outputs of
the cells tagged nbval-check-output with the stored ones.
"""
from pathlib import Path

import nbformat
import papermill
import pytest

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def test_the_course_has_its_notebooks():
    assert [nb.name[:2] for nb in NOTEBOOKS][:2] == ["01", "02"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_quick_mode(path, tmp_path):
    try:
        papermill.execute_notebook(str(path), str(tmp_path / path.name), parameters={"QUICK": True},
                                   cwd=str(path.parent), kernel_name="python3", progress_bar=False)
    except papermill.PapermillExecutionError as err:
        pytest.fail(f"{path.name}, cell {err.exec_count}: {err.ename}: {err.evalue}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_contract(path):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code_cells[0].metadata.get("tags", []), "first code cell: parameters"
    assert "QUICK = False" in code_cells[0].source
    checked = [c for c in code_cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked, "no cell is checked by nbval"
    for cell in checked:  # a stripped cell would pass nbval without checking anything
        assert cell.outputs and cell.execution_count, f"checked cell without stored output:\n{cell.source}"
    for cell in code_cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"stored error output in:\n{cell.source}"
