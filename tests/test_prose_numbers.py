"""Every result the prose quotes is printed by a cell of the same notebook.

Numbers with a decimal point or a percent sign in a markdown cell (results, not arithmetic such as
8*8*64) must appear in an output of the same notebook; the allow-list holds the original lesson's
own figures and numbers that the course states as settings rather than measures.
"""

import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
QUOTED = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?%|\d+\.\d+)(?![\w.])")
# The lesson's figures (97% / 71% / 73% / 80%), chance levels, settings and ranges named as such.
ALLOWED = {
    "97%",
    "71%",
    "73%",
    "80%",
    "10%",
    "20%",
    "50%",
    "60%",
    "100%",
    "0.5",
    "0.6",
    "0.1",
    "0.2",
    "0.3",
    "1.0",
    "2.0",
    "0.9",
    "0.8",
    "0.25",
    "0.75",
    "0.05",
    "0.95",
    "30%",
    "3.0",
    "0.4",
    "0.7",
}


def markdown_and_outputs(path):
    cells = json.loads(path.read_text())["cells"]
    ends = [i for i, c in enumerate(cells) if "## Exercises" in "".join(c["source"])]
    cells = cells[: ends[0]] if ends else cells  # exercises ask about new cases on purpose
    prose = ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    outputs = []
    for cell in cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain") or ""
            outputs.append("".join(text))
    return prose, "\n".join(outputs)


def shown(number, outputs):
    """Whether a printed number, a whole token, reads as `number` once rounded like it: "68.4%"
    is shown by "68.4" or "68.38", "72%" by "72" or "72.3" (never by "172" or "7.2")."""
    value = number.rstrip("%")
    decimals = len(value.split(".")[1]) if "." in value else 0
    for printed in re.findall(r"(?<![\d.])\d+(?:\.\d+)?(?![\d.])", outputs):
        printed_decimals = len(printed.split(".")[1]) if "." in printed else 0
        if printed_decimals >= decimals and round(float(printed), decimals) == float(value):
            return True
    return False


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_numbers_in_the_prose_come_from_the_outputs(path):
    prose, outputs = markdown_and_outputs(path)
    missing = []
    for text in prose:
        text = re.sub(r"`[^`]*`", "", text)  # code spans are code, not results
        for number in QUOTED.findall(text):
            if number not in ALLOWED and not shown(number, outputs):
                missing.append(number)
    assert not missing, f"{path.name}: quoted but printed by no cell: {sorted(set(missing))}"


def test_a_number_is_shown_only_by_a_whole_printed_number():
    assert shown("68.4%", "test 68.38%") and shown("72%", "acc 72.3") and shown("0.74", "0.7395")
    assert not shown("7.2", "loss 17.23") and not shown("72%", "172 images")
    assert not shown("68.4%", "68") and not shown("5.2", "15.2")
