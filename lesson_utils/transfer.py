"""Transfer learning: a pretrained VGG16, frozen, with a new last layer."""

import contextlib
import io
import pickle
import urllib.error
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn as nn
from torchvision import models

from .models import count_parameters

VGG16_DOWNLOAD_MB = 528  # the ImageNet weights, downloaded once into torch's cache


def load_vgg16(pretrained=True):
    """VGG16 with ImageNet weights when they can be had, else random weights.

    The weights file (downloaded once into torch's cache) is read with weights_only=True: a file
    can hold only tensors, never code that runs when it is loaded. Returns (model, note): the note
    says which weights the model holds, and why.
    """
    if not pretrained:
        return models.vgg16(weights=None), (
            "VGG16 with random weights (PRETRAINED = False): same architecture, nothing learned."
        )
    weights = models.VGG16_Weights.IMAGENET1K_V1
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name
    print(
        f"Loading VGG16's ImageNet weights: a {VGG16_DOWNLOAD_MB} MB download the first time "
        "(into torch's cache), which can take minutes."
    )
    try:
        # torch prints the cache path of this machine: keep it out of the notebook's output
        # (the progress bar, on stderr, stays)
        with contextlib.redirect_stdout(io.StringIO()):
            state = weights.get_state_dict(progress=True, weights_only=True)
        model = models.vgg16(weights=None)
        model.load_state_dict(state)
        return model, "VGG16 with ImageNet weights (IMAGENET1K_V1)"
    except pickle.UnpicklingError:  # weights_only=True refused what the file asks to build
        note = (
            f"{cached} was refused: it holds more than weights (it asks to run code when loaded). "
            "Delete that file and run this cell again to download the weights anew."
        )
    except (urllib.error.URLError, OSError, RuntimeError, EOFError) as err:
        if cached.exists():  # a file in the cache that torch cannot read: damaged, or not VGG16's
            note = (
                f"{cached} could not be read ({type(err).__name__}): delete it and run this cell "
                "again to download the weights anew."
            )
        else:
            note = (
                f"The pretrained weights ({VGG16_DOWNLOAD_MB} MB) could not be downloaded "
                f"({type(err).__name__})."
            )
    return models.vgg16(weights=None), note + (
        " This VGG16 has random weights: the architecture and the parameter counts are the same, "
        "but it has learned nothing."
    )


def set_trainable(module, trainable):
    for parameter in module.parameters():
        parameter.requires_grad = trainable


def vgg16_conv_blocks(model):
    """The 5 convolution blocks of model.features, each a list of indices ending at a max-pool."""
    blocks, current = [], []
    for index, layer in enumerate(model.features):
        current.append(index)
        if isinstance(layer, nn.MaxPool2d):
            blocks.append(current)
            current = []
    return blocks


def prepare_vgg16(model, n_classes=5, unfreeze_blocks=0, freeze_classifier=False):
    """Freeze `features` except its last `unfreeze_blocks` conv blocks, replace classifier[6] with
    a new Linear(4096, n_classes); freeze_classifier=True also freezes classifier[0] and [3]."""
    set_trainable(model.features, False)
    blocks = vgg16_conv_blocks(model)
    for block in blocks[len(blocks) - unfreeze_blocks :]:
        for index in block:
            set_trainable(model.features[index], True)
    set_trainable(model.classifier, not freeze_classifier)
    if model.classifier[6].out_features != n_classes:
        model.classifier[6] = nn.Linear(model.classifier[6].in_features, n_classes)
    set_trainable(model.classifier[6], True)  # a new layer is always trained
    return model


def parameter_counts(model):
    """count_parameters three ways: all, trainable only, and frozen (the difference)."""
    total, trainable = count_parameters(model), count_parameters(model, trainable_only=True)
    return {"total": total, "trainable": trainable, "frozen": total - trainable}


def trainable_layers(model):
    """Names of the layers that have trainable parameters, in order."""
    return [
        name
        for name, module in model.named_modules()
        if not list(module.children()) and any(p.requires_grad for p in module.parameters())
    ]
