"""Each notebook ends with its exercises, each exercise has a check and a worked solution, and the
stored solutions pass their checks (nbval re-runs them and compares)."""
import json
import re

import pytest

from lesson_utils import exercises as ex
from lesson_utils.data import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))


def check_calls(path):
    cells = json.loads(path.read_text())["cells"]
    return [name for c in cells if c["cell_type"] == "code"
            for name in re.findall(r"\b(check_\w+)\(", "".join(c["source"]))
            if name not in ("check_parameters", "check_input")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_ends_with_exercises_that_have_solutions(path):
    calls = check_calls(path)
    assert 2 <= len(calls) <= 3, f"{path.name}: {calls}"
    cells = json.loads(path.read_text())["cells"]
    last_code = [c for c in cells if c["cell_type"] == "code"][-len(calls):]
    assert all("check_" in "".join(c["source"]) for c in last_code), "the exercises come last"
    solution = REPO_ROOT / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solution.exists(), f"no solutions for {path.name}"
    assert check_calls(solution) == calls
    for name in calls:
        assert name in dir(ex), f"{name} is not in lesson_utils.exercises"


def test_every_check_is_used_by_a_notebook():
    used = {name for path in NOTEBOOKS for name in check_calls(path)}
    defined = {name for name in dir(ex) if name.startswith("check_")}
    assert defined == used


SOLUTIONS = sorted((REPO_ROOT / "notebooks" / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_stored_solutions_pass_their_checks(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    checked = [c for c in cells if "nbval-check-output" in c["metadata"].get("tags", [])]
    assert len(checked) == len(check_calls(path)) >= 2
    for cell in checked:
        text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                       for o in cell["outputs"])
        assert "Correct." in text, "".join(cell["source"])
