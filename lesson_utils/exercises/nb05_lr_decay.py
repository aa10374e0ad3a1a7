"""Checks of notebook 05 (learning-rate decay): a scheduler that warms up then cuts the rate
by 10 every 6 epochs, a training loop that steps the scheduler once per epoch, and the rate of
ExponentialLR at epoch 6."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from ..training import scheduled_rates
from .core import (
    NOT_ANSWERED,
    Feedback,
    _call,
    _check_number,
    _error,
    _never_raises,
    _not_written,
    _number,
    _quiet,
    _right,
    _seeded,
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


# A training loop: optimizer.step() per batch, scheduler.step() once per epoch

# The check's own cases: (seed, optimizer, its learning rate, StepLR's step_size and gamma, epochs)
_LOOP_CASES = (
    (0, "SGD", 0.5, 2, 0.1, 5),
    (1, "Adam", 0.05, 1, 0.5, 3),
    (2, "SGD", 0.2, 3, 0.3, 7),
)


def _loop_case(seed, name, lr, step_size, gamma):
    """A tiny classifier (log-probabilities, as the lesson's network returns), 13 images in
    batches of 5 (the last holds 3, in a fixed order), its optimizer and StepLR."""
    with _seeded(seed):
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 4), nn.LogSoftmax(dim=1))
        images, labels = torch.randn(13, 3, 2, 2), torch.randint(0, 4, (13,))
    loader = DataLoader(TensorDataset(images, labels), batch_size=5)
    optimizer = getattr(torch.optim, name)(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma)
    return model, loader, optimizer, scheduler


def _reference_loop(model, optimizer, scheduler, loader, epochs, zero_grad=True):
    """The loop of the exercise (zero_grad=False: the same without clearing the gradients). Each
    pass over a DataLoader draws a seed from torch's random state: the student's is left alone."""
    rates = []
    with _seeded(0):
        for _ in range(epochs):
            rates.append(optimizer.param_groups[0]["lr"])
            for images, labels in loader:
                if zero_grad:
                    optimizer.zero_grad()
                F.nll_loss(model(images), labels).backward()
                optimizer.step()
            scheduler.step()
    return rates


def _traced(optimizer, scheduler):
    """The order of the steps, as text: "o" for each optimizer.step(), "s" for each
    scheduler.step() (the scheduler's own method, wrapped on this instance)."""
    trace = []
    optimizer.register_step_post_hook(lambda *args: trace.append("o"))
    step = scheduler.step

    def counted_step(*args, **kwargs):
        trace.append("s")
        return step(*args, **kwargs)

    scheduler.step = counted_step
    return trace


def _same_weights(model, other):
    return all(
        torch.allclose(a, b, rtol=1e-4, atol=1e-6)
        for a, b in zip(model.parameters(), other.parameters())
    )


def _loop_order(trace, epochs, batches):
    """What is wrong with the order of the steps, or None when it is the loop's."""
    optimizer_steps, scheduler_steps = trace.count("o"), trace.count("s")
    once = "step the scheduler once per epoch, after the epoch's batches."
    if optimizer_steps == 0:
        return _wrong(
            "optimizer.step() never ran on the optimizer passed in, so the weights never changed.",
            "use the optimizer train_epochs receives, and step it after each batch's backward "
            "pass.",
        )
    if optimizer_steps != epochs * batches:
        return _wrong(
            f"the optimizer stepped {optimizer_steps} times in {epochs} epochs of {batches} "
            f"batches each.",
            "train on every batch of loader, once in each of the epochs asked for.",
        )
    if scheduler_steps == 0:
        return _wrong(
            "the scheduler never stepped, so every epoch trained at the starting rate.", once
        )
    if scheduler_steps == optimizer_steps:
        return _wrong(
            f"the scheduler stepped {scheduler_steps} times, once per batch: step_size then "
            "counts batches, and the rate falls far too fast (the lesson's first mistake).",
            once,
        )
    if scheduler_steps != epochs:
        return _wrong(f"the scheduler stepped {scheduler_steps} times in {epochs} epochs.", once)
    if trace == (["s"] + ["o"] * batches) * epochs:
        return _wrong(
            "the scheduler stepped before each epoch's training, so the schedule runs one "
            "epoch early and the first rate is never used; PyTorch warns about this order "
            "(the lesson's second mistake).",
            once,
        )
    if trace != (["o"] * batches + ["s"]) * epochs:
        return _wrong("the scheduler stepped in the middle of an epoch.", once)
    return None


@_never_raises(
    "a function train_epochs(model, optimizer, scheduler, loader, epochs) that returns a list "
    "of learning rates."
)
def check_train_epochs(train_epochs):
    """train_epochs(model, optimizer, scheduler, loader, epochs): for each epoch, train on every
    batch of loader (zero_grad, forward, F.nll_loss, backward, optimizer.step()), then step the
    scheduler once; returns the learning rate each epoch trained with. Run on three cases of the
    check's own (SGD and Adam, StepLR with several step sizes) and compared with the reference
    loop's learning rates and final weights."""
    if train_epochs is None:
        return NOT_ANSWERED
    if not callable(train_epochs):
        return _wrong(
            f"{_show(train_epochs)} is not a function.",
            "def train_epochs(model, optimizer, scheduler, loader, epochs): ... return the rates.",
        )
    for seed, name, lr, step_size, gamma, epochs in _LOOP_CASES:
        model, loader, optimizer, scheduler = _loop_case(seed, name, lr, step_size, gamma)
        trace = _traced(optimizer, scheduler)
        call = (
            f"train_epochs(model, {name}(lr={lr:g}), StepLR(step_size={step_size}, "
            f"gamma={gamma:g}), loader, epochs={epochs})"
        )
        with _seeded(seed):
            result, error = _call(train_epochs, model, optimizer, scheduler, loader, epochs)
        if error:
            return _wrong(
                f"{call} raised {error}",
                "loader yields (images, labels) batches; the model returns log-probabilities, "
                "as the lesson's network does.",
            )
        if result is None and not trace:
            return _not_written("train_epochs")
        wrong_order = _loop_order(trace, epochs, len(loader))
        if wrong_order is not None:
            return wrong_order
        if result is None:
            return _wrong(
                f"{call} returned None.",
                "collect the learning rate of each epoch in a list, and return the list.",
            )
        try:
            rates = [float(rate) for rate in result]
        except Exception:  # not a sequence of numbers
            return _wrong(
                f"{call} returned {_show(result)}, not a list of numbers.",
                "return a list of learning rates, one per epoch.",
            )
        if len(rates) != epochs:
            return _wrong(
                f"{call} returned {len(rates)} learning rates for {epochs} epochs.",
                "one learning rate per epoch: the one that epoch trained with.",
            )
        schedule = [lr * gamma ** (e // step_size) for e in range(epochs + 1)]
        differ = [i for i in range(epochs) if not math.isclose(rates[i], schedule[i], rel_tol=1e-6)]
        if differ:
            after = all(map(math.isclose, rates, schedule[1:]))
            first = differ[0]
            return _wrong(
                f"{call}: epoch {first + 1} trained with {_number(schedule[first])}, and the "
                f"list says {_number(rates[first])}."
                + (" The list holds each rate after the scheduler stepped." if after else ""),
                "read the optimizer's learning rate at the start of each epoch, before it trains.",
            )
        reference, _, ref_optimizer, ref_scheduler = _loop_case(seed, name, lr, step_size, gamma)
        _reference_loop(reference, ref_optimizer, ref_scheduler, loader, epochs)
        if not _same_weights(model, reference):
            forgetful, _, optimizer, scheduler = _loop_case(seed, name, lr, step_size, gamma)
            _reference_loop(forgetful, optimizer, scheduler, loader, epochs, zero_grad=False)
            if _same_weights(model, forgetful):
                return _wrong(
                    f"after {call} the weights are those of a loop whose gradients add up "
                    "from batch to batch: each step then follows the sum of all the batches' "
                    "gradients so far.",
                    "clear the gradients once per batch, before its backward pass.",
                )
            return _wrong(
                f"after {call} the rates are right but the weights differ from those of the "
                "loop the exercise describes.",
                "per batch: clear the gradients, run the model, F.nll_loss on its output and "
                "the labels, backward, then the optimizer's step.",
            )
    return _right(
        "The optimizer steps after every batch, the scheduler once after each epoch, and the "
        "rates and weights match the reference loop's, for SGD and Adam."
    )


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
