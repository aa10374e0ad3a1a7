"""Each notebook ends with its exercises (a code exercise, a short answer, then an open experiment),
each exercise has a check and a worked solution, the stored solutions pass their checks (nbval
re-runs them and compares), and no exercise is answered on the page above it."""

import json
import re

import pytest

from lesson_utils import exercises as ex
from lesson_utils.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))

# Every check: the kind of exercise, and texts of its answer that must not appear on the page above
# it (compared without spaces; a text that is a number is compared as a number). Besides, every
# number, fraction and two-number list above a short-answer exercise is tried on its check: none
# may be accepted.
EXERCISES = {
    "check_in_features_function": ("code", ["//2**n_blocks", "2**(n_blocks-1)"]),
    "check_view_shape": ("short", ["2560", "[128,2560]"]),
    "check_topk_accuracy": ("code", [".topk(", "torch.topk("]),
    "check_optimizer_steps": ("short", ["11730"]),
    "check_dropout_module": ("code", ["torch.rand_like(x)", "/(1-self.p)", "torch.bernoulli("]),
    "check_dropout_value": ("short", ["3.75"]),
    "check_norm_conv_block": ("code", ["nn.BatchNorm2d(out_channels)"]),
    "check_norm_block_parameters": ("short", ["74112"]),
    "check_warmup_scheduler": ("code", ["LinearLR(", "SequentialLR(", "LambdaLR("]),
    "check_exponential_lr": ("short", ["0.00059049"]),
    "check_train_transform": (
        "code",
        ["RandomCrop(32,padding=2", "padding=(2,2,2,2)", "Normalize(mean,std)"],
    ),
    "check_unchanged_probability": ("short", ["1/98"]),
    "check_train_only_block": ("code", ["[block-1]"]),
    "check_head_parameters": ("short", ["409700"]),
}


def check_calls(path):
    cells = json.loads(path.read_text())["cells"]
    return [
        name
        for c in cells
        if c["cell_type"] == "code"
        for name in re.findall(r"\b(check_\w+)\(", "".join(c["source"]))
        if name not in ("check_parameters", "check_input")
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_notebook_ends_with_exercises_that_have_solutions(path):
    calls = check_calls(path)
    assert 2 <= len(calls) <= 4, f"{path.name}: {calls}"
    kinds = [EXERCISES[name][0] for name in calls]
    assert "code" in kinds and "short" in kinds, f"{path.name}: {calls}"
    cells = json.loads(path.read_text())["cells"]
    last_code = [c for c in cells if c["cell_type"] == "code"][-len(calls) :]
    assert all("check_" in "".join(c["source"]) for c in last_code), "the exercises come last"
    last = "".join(cells[-1]["source"])
    assert cells[-1]["cell_type"] == "markdown" and last.startswith("**Open experiment**")
    assert not any(name in last for name in EXERCISES) and "*Hint:*" in last
    solution = REPO_ROOT / "notebooks" / "solutions" / f"{path.stem}_solutions.ipynb"
    assert solution.exists(), f"no solutions for {path.name}"
    assert check_calls(solution) == calls
    for name in calls:
        assert name in dir(ex), f"{name} is not in lesson_utils.exercises"


def test_every_check_is_used_by_a_notebook():
    used = {name for path in NOTEBOOKS for name in check_calls(path)}
    defined = {name for name in dir(ex) if name.startswith("check_")}
    assert defined == used == set(EXERCISES)


SOLUTIONS = sorted((REPO_ROOT / "notebooks" / "solutions").glob("*.ipynb"))


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_stored_solutions_pass_their_checks(path):
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    checked = [c for c in cells if "nbval-check-output" in c["metadata"].get("tags", [])]
    assert len(checked) == len(check_calls(path)) >= 2
    for cell in checked:
        text = "".join(
            "".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
            for o in cell["outputs"]
        )
        assert "Correct." in text, "".join(cell["source"])


# No answer on the page

NUMBER = re.compile(
    r"(?<![\w.])[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?"
    r"(?!\d)"
)
FRACTION = re.compile(r"\b(\d+)\s*/\s*(\d+)\b")
PAIR = re.compile(r"[\[(]\s*(\d+)\s*,\s*(\d+)\s*[\])]")


def cell_text(cell):
    """A cell's source and, for a code cell, the text of its outputs."""
    parts = ["".join(cell["source"])]
    for output in cell.get("outputs", []):
        parts.append("".join(output.get("text", "")))
        for kind in ("text/plain", "text/markdown", "text/html"):
            parts.append("".join(output.get("data", {}).get(kind, "")))
    return "\n".join(parts)


def candidates(text):
    """What a student could copy from the text as an answer: numbers, fractions, pairs."""
    found = {m.group().replace(",", "") for m in NUMBER.finditer(text)}
    found |= {f"{a}/{b}" for a, b in FRACTION.findall(text) if int(b)}
    found |= {(int(a), int(b)) for a, b in PAIR.findall(text)}
    return found


def answers_on_page(name, text, values=None):
    """The answers of check `name` that `text` gives away (an empty list when none)."""
    kind, fragments = EXERCISES[name]
    squeezed = re.sub(r"\s+", "", text)
    numbers = {
        float(v)
        for v in (values if values is not None else candidates(text))
        if isinstance(v, str) and "/" not in v
    }
    shown = []
    for fragment in fragments:
        try:
            number = float(fragment)
        except ValueError:  # a piece of code
            if re.sub(r"\s+", "", fragment) in squeezed:
                shown.append(fragment)
            continue
        if any(abs(n - number) <= 1e-9 * abs(number) for n in numbers):
            shown.append(fragment)
    if kind == "short":
        check = getattr(ex, name)
        shown += [
            value
            for value in (values if values is not None else candidates(text))
            if check(list(value) if isinstance(value, tuple) else value).correct
        ]
    return shown


def exercises_with_their_pages():
    """(notebook, check, the text of every cell above the check's cell, that cell included)."""
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text())["cells"]
        for index, cell in enumerate(cells):
            if cell["cell_type"] != "code":
                continue
            for name in re.findall(r"\b(check_\w+)\(", "".join(cell["source"])):
                if name in EXERCISES:
                    yield path.stem, name, "\n".join(cell_text(c) for c in cells[: index + 1])


