"""What a student opens is what ran: a committed notebook has no papermill injected-parameters
cell (it would override the parameters cell the student edits), and its stored outputs are the
ones a run of its parameters cell gives (seeds, QUICK, AMP, epochs)."""

import ast
import copy
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
SEED_LINE = re.compile(r"^(\d+) seeds? \(([\d, ]+)\): mean", re.M)
RUN_LINE = re.compile(r"^[^\n:]+: (?:loaded|trained)[^\n]*?(?<!\d)(\d+) epochs", re.M)
RUN_SEED = re.compile(r"^[^\n:]+, seed (\d+): (?:loaded|trained)", re.M)


def tags(cell):
    return cell["metadata"].get("tags", [])


def outputs(cell):
    texts = []
    for output in cell.get("outputs", []):
        text = output.get("text") or output.get("data", {}).get("text/plain") or ""
        texts.append("".join(text))
    return "\n".join(texts)


def parameters(nb):
    values = {}  # a notebook without a parameters cell (a solutions notebook) runs none
    for cell in [c for c in nb["cells"] if "parameters" in tags(c)]:
        for node in ast.parse("".join(cell["source"])).body:  # NAME = a literal, read not run
            values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def mismatches(nb):
    """What in a notebook's stored outputs a run of its parameters cell would not print."""
    found = [
        f"cell {i}: a papermill injected-parameters cell"
        for i, c in enumerate(nb["cells"])
        if "injected-parameters" in tags(c)
    ]
    p = parameters(nb)
    seeds = [p.get("SEED", 0) + i for i in range(p.get("SEEDS", 1))]
    int_values = {v for v in p.values() if isinstance(v, int) and not isinstance(v, bool)}
    for i, cell in enumerate(nb["cells"]):
        text = outputs(cell)
        source = "".join(cell["source"])
        for count, listed in SEED_LINE.findall(text):
            if [int(s) for s in listed.split(",")] != seeds or int(count) != len(seeds):
                found.append(f"cell {i}: a table over seeds {listed} under SEEDS = {len(seeds)}")
        if "setup(" in source and text.startswith("device:"):
            if ("QUICK" in text.splitlines()[0]) != p.get("QUICK", False):
                found.append(f"cell {i}: the set-up line of a run with another QUICK")
            if f"| seed {p.get('SEED', 0)}" not in text:
                found.append(f"cell {i}: the set-up line of a run with another SEED")
            if ("BF16: training under bfloat16" in text.splitlines()[0]) != p.get("BF16", False):
                found.append(f"cell {i}: the set-up line of a run with another BF16")
        if "AMP" in p and ("AMP = False:" in text) == p["AMP"]:
            found.append(f"cell {i}: the output of a run with AMP = {not p['AMP']}")
        for seed in RUN_SEED.findall(text):
            if int(seed) not in seeds:
                found.append(f"cell {i}: a run of seed {seed}, not one of SEEDS from SEED")
        for epochs in RUN_LINE.findall(text):
            if int(epochs) not in int_values:
                found.append(f"cell {i}: a run of {epochs} epochs, which no parameter sets")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_a_stored_notebook_is_what_its_parameters_cell_ran(path):
    assert mismatches(json.loads(path.read_text())) == []


def test_the_check_sees_an_injected_cell_and_outputs_of_other_parameters():
    nb = json.loads((ROOT / "notebooks" / "02_training_on_gpu.ipynb").read_text())
    injected = copy.deepcopy(nb)
    injected["cells"].insert(
        2,
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]}, "source": ["X = 1"]},
    )
    assert any("injected" in m for m in mismatches(injected))
    for line, value in (
        ("SEEDS = ", "1"),
        ("AMP = ", "False"),
        ("BF16 = ", "True"),
        ("EPOCHS = ", "20"),
        ("SEED = ", "7"),
    ):
        edited = copy.deepcopy(nb)
        cell = next(c for c in edited["cells"] if "parameters" in tags(c))
        cell["source"] = [
            re.sub(r"= \S+", f"= {value}", s, count=1) if s.startswith(line) else s
            for s in cell["source"]
        ]
        assert mismatches(edited), line
