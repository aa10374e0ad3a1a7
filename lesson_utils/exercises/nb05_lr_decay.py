"""Checks of notebook 05 (learning-rate decay): a scheduler that warms up then cuts the rate
by 10 every 6 epochs, and the rate of ExponentialLR at epoch 6."""

import math

import torch

from ..training import scheduled_rates
from .core import (
    NOT_ANSWERED,
    Feedback,
    _call,
    _check_number,
    _error,
    _never_raises,
    _quiet,
    _right,
    _show,
    _wrong,
)


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
