"""Transfer learning: a pretrained network (VGG16, the lesson's, or ResNet-18), frozen, with a new
last layer; its features computed once."""

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

# The ImageNet networks the course offers: how torchvision builds each, its weights, their size.
BACKBONES = {
    "vgg16": (models.vgg16, models.VGG16_Weights.IMAGENET1K_V1, 528),  # the lesson's
    "resnet18": (models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, 45),  # for laptops
}


def cached_weights_file(weights):
    """Where torchvision keeps downloaded weights: $TORCH_HOME/hub/checkpoints/<the URL's name>."""
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(weights.url).path).name


def load_pretrained(name="vgg16", download=True):
    """An ImageNet network (see BACKBONES) with its weights when they can be had, else random
    weights. download=False uses weights already in torch's cache and never downloads.

    The weights file is read with weights_only=True: it can hold only tensors, never code that
    runs when it is loaded. Returns (model, weights, note): weights is None when the model has
    random weights, and the note says which weights it holds, and why.
    """
    build, weights, megabytes = BACKBONES[name]
    cached = cached_weights_file(weights)
    if not download and not cached.exists():
        return (
            build(weights=None),
            None,
            (
                f"{name}'s ImageNet weights are not in torch's cache ({cached.name}), and QUICK "
                f"never downloads them ({megabytes} MB): this {name} has random weights."
            ),
        )
    print(f"Loading {name}'s ImageNet weights: a {megabytes} MB download the first time.")
    try:
        # torch prints the cache path of this machine: keep it out of the notebook's output
        # (the progress bar, on stderr, stays)
        with contextlib.redirect_stdout(io.StringIO()):
            state = weights.get_state_dict(progress=True, weights_only=True)
        model = build(weights=None)
        model.load_state_dict(state)
        return model, weights, f"{name} with ImageNet weights ({weights.name})"
    except pickle.UnpicklingError:  # weights_only=True refused what the file asks to build
        note = (
            f"{cached} was refused: it holds more than weights (it asks to run code when loaded). "
            "Delete that file and run this cell again to download the weights anew."
        )
    except (urllib.error.URLError, OSError, RuntimeError, EOFError) as err:
        if cached.exists():  # a file in the cache that torch cannot read: damaged, or not these
            note = (
                f"{cached} could not be read ({type(err).__name__}): delete it and run this cell "
                "again to download the weights anew."
            )
        else:
            note = (
                f"The pretrained weights ({megabytes} MB) could not be downloaded "
                f"({type(err).__name__})."
            )
    return (
        build(weights=None),
        None,
        note
        + (
            f" This {name} has random weights: the architecture and the parameter counts are the "
            "same, but it has learned nothing."
        ),
    )


def load_vgg16(pretrained=True, download=True):
    """VGG16, the lesson's network: (model, note), with ImageNet weights when they can be had."""
    if not pretrained:
        return models.vgg16(weights=None), (
            "VGG16 with random weights (PRETRAINED = False): same architecture, nothing learned."
        )
    model, _, note = load_pretrained("vgg16", download)
    return model, note


def without_head(model):
    """The network up to its last layer: the frozen part whose output (the features) a new head
    reads. Returns (body, the number of features)."""
    if isinstance(model, models.VGG):
        head_in = model.classifier[6].in_features
        model.classifier[6] = nn.Identity()
    else:  # a ResNet
        head_in = model.fc.in_features
        model.fc = nn.Identity()
    set_trainable(model, False)
    return model.eval(), head_in


def split_last_block(body):
    """(the part before the last convolution block, the rest): the frozen first part's output is
    computed once; the rest is fine-tuned on it (VGG16: features' last block, then the
    classifier; ResNet-18: layer4, then the pooling). `body` comes from without_head."""
    if isinstance(body, models.VGG):
        start = vgg16_conv_blocks(body)[-1][0]
        return body.features[:start], nn.Sequential(
            body.features[start:], body.avgpool, nn.Flatten(1), body.classifier
        )
    first = nn.Sequential(body.conv1, body.bn1, body.relu, body.maxpool, body.layer1, body.layer2)
    return nn.Sequential(first, body.layer3), nn.Sequential(
        body.layer4, body.avgpool, nn.Flatten(1), body.fc
    )


@torch.no_grad()
def compute_features(body, images, preprocess, device, batch_size=100):
    """The frozen network's output for every image, computed once: `images` are uint8
    [N, 32, 32, 3] (a dataset's .data), `preprocess` the weights' own transforms (resize, ImageNet
    mean and std). Returns a float tensor [N, ...] on the CPU."""
    body = body.eval().to(device)
    features = []
    for start in range(0, len(images), batch_size):
        batch = torch.as_tensor(images[start : start + batch_size]).permute(0, 3, 1, 2)
        features.append(body(preprocess(batch).to(device)).cpu())
    return torch.cat(features)


@torch.no_grad()
def forward_in_batches(model, inputs, device, batch_size=100):
    """model(inputs) in eval mode, a batch at a time, on the CPU at the end."""
    model = model.eval().to(device)
    return torch.cat(
        [
            model(inputs[i : i + batch_size].to(device)).cpu()
            for i in range(0, len(inputs), batch_size)
        ]
    )


def set_trainable(module, trainable):
    """requires_grad = trainable for every parameter of module: False freezes it."""
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
