"""Checks of notebook 02 (training on a GPU): a top-k accuracy measured as test() measures
it, and the number of optimizer steps in 30 epochs."""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from .core import (
    NOT_ANSWERED,
    _as_number,
    _call,
    _check_number,
    _never_raises,
    _not_written,
    _number,
    _right,
    _seeded,
    _show,
    _wrong,
)


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
        whole=True,
    )
