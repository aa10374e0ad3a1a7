"""Checks for the exercises at the end of each notebook.

Each check_... takes the student's answer (a number, a function, a class, a transform) and says
whether it is right; when it is not, it says what it saw and gives a hint, never the answer. A
check runs the student's code on cases of its own (other sizes, seeds, learning rates), and it
never raises: whatever it is given, it answers with a Feedback. The worked answers are in
notebooks/solutions/.
"""

import contextlib
import functools
import math
import random
import re
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.utils.data import DataLoader, TensorDataset
from torchvision import models

from ..models import count_parameters
from ..training import scheduled_rates
from ..transfer import trainable_layers, vgg16_conv_blocks


@dataclass
class Feedback:
    """A check's verdict: true when the answer is right; a notebook shows the message."""

    correct: bool
    message: str

    def __bool__(self):
        return self.correct

    def __repr__(self):
        return self.message


NOT_ANSWERED = Feedback(False, "Not answered yet: replace None with your answer.")


def _right(why):
    return Feedback(True, f"Correct. {why}")


def _wrong(what, hint):
    return Feedback(False, f"Not quite: {what}\nHint: {hint}")


def _not_written(what):
    return Feedback(False, f"Not answered yet: {what} returns None; write its body.")


def _show(value, limit=60):
    """A short, safe description of what the student passed (repr can fail or be huge)."""
    try:
        text = repr(value)
    except Exception:  # a repr that raises, or an int too long to print
        text = (
            f"an int of {int(value.bit_length() * math.log10(2)) + 1} digits"
            if isinstance(value, int)
            else f"an object of type {type(value).__name__}"
        )
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error(err):
    text = " ".join(str(err).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _never_raises(expected):
    """Decorator: whatever goes wrong inside a check becomes feedback saying what it expected."""

    def decorate(check):
        @functools.wraps(check)
        def safe(*answers):
            try:
                return check(*answers)
            except Exception as err:  # the student's object misbehaved in a way not foreseen
                shown = ", ".join(_show(a, 40) for a in answers)
                return _wrong(f"the check could not use {shown} ({_error(err)}).", expected)

        return safe

    return decorate


@contextlib.contextmanager
def _seeded(seed):
    """Seed torch, random and numpy for the check; the student's random state is left as it was."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        random.seed(seed)
        np.random.seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def _quiet():
    """Warnings raised by the student's code would print paths of this machine: keep them out."""
    catcher = warnings.catch_warnings()
    catcher.__enter__()
    warnings.simplefilter("ignore")
    return catcher


# Numbers

_FRACTION = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*$")


def _as_number(answer, text=True):
    """(value, None) for a usable number, else (None, what is wrong with it). A text such as
    '1,024' or '1/5' counts as a number when `text` (an answer typed in), not when returned by
    the student's function."""
    if isinstance(answer, bool) or isinstance(answer, str) and not text:
        return None, f"{_show(answer)} is not a number."
    if isinstance(answer, str):
        text = answer.strip().replace(",", "").replace("_", "")
        fraction = _FRACTION.match(text)
        if fraction and float(fraction.group(2)) != 0:
            return float(fraction.group(1)) / float(fraction.group(2)), None
        try:
            value = float(text)
        except ValueError:
            return None, f"{_show(answer)} is not a number."
    else:
        try:
            value = float(answer)
        except OverflowError:
            return None, f"{_show(answer, 30)} is far too large."
        except Exception:  # a list, a dict, a function, a tensor of several values...
            return None, f"{_show(answer)} is not a number."
    if math.isnan(value):
        return None, "nan is not a number."
    if math.isinf(value):
        return None, f"{_show(answer)} is infinite."
    return value, None


def _number(value):
    """A number as the feedback shows it: whole numbers in full, others to 6 digits."""
    return f"{int(value)}" if float(value).is_integer() else f"{value:.6g}"


def _check_number(answer, expected, known_mistakes, hint, why, rel_tol=1e-6):
    """Compare a number; `known_mistakes` maps the wrong value of a typical slip to its cause."""
    if answer is None:
        return NOT_ANSWERED
    value, problem = _as_number(answer)
    if problem:
        return _wrong(problem, hint)
    if math.isclose(value, expected, rel_tol=rel_tol):
        return _right(why)
    for mistake, cause in known_mistakes.items():
        if math.isclose(value, mistake, rel_tol=rel_tol):
            return _wrong(f"{_show(answer, 30)} {cause}", hint)
    return _wrong(f"{_show(answer, 30)} is not it.", hint)


def _call(function, *args):
    """Call the student's function: (result, None), or (None, the error as text)."""
    catcher = _quiet()
    try:
        return function(*args), None
    except Exception as err:  # the student's code: any error is feedback
        return None, _error(err)
    finally:
        catcher.__exit__(None, None, None)


def _wanted_class(answer, name, signature):
    """None when `answer` is an nn.Module subclass, else the feedback that says why not."""
    if answer is None:
        return NOT_ANSWERED
    if isinstance(answer, nn.Module):
        return _wrong(
            f"{_show(answer)} is a module object; the check needs the class itself, to "
            "build its own.",
            f"pass {name}, not {name}(...).",
        )
    if not isinstance(answer, type) or not issubclass(answer, nn.Module):
        return _wrong(
            f"{_show(answer)} is not a subclass of nn.Module.",
            f"class {name}(nn.Module): with {signature} and forward(self, x).",
        )
    return None


# 01 · shapes


def _fc1_in_features(image_size, n_blocks):
    """What PyTorch gives: n blocks of a padded 3x3 conv, ReLU and 2x2 max-pool; channels 32, 64,
    128, ... (the spatial side is measured on one channel; the channels are counted)."""
    x = torch.zeros(1, 1, image_size, image_size)
    kernel = torch.zeros(1, 1, 3, 3)
    for _ in range(n_blocks):
        x = F.max_pool2d(F.relu(F.conv2d(x, kernel, padding=1)), 2)
    return x.shape[-2] * x.shape[-1] * 32 * 2 ** (n_blocks - 1)


IN_FEATURES_CASES = [(64, 2), (45, 1), (28, 3), (100, 4), (224, 5), (33, 3), (96, 3), (32, 1)]


@_never_raises("a function fc1_in_features(image_size, n_blocks) that returns a whole number.")
def check_in_features_function(fc1_in_features):
    """fc1_in_features(image_size, n_blocks): fc1's in_features after n_blocks blocks (padded 3x3
    conv, ReLU, 2x2 max-pool; 32 channels, doubled by each further block), for any image size."""
    hint = (
        "follow the side block by block: the padded convolution keeps it, the 2x2 max-pool "
        "halves it, rounding down; then side * side * the last block's channels."
    )
    if fc1_in_features is None:
        return NOT_ANSWERED
    if not callable(fc1_in_features):
        return _wrong(
            f"{_show(fc1_in_features)} is not a function.",
            "def fc1_in_features(image_size, n_blocks): ... return a number.",
        )
    for size, n in IN_FEATURES_CASES:
        result, error = _call(fc1_in_features, size, n)
        call = f"fc1_in_features({size}, {n})"
        if error:
            return _wrong(f"{call} raised {error}", "it takes two whole numbers.")
        if result is None:
            return _not_written("fc1_in_features")
        value, problem = _as_number(result, text=False)
        if problem:
            return _wrong(f"{call}: {problem}", hint)
        expected = _fc1_in_features(size, n)
        if math.isclose(value, expected, rel_tol=1e-9):
            continue
        side, channels = size // 2**n, 32 * 2 ** (n - 1)
        causes = {
            side * side * channels / 2: "It counts the channels of one block too few.",
            side * side * channels * 2: "It counts the channels of one block too many.",
            side * side * 64: "It always uses 64 channels.",
            side * channels: "It uses the side once; the feature map is side x side.",
            (size // 2 ** (n - 1)) ** 2 * channels: "It pools one time too few.",
            size * size * channels: "It leaves out the max-pooling.",
            math.ceil(size / 2**n) ** 2 * channels: "It rounds the side up.",
            (size / 2**n) ** 2 * channels: "It keeps fractions of a pixel: max-pooling "
            "an odd side rounds down.",
        }
        cause = next((c for v, c in causes.items() if math.isclose(value, v, rel_tol=1e-9)), "")
        return _wrong(
            f"{call} returned {_number(value)}, which is not what PyTorch gives. {cause}".strip(),
            hint,
        )
    return _right(
        "It gives the right in_features for every size and number of blocks tried, "
        "odd sizes included."
    )


def _parse_shape(answer):
    """A shape typed as a list, a tuple, a torch.Size or a text like '[3, 4]' or '3x4'; or None."""
    if isinstance(answer, str):
        parts = re.findall(r"-?\d+(?:\.\d+)?", answer.replace(",", " "))
        answer = [float(part) for part in parts] if parts else answer
    if isinstance(answer, (np.ndarray, torch.Tensor)) and answer.ndim == 1:
        answer = answer.tolist()
    if not isinstance(answer, (list, tuple, torch.Size)) or len(answer) > 8:
        return None
    shape = []
    for value in answer:
        number, problem = _as_number(value)
        if problem or isinstance(value, str) or number != int(number):
            return None
        shape.append(int(number))
    return shape


@_never_raises("a shape: a list of two whole numbers, like [4, 5].")
def check_view_shape(answer):
    """batch_size=128 on 50,000 training images, and forward flattens with x.view(128, -1): the
    shape that line gives for the last batch of the epoch (feature maps [N, 64, 8, 8])."""
    if answer is None:
        return NOT_ANSWERED
    batch = 128
    last = 50_000 % batch
    expected = [batch, last * 64 * 8 * 8 // batch]
    hint = (
        "how many images does the last batch hold? view keeps the number of values and fixes "
        "the rows to 128."
    )
    shape = _parse_shape(answer)
    if shape is None:
        return _wrong(f"{_show(answer)} is not a shape.", "answer a list of two whole numbers.")
    if shape == expected:
        return _right(
            "view keeps the values and fixes the rows: no error here, but each row mixes "
            "several images. Use x.view(x.shape[0], -1)."
        )
    mistakes = {
        (last, 4096): "is what x.view(x.shape[0], -1) gives; this line fixes the rows.",
        (batch, 4096): "would need a full batch; the last one is smaller.",
        (64, 1024): "is the lesson's case, with batches of 64.",
        (batch, 16 * 4096 // batch): "assumes a last batch of 16 images, the remainder "
        "for batches of 64.",
    }
    cause = mistakes.get(
        tuple(shape),
        "is not it." if len(shape) == 2 else "has not two dimensions: view(128, -1) gives two.",
    )
    return _wrong(f"{shape} {cause}", hint)


# 02 · training


class _ProbeNet(nn.Module):
    """A small classifier with dropout that records how it is called."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3 * 4 * 4, 10)
        self.dropout = nn.Dropout(0.5)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), len(x)))
        return F.log_softmax(self.dropout(self.linear(x.flatten(1))), dim=1)


def _probe_data():
    """23 images in batches of 5 (the last one holds 3), a network, and each k's right answer."""
    with _seeded(3):
        model = _ProbeNet()
        images = torch.randn(23, 3, 4, 4)
        with torch.no_grad():
            ranked = model.eval()(images).argsort(dim=1, descending=True)
        labels = torch.randint(0, 10, (23,))
        labels[::2] = ranked[::2, 1]  # every other image: the label is the 2nd guess
        state = model.state_dict()
    hits = {k: (ranked[:, :k] == labels[:, None]).any(dim=1).float() for k in (1, 2, 3, 10)}
    return images, labels, state, hits


@_never_raises("a function topk_accuracy(model, device, loader, k) that returns a percent.")
def check_topk_accuracy(topk_accuracy):
    """topk_accuracy(model, device, loader, k): the percent of the loader's images whose label is
    among the model's k most likely classes, measured as test() measures (eval mode, no
    gradients, every image once)."""
    hint = (
        "like test(): model.eval(), torch.no_grad(), then per batch output.topk(k, dim=1); "
        "count the hits over all images and divide once, by the number of images."
    )
    if topk_accuracy is None:
        return NOT_ANSWERED
    if not callable(topk_accuracy):
        return _wrong(
            f"{_show(topk_accuracy)} is not a function.",
            "def topk_accuracy(model, device, loader, k): ... return a percent.",
        )
    images, labels, state, hits = _probe_data()
    for k in (1, 3, 2, 10):
        with _seeded(k):
            model = _ProbeNet()
            model.load_state_dict(state)
            model.train()  # as a model is after training
            loader = DataLoader(TensorDataset(images, labels), batch_size=5)
            result, error = _call(topk_accuracy, model, torch.device("cpu"), loader, k)
        call = f"topk_accuracy(model, device, loader, k={k})"
        if error:
            return _wrong(
                f"{call} raised {error}",
                "loader yields (images, labels) batches; "
                "the model returns [N, 10] log-probabilities.",
            )
        if result is None:
            return _not_written("topk_accuracy")
        value, problem = _as_number(result, text=False)
        if problem:
            return _wrong(f"{call}: {problem}", hint)
        if not model.calls:
            return _wrong(f"{call} never ran the model.", hint)
        if any(training for training, _, _ in model.calls):
            return _wrong(
                "the model ran in training mode, so dropout changed its predictions.",
                "call model.eval() first, as test() does.",
            )
        if any(grad for _, grad, _ in model.calls):
            return _wrong(
                "the model ran with gradients on: evaluation does not need them.",
                "put the loop under torch.no_grad(), as test() does.",
            )
        seen = sum(n for _, _, n in model.calls)
        if seen != len(images):
            return _wrong(
                f"the model saw {seen} images; the loader holds {len(images)}.",
                "go through every batch once, the smaller last one included.",
            )
        expected = 100 * hits[k].mean().item()
        if math.isclose(value, expected, rel_tol=1e-4):
            continue
        batch_means = 100 * torch.stack([b.mean() for b in hits[k].split(5)]).mean().item()
        causes = {
            expected / 100: "a fraction between 0 and 1; the lesson reports percent.",
            hits[k].sum().item(): "a count of images, not a percent.",
            batch_means: "the mean of the batches' accuracies: the last batch holds 3 "
            "images but counts as much as a full one of 5.",
        }
        if k > 1:
            causes[100 * hits[1].mean().item()] = "the top-1 accuracy: k is left out."
        cause = next(
            (c for v, c in causes.items() if math.isclose(value, v, rel_tol=1e-4)),
            "not the percent of images whose label is among the k best guesses.",
        )
        return _wrong(f"{call} returned {_number(value)}: {cause}", hint)
    return _right("Eval mode, no gradients, and every image counted once, for any k.")


@_never_raises("a number.")
def check_optimizer_steps(answer):
    """How many times optimizer.step() runs in 30 epochs, batch_size=128, 50,000 images."""
    epochs, batch, n = 30, 128, 50_000
    full, last = divmod(n, batch)
    per_epoch = full + (1 if last else 0)
    return _check_number(
        answer,
        epochs * per_epoch,
        {
            epochs * full: "leaves out the last, smaller batch: it is a step too.",
            per_epoch: "is one epoch.",
            epochs * n: "counts images; the optimizer steps once per batch.",
            epochs * math.ceil(n / 64): "is for batches of 64.",
        },
        "one step per batch (the small last one included), for every epoch.",
        "One step per batch, the last small one included.",
    )


# 03 · dropout


@contextlib.contextmanager
def _spy_on_dropout():
    """Record calls of PyTorch's own dropout functions while the student's module runs."""
    used, originals = [], [(F, "dropout", F.dropout), (torch, "dropout", torch.dropout)]

    def spy(original):
        def wrapper(*args, **kwargs):
            used.append(original.__name__)
            return original(*args, **kwargs)

        return wrapper

    for owner, name, original in originals:
        setattr(owner, name, spy(original))
    try:
        yield used
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def _dropout_problem(layer, p):
    """What is wrong with the student's dropout layer for probability p, or None."""
    x = 1 + torch.rand(400, 500)
    original = x.clone()
    layer.train()
    y, error = _call(layer, x)
    if error:
        return f"MyDropout({p}) raised {error} on a [400, 500] tensor", "forward(self, x)."
    if y is None:
        return "", ""
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        return (
            f"in training mode it returned {_show(y)} for a [400, 500] tensor.",
            "return a tensor of the input's shape.",
        )
    if not torch.equal(x, original):
        return (
            "it changed its input in place.",
            "build a new tensor (x * mask * scale) instead of writing into x.",
        )
    zeroed = (y == 0).float()
    share = zeroed.mean().item()
    if abs(share - p) > 0.02:
        return (
            f"with p={p} it zeroed {share:.0%} of the values.",
            "p is the probability of zeroing a value: compare torch.rand with p.",
        )
    kept = y != 0
    ratio = y[kept] / x[kept]
    if ratio.numel() and not torch.allclose(ratio, ratio[0].expand_as(ratio), rtol=1e-4):
        return (
            "the values it keeps are not all multiplied by the same factor.",
            "one factor for every kept value.",
        )
    if p > 0 and ratio.numel() and not math.isclose(ratio[0].item(), 1 / (1 - p), rel_tol=1e-4):
        factor = ratio[0].item()
        what = (
            "the values it keeps are not scaled"
            if math.isclose(factor, 1, rel_tol=1e-4)
            else f"with p={p} the values it keeps are multiplied by {factor:.4g}"
        )
        return (
            f"{what}, so the mean of the output is {factor * (1 - p):.2f} times the input's.",
            "the factor must keep the mean unchanged: only 1 - p of the values remain.",
        )
    rows, columns = zeroed.mean(dim=1), zeroed.mean(dim=0)
    if p > 0 and ((rows == 0) | (rows == 1)).float().mean() > 0.5:
        return ("it drops whole rows at once.", "draw a separate random number for every value.")
    if p > 0 and ((columns == 0) | (columns == 1)).float().mean() > 0.5:
        return (
            "every row gets the same mask.",
            "draw a random number for every value, with the shape of x: torch.rand_like(x).",
        )
    again, _ = _call(layer, x)
    if p > 0 and isinstance(again, torch.Tensor) and torch.equal(again == 0, y == 0):
        return ("it drops the same values at every call.", "draw a new mask in every forward.")
    layer.eval()
    z, error = _call(layer, x)
    if error or not isinstance(z, torch.Tensor) or not torch.allclose(z, x):
        seen = f"raised {error}" if error else "does not return its input unchanged"
        return (
            f"in eval mode it {seen}.",
            "self.training is False after model.eval(): then return x as it is.",
        )
    layer.train()
    leaf = (1 + torch.rand(1000)).requires_grad_()
    out, error = _call(layer, leaf)
    try:
        out.sum().backward()
        flows = leaf.grad is not None and torch.allclose(leaf.grad, (out != 0) / (1 - p))
    except Exception:  # no graph to go back through
        flows = False
    if not flows:
        return (
            "gradients do not flow back through it as through dropout.",
            "compute with tensor operations on x (no .detach(), no .item(), no NumPy).",
        )
    return None


@_never_raises("a class MyDropout(nn.Module) with __init__(self, p) and forward(self, x).")
def check_dropout_module(MyDropout):
    """MyDropout(p), an nn.Module written from scratch: in training mode it zeroes each value with
    probability p and scales the kept ones by 1 / (1 - p); in eval mode it changes nothing. Checked
    statistically on 200,000 values, with fixed seeds, for several p."""
    problem = _wanted_class(MyDropout, "MyDropout", "__init__(self, p)")
    if problem is not None:
        return problem
    if issubclass(MyDropout, _DropoutNd):
        return _wrong(
            "it is PyTorch's own dropout.",
            "write it from scratch: a random mask from torch.rand, and a scale.",
        )
    for p in (0.3, 0.75, 0.0):
        layer, error = _call(MyDropout, p)
        if error:
            return _wrong(f"MyDropout({p}) raised {error}", "__init__(self, p) keeps p.")
        if any(isinstance(m, _DropoutNd) for m in layer.modules()):
            return _wrong(
                "it holds an nn.Dropout.",
                "write it from scratch: a mask from torch.rand, and a scale.",
            )
        with _seeded(int(p * 100)), _spy_on_dropout() as used:
            found = _dropout_problem(layer, p)
        if found == ("", ""):
            return _not_written("forward")
        if used:
            return _wrong(
                f"it calls PyTorch's {used[0]}.",
                "write it from scratch: a mask from torch.rand, and a scale.",
            )
        if found:
            return _wrong(*found)
    return _right(
        "It drops the right share of values, keeps the mean, and steps aside in eval mode."
    )


@_never_raises("a number.")
def check_dropout_value(answer):
    """nn.Dropout(p=0.2) in training mode gets torch.full((50, 100), 3.0): the value of every
    output that is not zero."""
    p, value = 0.2, 3.0
    return _check_number(
        answer,
        value / (1 - p),
        {
            value: "is the input: the kept values are scaled.",
            value * (1 - p): "multiplies by the keep probability; the scale goes the other way.",
            value / p: "divides by p, the probability of zeroing.",
            value * p: "multiplies by p.",
            1 / (1 - p): "is the factor; the input values are 3.",
        },
        "the kept values are scaled so that the mean of the output stays that of the input.",
        "Scaled by 1 / (1 - p), so the mean stays 3.",
    )


# 04 · modular code


def _reference_block(conv, norm, x, training, order):
    h = conv(x)
    if norm is not None and order == "norm, relu":
        h = F.batch_norm(
            h, norm.running_mean, norm.running_var, norm.weight, norm.bias, training, 0.0, norm.eps
        )
    h = F.relu(h)
    if norm is not None and order == "relu, norm":
        h = F.batch_norm(
            h, norm.running_mean, norm.running_var, norm.weight, norm.bias, training, 0.0, norm.eps
        )
    return F.max_pool2d(h, 2)


def _norm_block_problem(NormConvBlock, c_in, c_out, batch_norm, keyword=True):
    call = (
        f"NormConvBlock({c_in}, {c_out}, batch_norm={batch_norm})"
        if keyword
        else f"NormConvBlock({c_in}, {c_out})"
    )
    block, error = (
        _call(NormConvBlock, c_in, c_out)
        if not keyword
        else _call(lambda: NormConvBlock(c_in, c_out, batch_norm=batch_norm))
    )
    if error:
        return (
            f"{call} raised {error}",
            "__init__(self, in_channels, out_channels, batch_norm=False).",
        )
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, _BatchNorm)]
    if not convs and _call(block, torch.zeros(1, c_in, 4, 4))[0] is None:
        return "", ""  # the notebook's empty template
    if len(convs) != 1:
        return (f"{call} holds {len(convs)} nn.Conv2d layers.", "one convolution per block.")
    conv = convs[0]
    padding = (1, 1) if conv.padding == "same" else conv.padding  # the same for a 3x3 kernel
    if (
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        padding,
        conv.stride,
        conv.dilation,
    ) != (c_in, c_out, (3, 3), (1, 1), (1, 1), (1, 1)):
        return (
            f"{call} holds {_show(conv, 90)}.",
            "a 3x3 convolution with padding=1 from in_channels to out_channels.",
        )
    if not batch_norm and norms:
        return f"{call} holds a {type(norms[0]).__name__}.", "only batch_norm=True adds one."
    if batch_norm and len(norms) != 1:
        return f"{call} holds {len(norms)} BatchNorm layers.", "one nn.BatchNorm2d, when asked."
    norm = norms[0] if norms else None
    if norm is not None and (not isinstance(norm, nn.BatchNorm2d) or norm.num_features != c_out):
        return (
            f"{call} holds {_show(norm, 70)}.",
            "nn.BatchNorm2d normalizes each channel of the convolution's output.",
        )
    x = torch.randn(6, c_in, 9, 9)
    for training in (True, False):
        block.train(training)
        mode = "training" if training else "eval"
        with torch.no_grad():
            if norm is not None and norm.running_mean is not None and not training:
                norm.running_mean.copy_(torch.rand(c_out))  # so that eval differs from training
                norm.running_var.copy_(1 + torch.rand(c_out))
            y, error = _call(block, x)
            if error:
                return f"in {mode} mode, {call} raised {error}", "forward(self, x)."
            if y is None:
                return "", ""
            if not isinstance(y, torch.Tensor) or y.shape != (6, c_out, 4, 4):
                shape = list(y.shape) if isinstance(y, torch.Tensor) else _show(y)
                return (
                    f"for a [6, {c_in}, 9, 9] input, {call} returns {shape}.",
                    "the block keeps the side through the convolution and halves it, "
                    "rounding down, in the max-pool.",
                )
            batch_stats = training or norm is None or norm.running_mean is None
            if torch.allclose(
                y, _reference_block(conv, norm, x, batch_stats, "norm, relu"), atol=1e-5
            ):
                continue
            if norm is not None and torch.allclose(
                y, _reference_block(conv, norm, x, batch_stats, "relu, norm"), atol=1e-5
            ):
                return (
                    "BatchNorm comes after the ReLU.",
                    "normalize the convolution's output, then apply the ReLU.",
                )
            if (
                norm is not None
                and not batch_stats
                and torch.allclose(
                    y, _reference_block(conv, norm, x, True, "norm, relu"), atol=1e-5
                )
            ):
                return (
                    "in eval mode it still normalizes with the batch's statistics.",
                    "call the nn.BatchNorm2d module: it switches to its running statistics "
                    "in eval mode.",
                )
            return (
                f"in {mode} mode the output of {call} differs from convolution, "
                f"{'BatchNorm, ' if norm is not None else ''}ReLU, 2x2 max-pool applied "
                "to the same input.",
                "apply the layers in that order in forward.",
            )
    return None


@_never_raises(
    "a class NormConvBlock(nn.Module) with __init__(self, in_channels, out_channels, "
    "batch_norm=False) and forward(self, x)."
)
def check_norm_conv_block(NormConvBlock):
    """NormConvBlock(in_channels, out_channels, batch_norm=False): a 3x3 convolution (padding 1),
    then nn.BatchNorm2d when batch_norm is True, ReLU and 2x2 max-pooling. Run in training and eval
    mode against the same layers applied by hand, for several channel counts."""
    problem = _wanted_class(
        NormConvBlock,
        "NormConvBlock",
        "__init__(self, in_channels, out_channels, batch_norm=False)",
    )
    if problem is not None:
        return problem
    cases = [(3, 8, True, True), (8, 16, False, True), (5, 12, True, True), (4, 6, False, False)]
    for c_in, c_out, batch_norm, keyword in cases:
        with _seeded(c_in):
            found = _norm_block_problem(NormConvBlock, c_in, c_out, batch_norm, keyword)
        if found == ("", ""):
            return _not_written("forward")
        if found:
            return _wrong(*found)
    return _right("Convolution, optional BatchNorm, ReLU, max-pool, in training and eval mode.")


@_never_raises("a number.")
def check_norm_block_parameters(answer):
    """The trainable parameters of NormConvBlock(64, 128, batch_norm=True), the convolution with
    its bias."""
    c_in, c_out = 64, 128
    conv = c_in * c_out * 9 + c_out
    return _check_number(
        answer,
        conv + 2 * c_out,
        {
            conv: "counts the convolution only; BatchNorm2d learns a scale and a shift per "
            "channel.",
            conv + 4 * c_out: "counts the running mean and variance, which are buffers, not "
            "parameters: no gradient changes them.",
            conv + c_out: "is one parameter per channel short: the convolution has a bias per "
            "channel, and BatchNorm2d learns two parameters per channel.",
            c_in * c_out * 9: "counts the convolution's weights only.",
        },
        "the convolution's weights and biases, plus BatchNorm2d's weight and bias (one of each "
        "per channel); count_parameters(NormConvBlock(64, 128, batch_norm=True)) checks it.",
        "BatchNorm2d adds a weight and a bias per channel; its running statistics are buffers.",
    )


# 05 · learning-rate decay


def _warmup_factor(epoch):
    """The schedule of the exercise, as a fraction of the optimizer's rate (epochs from 1)."""
    return epoch / 4 if epoch <= 4 else 0.1 ** ((epoch - 4) // 6)


def _rates(make_scheduler, lr, epochs):
    """The learning rate of each epoch, stepped as fit does: the optimizer, then the scheduler."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler, error = _call(make_scheduler, optimizer)
    if error:
        return None, f"make_scheduler(optimizer) raised {error}"
    if scheduler is None:
        return None, None
    catcher = _quiet()
    try:
        rates = scheduled_rates(optimizer, scheduler, epochs)
    except Exception as err:  # not a scheduler, or a broken one
        return None, f"stepping {_show(scheduler, 40)} raised {_error(err)}"
    finally:
        catcher.__exit__(None, None, None)
    return rates, None


@_never_raises("a function make_scheduler(optimizer) that returns a scheduler.")
def check_warmup_scheduler(make_scheduler):
    """make_scheduler(optimizer): a linear warm-up over epochs 1-4 (a quarter, half, three quarters,
    then all of the optimizer's rate), then the rate divided by 10 after epoch 9 and after every 6
    epochs from there; stepped once per epoch. Checked for 22 epochs with two starting rates."""
    hint = (
        "LinearLR for the warm-up, then StepLR, chained with SequentialLR(milestones=...); "
        "or one LambdaLR whose function of the epoch index (from 0) returns the factor."
    )
    if make_scheduler is None:
        return NOT_ANSWERED
    if not callable(make_scheduler):
        return _wrong(
            f"{_show(make_scheduler)} is not a function.",
            "def make_scheduler(optimizer): return a scheduler of that optimizer.",
        )
    for lr in (0.4, 2e-3):
        rates, error = _rates(make_scheduler, lr, 22)
        if error:
            return _wrong(error, "make_scheduler(optimizer) returns a scheduler of that optimizer.")
        if rates is None:
            return Feedback(
                False, "Not answered yet: make_scheduler returns None; return a scheduler."
            )
        factors = [rate / lr for rate in rates]
        wrong = [
            e
            for e, f in enumerate(factors, start=1)
            if not math.isclose(f, _warmup_factor(e), rel_tol=1e-6)
        ]
        if not wrong:
            continue
        if all(math.isclose(f, 1) for f in factors):
            return _wrong(
                "the rate never changes.",
                "build the scheduler on the optimizer make_scheduler receives.",
            )
        first = wrong[0]
        shown = ", ".join(f"{f:.4g}" for f in factors[: max(first, 4) + 1])
        late = [_warmup_factor(e - 1) for e in range(1, 23)]
        early = [_warmup_factor(e + 1) for e in range(1, 23)]
        shift = (
            " The schedule runs one epoch late."
            if all(map(math.isclose, factors, late))
            else " The schedule runs one epoch early."
            if all(map(math.isclose, factors, early))
            else ""
        )
        return _wrong(
            f"with the optimizer's lr={lr:g}, epoch {first} uses {rates[first - 1]:.4g}: "
            f"{factors[first - 1]:.4g} times the optimizer's rate. Its factors from "
            f"epoch 1: {shown}, ...{shift}",
            hint,
        )
    return _right("Warm-up, then a cut by 10 every 6 epochs, relative to the optimizer's own rate.")


@_never_raises("a number.")
def check_exponential_lr(answer):
    """Adam(lr=1e-3) with ExponentialLR(gamma=0.9) stepped after every epoch: the rate of epoch 6
    (epochs numbered from 1)."""
    lr, gamma, epoch = 1e-3, 0.9, 6
    return _check_number(
        answer,
        lr * gamma ** (epoch - 1),
        {
            lr * gamma**epoch: "multiplies once too often: epoch 1 uses the starting rate.",
            lr * gamma ** (epoch - 2): "multiplies once too few.",
            lr * (1 - (1 - gamma) * (epoch - 1)): "subtracts 10% of the starting rate each time; "
            "ExponentialLR multiplies.",
            lr * gamma: "multiplies only once.",
            lr: "is the starting rate.",
        },
        "ExponentialLR multiplies the rate by gamma at every scheduler.step(), and the scheduler "
        "steps after each epoch: count the steps before epoch 6 starts.",
        "Five multiplications by 0.9 before epoch 6.",
        rel_tol=2e-3,
    )


# 06 · data augmentation

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # the statistics of CIFAR-10's training images
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
SHIFT = 2  # the crop of the exercise shifts the image by up to 2 pixels
DRAWS = 200


def _check_image():
    """A 32x32 RGB image of noise: no two shifts or flips of it look alike."""
    gen = torch.Generator().manual_seed(0)
    array = torch.randint(0, 256, (32, 32, 3), generator=gen, dtype=torch.uint8).numpy()
    return Image.fromarray(array)


def _normalized(image, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def _variants(base, max_shift):
    """{(flipped, dy, dx): (image, mask)}: out[i, j] = src[i + dy, j + dx] where that exists."""
    found = {}
    for flipped in (False, True):
        src = base.flip(-1) if flipped else base
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                image, mask = torch.zeros_like(src), torch.zeros(32, 32, dtype=torch.bool)
                rows = slice(max(0, -dy), 32 - max(0, dy))
                cols = slice(max(0, -dx), 32 - max(0, dx))
                image[:, rows, cols] = src[
                    :, max(0, dy) : 32 + min(0, dy), max(0, dx) : 32 + min(0, dx)
                ]
                mask[rows, cols] = True
                found[(flipped, dy, dx)] = image, mask
    return found


def _match(output, variants):
    for key, (image, mask) in variants.items():
        if torch.allclose(output[:, mask], image[:, mask], atol=1e-3):
            return key
    return None


def _outputs(transform, image, seeds):
    """The transform's output for each seed, as tensors; or the feedback that says why not."""
    results = []
    for seed in seeds:
        with _seeded(seed):
            out, error = _call(transform, image.copy())
        if error:
            return None, f"on a 32x32 PIL image it raised {error}"
        if not isinstance(out, torch.Tensor):
            return None, f"it returns {_show(out, 50)}, not a tensor"
        if tuple(out.shape) != (3, 32, 32) or not out.is_floating_point():
            return None, f"it returns a {out.dtype} tensor of shape {list(out.shape)}"
        results.append(out.detach().float().cpu())
    return results, None


def _test_transform_problem(test_transform, image):
    hint = "the test images are seen as they are: convert to a tensor and normalize, nothing else."
    if not callable(test_transform):
        return f"the test transform, {_show(test_transform)}, is not a transform.", hint
    outputs, error = _outputs(test_transform, image, range(12))
    if error:
        return f"the test transform: {error}.", hint
    if any(not torch.equal(outputs[0], o) for o in outputs[1:]):
        differ = len({tuple(o.flatten()[:512].tolist()) for o in outputs})
        return (
            f"the test transform gave {differ} different outputs for the same image over 12 "
            "seeds: it augments. A test image must get the same score every time.",
            hint,
        )
    out = outputs[0]
    if torch.allclose(out, _normalized(image), atol=1e-3):
        return None
    if torch.allclose(out, _normalized(image, (0, 0, 0), (1, 1, 1)), atol=1e-3):
        return (
            "the test transform does not normalize.",
            "Normalize with the question's mean and std.",
        )
    if torch.allclose(out, _normalized(image, (0.5,) * 3, (0.5,) * 3), atol=1e-3):
        return (
            "the test transform normalizes with 0.5 and 0.5, not with CIFAR-10's statistics.",
            "use the mean and std given in the question.",
        )
    if _match(out, _variants(_normalized(image), 4)):
        return "the test transform moves or flips the image (the same way every time).", hint
    return "the test transform's output is not the normalized image.", hint


def _train_transform_problem(train_transform, image):
    hint = (
        "a flip with probability 0.5, RandomCrop(32, padding=...) for a shift of up to 2 "
        "pixels, ToTensor and Normalize with the question's mean and std."
    )
    if not callable(train_transform):
        return f"the train transform, {_show(train_transform)}, is not a transform.", hint
    outputs, error = _outputs(train_transform, image, range(DRAWS))
    if error:
        return f"the train transform: {error}.", hint
    variants = _variants(_normalized(image), SHIFT)
    seen = []
    for out in outputs:
        key = _match(out, variants)
        if key is None:
            if _match(out, _variants(_normalized(image), 6)):
                return (
                    "the train transform shifts the image by more than 2 pixels.",
                    "the padding sets how far the crop can move.",
                )
            for mean, std, what in (
                ((0.5,) * 3, (0.5,) * 3, "with 0.5 and 0.5, not with CIFAR-10's statistics"),
                ((0,) * 3, (1,) * 3, "not at all"),
            ):
                if _match(out, _variants(_normalized(image, mean, std), SHIFT)):
                    return (
                        f"the train transform normalizes {what}.",
                        "train and test images must be normalized alike: the question's mean "
                        "and std.",
                    )
            return (
                "an output of the train transform is not a flipped or shifted copy of the "
                "image: it changes the pixels in another way.",
                hint,
            )
        seen.append(key)
    flips = sum(flipped for flipped, _, _ in seen)
    dys, dxs = {dy for _, dy, _ in seen}, {dx for _, _, dx in seen}
    if flips in (0, DRAWS):
        return (
            f"the train transform flipped the image in {flips} of {DRAWS} draws.",
            "a random flip, half of the time: RandomHorizontalFlip's default p.",
        )
    if not 0.35 * DRAWS <= flips <= 0.65 * DRAWS:
        return (
            f"the train transform flipped the image in {flips} of {DRAWS} draws.",
            "flip half of the time.",
        )
    if dys == {0} and dxs == {0}:
        return (
            "the crop of the train transform never moved the image.",
            "RandomCrop(32) has room to move only if the 32x32 image is padded first.",
        )
    full = set(range(-SHIFT, SHIFT + 1))
    if dys != full or dxs != full:
        return (
            f"in {DRAWS} draws the train transform shifted the image by at most "
            f"{max(map(abs, dys | dxs))} pixel(s).",
            "the padding sets how far the crop moves.",
        )
    return None


@_never_raises(
    "two transforms, train_transform and test_transform, that take a PIL image and "
    "return a [3, 32, 32] tensor."
)
def check_train_transform(train_transform, test_transform=None):
    """The pair for CIFAR-10 normalized with its own mean and std: a train transform (random flip,
    a random shift of up to 2 pixels, to tensor, normalize) and a test transform (to tensor,
    normalize). Judged by what they do to an image over 200 seeds, not by how they are written."""
    if train_transform is None or test_transform is None:
        return NOT_ANSWERED
    image = _check_image()
    for problem in (
        _test_transform_problem(test_transform, image),
        _train_transform_problem(train_transform, image),
    ):
        if problem:
            return _wrong(*problem)
    return _right(
        "The train transform flips half of the time and shifts by up to 2 pixels; the "
        "test transform only converts and normalizes, alike."
    )


@_never_raises("a number (a fraction such as 1/5 is fine).")
def check_unchanged_probability(answer):
    """RandomHorizontalFlip() and RandomCrop(32, padding=3): the probability that a training image
    comes out exactly as it is (not flipped, not shifted)."""
    offsets = 2 * 3 + 1
    return _check_number(
        answer,
        0.5 / offsets**2,
        {
            1 / offsets**2: "leaves out the flip: half of the time the image is flipped.",
            0.5 / offsets: "counts the offsets of one direction; the crop moves across and down.",
            0.5 / 6**2: "counts 6 offsets per direction; count them from 0 to 2 * 3.",
            0.5 / 81: "is for padding=4.",
            0.5: "is the flip alone; the crop must also land in the middle.",
            1 / (offsets**2 + 2): "adds the flip to the crop positions; multiply the "
            "probabilities.",
        },
        "the crop's offset is uniform in each direction, and independent of the flip: multiply "
        "the probabilities of 'not flipped', 'middle across' and 'middle down'.",
        "The flip and both offsets must all come out right.",
        rel_tol=5e-3,
    )


# 07 · transfer learning


def _meta_vgg16(n_classes=10):
    """VGG16 with a new head, built on the meta device: all the shapes, no memory, no time."""
    with torch.device("meta"):
        model = models.vgg16(weights=None)
        model.classifier[6] = nn.Linear(4096, n_classes)
    return model


def _expected_layers(model, block):
    convs = [
        f"features.{i}"
        for i in vgg16_conv_blocks(model)[block - 1]
        if isinstance(model.features[i], nn.Conv2d)
    ]
    return convs + ["classifier.6"]


@_never_raises("a function train_only_block(model, block) that returns a number of parameters.")
def check_train_only_block(train_only_block):
    """train_only_block(model, block): freeze all of a VGG16 but conv block `block` (1 to 5) and the
    new head classifier[6]; return the number of parameters that train. Run on fresh VGG16s, some
    partly frozen already, for several blocks."""
    hint = (
        "freeze every parameter first, then unfreeze the layers of vgg16_conv_blocks(model)"
        "[block - 1] and classifier[6]; count p.numel() of the parameters with requires_grad."
    )
    if train_only_block is None:
        return NOT_ANSWERED
    if not callable(train_only_block):
        return _wrong(
            f"{_show(train_only_block)} is not a function.",
            "def train_only_block(model, block): ... return a number.",
        )
    for block, start in ((2, "trainable"), (5, "frozen"), (1, "mixed"), (4, "trainable")):
        model = _meta_vgg16()
        head = model.classifier[6]
        if start == "frozen":
            for p in model.parameters():
                p.requires_grad = False
        elif start == "mixed":
            for p in list(model.features[24].parameters()) + list(model.classifier[0].parameters()):
                p.requires_grad = False
            for p in head.parameters():
                p.requires_grad = False
        call = f"train_only_block(model, {block})"
        result, error = _call(train_only_block, model, block)
        if error:
            return _wrong(
                f"{call} raised {error}",
                "model is a VGG16 with its new head; block is a number from 1 to 5.",
            )
        if model.classifier[6] is not head:
            return _wrong(
                f"{call} replaced classifier[6].",
                "the model already has its new head: only choose what trains.",
            )
        if result is None and all(p.requires_grad for p in model.parameters()):
            return _not_written("train_only_block")  # the notebook's empty template
        training, wanted = trainable_layers(model), _expected_layers(model, block)
        if training != wanted:
            neighbours = [b for b in (block - 1, block + 1) if 1 <= b <= 5]
            if any(training == _expected_layers(model, b) for b in neighbours):
                return _wrong(
                    f"{call} trains the convolutions of another block.",
                    "blocks are numbered from 1; Python's list indices from 0.",
                )
            extra = [name for name in training if name not in wanted]
            parts = []
            if extra:
                parts.append(
                    f"these layers train but should be frozen: {', '.join(extra[:6])}"
                    + (", ..." if len(extra) > 6 else "")
                )
            frozen = [name for name in wanted[:-1] if name not in training]
            if frozen:
                parts.append(
                    f"{len(frozen)} of block {block}'s {len(wanted) - 1} convolutions are frozen"
                )
            if "classifier.6" not in training:
                parts.append("the new head is frozen")
            return _wrong(f"after {call}, " + "; ".join(parts) + ".", hint)
        if result is None:
            return Feedback(
                False,
                "Not answered yet: train_only_block returns None; return the "
                "number of parameters that train.",
            )
        value, problem = _as_number(result, text=False)
        if problem:
            return _wrong(f"{call}: {problem}", hint)
        trainable = count_parameters(model, trainable_only=True)
        if math.isclose(value, trainable, rel_tol=1e-9):
            continue
        causes = {
            count_parameters(model): "every parameter, frozen ones too.",
            count_parameters(model) - trainable: "the frozen parameters.",
            sum(p.requires_grad for p in model.parameters()): "parameter tensors, not the "
            "numbers in them.",
        }
        cause = next((c for v, c in causes.items() if math.isclose(value, v)), "")
        what = f"counts {cause}" if cause else "is not the number of parameters that train."
        return _wrong(f"the layers are right, but the number {call} returned {what}", hint)
    return _right(
        "Only the chosen block and the head train, whatever the model's state before, "
        "and the count matches."
    )


@_never_raises("a number.")
def check_head_parameters(answer):
    """Trainable parameters of VGG16 when everything is frozen but a new head for CIFAR-100's
    100 classes."""
    head = 4096 * 100 + 100
    return _check_number(
        answer,
        head,
        {
            4096 * 100: "counts the weights only; each output has a bias.",
            4096 * 5 + 5: "is the 5-class head of the notebook.",
            4096 * 10 + 10: "is a 10-class head.",
            4096 * 1000 + 1000: "is ImageNet's 1,000-class layer, which the new one replaces.",
        },
        "in_features * out_features weights plus out_features biases.",
        "One weight per input per class, plus a bias per class.",
    )
