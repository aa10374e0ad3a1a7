"""Each notebook ends with its exercises (a code exercise, a short answer, then an open experiment),
each exercise has a check and a worked solution, the stored solutions pass their checks (nbval
re-runs them and compares), and no exercise is answered on the page above it, in the README or in
the modules the README tells students to read."""

import importlib
import inspect
import json
import re
import urllib.error

import pytest
import torch
import torch.nn as nn
from torchvision import transforms

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
    "check_train_epochs": ("code", ["zero_grad()", ".backward()"]),
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
    assert answers_on_page("check_train_epochs", "optimizer.zero_grad()\n    loss.backward()")
    # and not where they are not: other numbers, or the answer inside a longer number
    assert not answers_on_page("check_optimizer_steps", "Accuracy: 1173/1280 (117300 images)")
    assert not answers_on_page("check_view_shape", "[64, 1024] and [128, 25600]")
    assert not answers_on_page("check_head_parameters", "20,485 and 4,097,000 and 409,7001")


# No answer in the README, nor in the modules it tells students to read (lesson_utils/*.py)

README = REPO_ROOT / "README.md"
# the spellings a check accepts that candidates() does not read: 11 730, 3,75, 1.02%
SPACED = re.compile(r"(?<![\w.,])\d{1,3}(?:[ \u00a0\u202f]\d{3})+(?![\d,.])")
DECIMAL_COMMA = re.compile(r"(?<![\w.,])(\d+),(\d{1,2}|\d{4,})(?![\d,])")
PERCENT = re.compile(r"(?<![\w.])(\d+(?:[.,]\d+)?)\s*%")


def typed_candidates(text):
    """candidates(text), and the other spellings of a number that the checks accept, as numbers."""
    found = candidates(text)
    found |= {re.sub(r"\s", "", m.group()) for m in SPACED.finditer(text)}
    found |= {f"{a}.{b}" for a, b in DECIMAL_COMMA.findall(text)}
    found |= {repr(float(m.replace(",", ".")) / 100) for m in PERCENT.findall(text)}
    return found


def answers_in_text(text):
    """{check: the answers `text` gives away} for every exercise, numbers however spelled."""
    values = typed_candidates(text)
    shown = {name: answers_on_page(name, text, values) for name in EXERCISES}
    return {name: answers for name, answers in shown.items() if answers}


def test_the_readme_answers_no_exercise():
    assert not answers_in_text(README.read_text())


def test_the_readme_test_finds_answers_however_spelled():
    old = "as people write numbers (`11,730`, `11 730`, `3,75`, `1.02%`, `1/98`)."
    assert set(answers_in_text(old)) == {
        "check_optimizer_steps",
        "check_dropout_value",
        "check_unchanged_probability",
    }
    assert set(answers_in_text("steps: 11 730; p = 1,02 %")) == {
        "check_optimizer_steps",
        "check_unchanged_probability",
    }
    assert not answers_in_text("as people write numbers (`12,345`, `12 345`, `2,5`, `0.5%`, `1/8`)")


READING_MODULES = sorted(
    p.stem for p in (REPO_ROOT / "lesson_utils").glob("*.py") if p.stem != "__init__"
)
# what each code exercise asks for: a function of so many arguments, an nn.Module class, or a
# pair of transforms
CODE_ANSWERS = {
    "check_in_features_function": ("function", 2),
    "check_topk_accuracy": ("function", 4),
    "check_warmup_scheduler": ("function", 1),
    "check_train_epochs": ("function", 5),
    "check_train_only_block": ("function", 2),
    "check_dropout_module": ("class", None),
    "check_norm_conv_block": ("class", None),
    "check_train_transform": ("transforms", None),
}


def own_code(cls):
    """The code `cls` defines, on a plain nn.Module: what a student could copy from a subclass of
    a torch layer (say nn.Dropout) that a check would refuse as PyTorch's own. Its state (p,
    inplace...) is copied from an instance built with the same arguments."""

    def __init__(self, *args, **kwargs):
        nn.Module.__init__(self)
        built = cls(*args, **kwargs)
        for name, value in vars(built).items():
            if not name.startswith("_"):
                setattr(self, name, value)
        for name, child in built.named_children():
            self.add_module(name, child)

    namespace = {}
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith(("torch", "builtins")):  # the code written here
            namespace.update(vars(klass))
    for name in ("__init__", "__dict__", "__weakref__"):
        namespace.pop(name, None)
    namespace["__init__"] = __init__
    return type(cls.__name__, (nn.Module,), namespace)


