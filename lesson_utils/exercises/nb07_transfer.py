"""Checks of notebook 07 (transfer learning): train only one conv block of a VGG16 and its
new head, and count the parameters of a new head for 100 classes."""

import math

import torch
import torch.nn as nn
from torchvision import models

from ..models import count_parameters
from ..transfer import trainable_layers, vgg16_conv_blocks
from .core import (
    NOT_ANSWERED,
    Feedback,
    _as_number,
    _call,
    _check_number,
    _never_raises,
    _not_written,
    _right,
    _seeded,
    _show,
    _wrong,
)


_ONLY_CHOOSE = (
    "the pretrained weights are what transfer: set requires_grad, and change nothing else "
    "(no new layers, no reset_parameters)."
)


def _meta_vgg16(n_classes=10):
    """VGG16 with a new head, built on the meta device: all the shapes, no memory, no time."""
    with torch.device("meta"):
        model = models.vgg16(weights=None)
        model.classifier[6] = nn.Linear(4096, n_classes)
    return model


_REAL_VGG16 = []  # one real VGG16 per process (building one takes seconds)


def _real_vgg16():
    """A VGG16 with values (random) and a new head, every parameter trainable again."""
    if not _REAL_VGG16:
        with _seeded(0):  # building it draws random numbers: the student's random state stays
            model = models.vgg16(weights=None)
            model.classifier[6] = nn.Linear(4096, 10)
        _REAL_VGG16.append(model)
    model = _REAL_VGG16[0]
    for p in model.parameters():
        p.requires_grad = True
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
        layers = [id(m) for m in model.modules()]
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
        if [id(m) for m in model.modules()] != layers:
            return _wrong(f"{call} replaced layers of the model.", _ONLY_CHOOSE)
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
    # on the meta device a layer has no values: one real VGG16 shows a re-initialized layer
    model = _real_vgg16()
    before = [p.detach().double().sum().item() for p in model.parameters()]
    _call(train_only_block, model, 3)
    after = [p.detach().double().sum().item() for p in model.parameters()]
    if after != before:
        _REAL_VGG16.clear()  # changed: the next check builds a fresh one
        return _wrong("train_only_block(model, 3) changed the values of the weights.", _ONLY_CHOOSE)
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
        whole=True,
    )
