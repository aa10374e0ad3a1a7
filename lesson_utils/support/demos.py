"""The plain functions behind the notebooks' widgets and demonstrations: each returns what the
notebook shows (a text, a transform, the numbers of a dropout draw), so a test can call it without
a widget."""

import contextlib
import numbers
import os
import sys

import numpy as np
import torch
import torch.nn as nn
from torchvision import transforms

from ..models import ModularConvNet, count_parameters, feature_map_sizes, layer_summary
from .checks import check_int


def describe_feature_maps(
    image_size=32, kernel_size=3, padding=1, stride=1, pool=2, channels=(32, 64)
):
    """Text for the shape widget of notebook 01."""
    result = feature_map_sizes(image_size, kernel_size, padding, stride, pool, channels)
    lines = [f"input: [3, {image_size}, {image_size}]"]
    for (after_conv, after_pool), c in zip(result["sides"], channels):
        lines.append(
            f"conv k={kernel_size} p={padding} s={stride}: "
            f"[{c}, {after_conv}, {after_conv}]"
            + (f" -> pool {pool}: [{c}, {after_pool}, {after_pool}]" if pool > 1 else "")
        )
    if result["in_features"]:
        side = result["sides"][-1][1]
        lines.append(f"fc1 in_features = {side}*{side}*{channels[-1]} = {result['in_features']}")
    else:
        lines.append("the feature map shrank below 1x1: this network cannot be built")
    return "\n".join(lines)


def dropout_demo(p=0.5, n=10, draws=10_000, seed=0):
    """What nn.Dropout(p) does to torch.arange(n): one draw, and averages over many draws.

    Returns a dict: 'input', 'sample' (one training-mode draw), 'zeroed' (fraction of zeros in
    it), 'scale' (1 / (1 - p), the factor applied to kept values), 'mean_in' and 'mean_out' (the
    average of the output over `draws` draws, per position, averaged) and 'eval' (the eval output).
    """
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"p must be a probability from 0 to 1, got {p!r}")
    n, draws = check_int("n", n, 1), check_int("draws", draws, 1)
    seed = check_int("seed", seed, 0)
    torch.manual_seed(seed)
    dropout = nn.Dropout(p)
    x = torch.arange(n).float()
    sample = dropout(x)
    many = dropout(x.expand(draws, n))
    dropout.eval()
    return {
        "input": x,
        "sample": sample,
        "zeroed": (sample == 0).float().mean().item(),
        "scale": 1 / (1 - p) if p < 1 else float("inf"),
        "mean_in": x.mean().item(),
        "mean_out": many.mean().item(),
        "eval": dropout(x),
    }


def describe_modular(n_blocks=2, first_channels=32, image_size=32):
    """Build a ModularConvNet whose conv blocks double the channels each time; report its shapes.

    Text for the widget of notebook 04 (a clear message, not an exception, when it cannot be built).
    """
    n_blocks = check_int("n_blocks", n_blocks, 1)
    first_channels = check_int("first_channels", first_channels, 1)
    image_size = check_int("image_size", image_size, 1)
    channels = tuple(first_channels * 2**i for i in range(n_blocks))
    try:
        model = ModularConvNet(channels=channels, image_size=image_size)
    except ValueError as err:
        return f"channels {channels}: {err}"
    lines = [f"channels {channels}, {count_parameters(model):,} parameters"]
    lines += [
        f"{name:<32}{list(shape)}"
        for name, shape in layer_summary(model, (1, 3, image_size, image_size))
    ]
    return "\n".join(lines)


AUGMENTATION_NAMES = ("rotation", "flip", "color jitter", "resized crop", "crop with padding")


def make_augmentation(name, strength=0.5, size=400):
    """One augmentation whose strength goes from 0 (nothing changes) to 1 (strongest)."""
    if not isinstance(name, str) or name not in AUGMENTATION_NAMES:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {AUGMENTATION_NAMES}")
    if (
        isinstance(strength, (bool, np.bool_))
        or not isinstance(strength, numbers.Real)
        or not 0 <= strength <= 1
    ):
        raise ValueError(f"strength must be a number from 0 to 1, got {strength!r}")
    size = check_int("size", size, 1)
    if name == "rotation":
        return transforms.RandomRotation(90 * strength)
    if name == "flip":
        return transforms.RandomHorizontalFlip(p=strength)
    if name == "color jitter":
        return transforms.ColorJitter(brightness=strength, contrast=strength, saturation=strength)
    if name == "resized crop":
        return transforms.RandomResizedCrop(size, scale=(1 - 0.95 * strength, 1.0))
    if name == "crop with padding":
        return transforms.Compose(
            [
                transforms.Resize(size),
                transforms.RandomCrop(size, padding=int(size * 0.25 * strength)),
            ]
        )
    raise ValueError(f"unknown augmentation {name!r}; choose one of {AUGMENTATION_NAMES}")


@contextlib.contextmanager
def quiet_native_logs():
    """Silence what C++ code writes to stderr inside the block (torch.profiler's own start and
    stop log lines, which a notebook would show as error output); Python's stderr is unchanged."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
