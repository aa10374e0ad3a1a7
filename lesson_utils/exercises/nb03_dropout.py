"""Checks of notebook 03 (dropout): a dropout module written from scratch, and the value of
the outputs that nn.Dropout keeps."""

import math

import torch
from torch.nn.modules.dropout import _DropoutNd
from torch.overrides import TorchFunctionMode

from .core import (
    _call,
    _check_number,
    _never_raises,
    _not_written,
    _right,
    _seeded,
    _show,
    _wanted_class,
    _wrong,
)


class _DropoutSpy(TorchFunctionMode):
    """Record every call of one of PyTorch's own dropout functions while the student's module
    runs, whatever name it is called by (F.dropout imported under another name, torch.dropout,
    torch._VF.dropout, torch.ops.aten.dropout, F.alpha_dropout, an nn.Dropout built inside
    forward...): a torch function mode sees each call of torch's API as it is made."""

    def __init__(self):
        super().__init__()
        self.used = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "") or str(func)
        if "dropout" in name.lower():
            self.used.append(name.split(".")[0])
        return func(*args, **(kwargs or {}))


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
        with _seeded(int(p * 100)), _DropoutSpy() as spy:
            found = _dropout_problem(layer, p)
        if found == ("", ""):
            return _not_written("forward")
        if spy.used:
            return _wrong(
                f"it calls PyTorch's {spy.used[0]}.",
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