PAGES = list(exercises_with_their_pages())


@pytest.mark.parametrize("stem, name, page", PAGES, ids=[f"{s}-{n}" for s, n, _ in PAGES])
def test_no_exercise_is_answered_on_the_page_above_it(stem, name, page):
    assert not answers_on_page(name, page), f"{stem}: the page above {name} shows its answer"


def test_the_page_test_finds_answers_when_they_are_there():
    # a number however printed, a fraction, a shape, a line of code; and a check's own tolerance
    assert answers_on_page("check_optimizer_steps", "Train Epoch: 3 [11,730/50000]")
    assert answers_on_page("check_optimizer_steps", "steps = 11730  # in all")
    assert answers_on_page("check_head_parameters", "trainable 409,700 of 134,669,444")
    assert answers_on_page("check_unchanged_probability", "the chance is 1/98 per epoch")
    assert answers_on_page("check_unchanged_probability", "probability 0.0102")
    assert answers_on_page("check_exponential_lr", "epoch  6  lr 5.9049e-04")
    assert answers_on_page("check_view_shape", "x.view(128, -1) gives [128, 2560]")
    assert answers_on_page("check_view_shape", "torch.Size([128, 2560])")
    assert answers_on_page("check_dropout_value", "kept values scaled by 3.75")
    assert answers_on_page("check_dropout_module", "mask = torch.rand_like(x) > p")
    assert answers_on_page("check_warmup_scheduler", "s = lr_scheduler.SequentialLR(opt, ...)")
    assert answers_on_page("check_train_transform", "transforms.RandomCrop(32, padding=2),")
    assert answers_on_page("check_train_only_block", "for i in blocks[block - 1]:")
    assert answers_on_page("check_topk_accuracy", "pred = output.topk(5, dim=1)")
    # and not where they are not: other numbers, or the answer inside a longer number
    assert not answers_on_page("check_optimizer_steps", "Accuracy: 1173/1280 (117300 images)")
    assert not answers_on_page("check_view_shape", "[64, 1024] and [128, 25600]")
    assert not answers_on_page("check_head_parameters", "20,485 and 4,097,000 and 409,7001")