def torch_layer_subclass(cls):
    return any(k.__module__.startswith("torch.") and k is not nn.Module for k in cls.__mro__[1:])


def public_objects(module_name):
    """(name, object) of the functions and classes a reading module defines (not imports)."""
    module = importlib.import_module(f"lesson_utils.{module_name}")
    return [
        (name, obj)
        for name, obj in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == module.__name__
    ]


def takes(obj, n_args):
    try:
        inspect.signature(obj).bind(*range(n_args))
    except (TypeError, ValueError):
        return False
    return True


def code_candidates():
    """(check, label, what to pass it): every function or class of a reading module of the kind
    that a code exercise asks for."""
    for check, (kind, n_args) in CODE_ANSWERS.items():
        for module_name in READING_MODULES:
            for name, obj in public_objects(module_name):
                label = f"{check}-{module_name}.{name}"
                if kind == "function" and callable(obj) and takes(obj, n_args):
                    yield check, label, obj
                elif kind == "class" and inspect.isclass(obj) and issubclass(obj, nn.Module):
                    yield check, label, obj
                    if torch_layer_subclass(obj):
                        yield check, f"{label}-own-code", own_code(obj)


def code_params():
    for check, label, obj in code_candidates():
        marks = []
        if label == "check_dropout_module-models.Dropout-own-code":
            # the course's fast Dropout writes 03's exercise 1 out; it is moving out of models.py
            # (issue 31, section 4): this case passes once it is gone
            marks = [pytest.mark.xfail(reason="models.Dropout not yet moved", strict=False)]
        yield pytest.param(check, obj, id=label, marks=marks)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No download: a candidate such as load_vgg16 gets random weights."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def no_download(*args, **kwargs):
        raise urllib.error.URLError("offline")

    for _, weights, _ in importlib.import_module("lesson_utils.transfer").BACKBONES.values():
        monkeypatch.setattr(weights, "get_state_dict", no_download)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_download)


@pytest.mark.parametrize("check, candidate", list(code_params()))
def test_no_reading_module_holds_a_code_exercises_answer(check, candidate, offline):
    with torch.random.fork_rng(devices=[]):
        feedback = getattr(ex, check)(candidate)
    assert not feedback.correct, f"{candidate} passes {check}"


def transform_candidates():
    """Every transform a reading module holds, or gives from a function called with no
    arguments."""
    found = []
    for module_name in READING_MODULES:
        module = importlib.import_module(f"lesson_utils.{module_name}")
        for name, obj in vars(module).items():
            if name.startswith("_"):
                continue
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and takes(obj, 0):
                try:
                    with torch.random.fork_rng(devices=[]):
                        obj = obj()
                except Exception:  # not a factory of transforms
                    continue
            values = obj.values() if isinstance(obj, dict) else [obj]
            found += [
                (f"{module_name}.{name}", v)
                for v in values
                if type(v).__module__.startswith("torchvision.transforms")
            ]
    return found


def test_no_reading_module_holds_the_transforms_exercises_answer(offline):
    found = transform_candidates()
    assert found, "the reading modules hold transforms: the search should find them"
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    right_test = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    for train_name, train in found:
        for test_name, test in found + [("the right test transform", right_test)]:
            feedback = ex.check_train_transform(train, test)
            assert not feedback.correct, f"{train_name} and {test_name} pass check_train_transform"


def test_the_module_test_finds_answers_when_they_are_there():
    class FastDropout(nn.Dropout):  # a torch layer's subclass that writes dropout out
        def forward(self, x):
            if not self.training:
                return x
            return x * (torch.rand_like(x) >= self.p) / (1 - self.p)

    assert not ex.check_dropout_module(FastDropout).correct  # refused as PyTorch's own...
    assert torch_layer_subclass(FastDropout)
    assert ex.check_dropout_module(own_code(FastDropout)).correct  # ...but its code passes

    def train_only_block(model, block):
        for p in model.parameters():
            p.requires_grad = False
        blocks = importlib.import_module("lesson_utils.transfer").vgg16_conv_blocks(model)
        for index in blocks[block - 1]:
            for p in model.features[index].parameters():
                p.requires_grad = True
        for p in model.classifier[6].parameters():
            p.requires_grad = True
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    assert takes(train_only_block, CODE_ANSWERS["check_train_only_block"][1])
    assert ex.check_train_only_block(train_only_block).correct
    assert {check for check, _, _ in code_candidates()} == set(CODE_ANSWERS) - {
        "check_train_transform"
    }
    assert set(CODE_ANSWERS) == {n for n, (kind, _) in EXERCISES.items() if kind == "code"}
