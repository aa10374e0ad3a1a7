"""The stored notebooks: parameters first, checked cells with outputs, scrubbed, slides build.

Running them is tested elsewhere, each way once: nbval (configured in pyproject.toml) re-runs every
notebook and solution in QUICK mode and compares the outputs of the cells tagged
nbval-check-output with the stored ones; tests/test_browser.py runs every notebook in JupyterLab;
tests/test_transfer.py runs notebook 07 (a live() widget among its cells) with the papermill
command line.
"""

import re
from pathlib import Path

import nbformat
import pytest


NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SOLUTIONS = sorted((NOTEBOOK_DIR / "solutions").glob("*.ipynb"))


def test_the_course_has_its_notebooks():
    assert [nb.name[:2] for nb in NOTEBOOKS][:2] == ["01", "02"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_contract(path):
    nb = nbformat.read(path, as_version=4)
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code_cells[0].metadata.get("tags", []), "first code cell: parameters"
    assert "QUICK = False" in code_cells[0].source
    checked = [c for c in code_cells if "nbval-check-output" in c.metadata.get("tags", [])]
    assert checked, "no cell is checked by nbval"
    for cell in checked:  # a stripped cell would pass nbval without checking anything
        assert cell.outputs and cell.execution_count, (
            f"checked cell without stored output:\n{cell.source}"
        )
    for cell in code_cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"stored error output in:\n{cell.source}"


MACHINERY = re.compile(r"lesson\.key\(|loader_key|train_or_load|run_seeds|lambda[^\n]*\bfit\(")


@pytest.mark.parametrize("path", NOTEBOOKS + SOLUTIONS, ids=lambda p: p.name)
def test_experiment_cells_read_like_pytorch(path):
    """No hand-typed run key, no lambda around fit; no stored output longer than 40 lines (a slide
    and a reader's screen), the 40 lines counted as a student sees them."""
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code":
            continue
        assert not MACHINERY.search(cell.source), cell.source
        lines = 0
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            lines += len(text.splitlines())
        assert lines <= 40, f"{lines} lines of output from:\n{cell.source[:300]}"


def test_02_writes_the_standard_pipeline_out():
    source = "\n".join(
        c.source
        for c in nbformat.read(NOTEBOOK_DIR / "02_training_on_gpu.ipynb", as_version=4).cells
        if c.cell_type == "code"
    )
    for code in (
        "transforms.Compose([",
        "datasets.CIFAR10(",
        "DataLoader(train_set, batch_size=64, shuffle=True)",
        "nn.CrossEntropyLoss()(logits, targets)",
        "torch.save(model.state_dict(), path)",
        "load_state_dict(torch.load(path, map_location=device, weights_only=True))",
        "analysis.top_classes(",
        "FileUpload(",
    ):
        assert code in source, code


# The committed notebooks hold real outputs but no run metadata: `nbstripout` with these options
# (see README) leaves them unchanged.
NBSTRIPOUT = [
    "--keep-output",
    "--keep-count",
    "--keep-id",
    "--extra-keys",
    "metadata.papermill cell.metadata.papermill cell.metadata.execution",
]


def test_notebooks_are_scrubbed():
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nbstripout",
            *NBSTRIPOUT,
            "--verify",
            *map(str, NOTEBOOKS + SOLUTIONS),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for path in NOTEBOOKS + SOLUTIONS:
        nb = nbformat.read(path, as_version=4)
        assert "widgets" not in nb.metadata  # GitHub refuses widget metadata without state
        text = path.read_text()
        for private in ("/work/", "/root/", "/home/", "/tmp/"):
            assert private not in text, f"{path.name} shows a path of this machine"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_slides_build(path):
    from nbconvert import SlidesExporter

    nb = nbformat.read(path, as_version=4)
    html, _ = SlidesExporter().from_notebook_node(nb)
    assert html.count("<section") >= 4, "a deck needs several slides"
    slide_types = [c.metadata.get("slideshow", {}).get("slide_type") for c in nb.cells]
    assert slide_types[0] == "slide" and "skip" in slide_types
