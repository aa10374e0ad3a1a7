"""Checks of notebook 01 (CNN shapes): fc1's in_features as a function of the image size
and the number of blocks, and the shape that x.view(128, -1) gives for the last batch."""

import math
import re

import numpy as np
import torch
import torch.nn.functional as F

from .core import (
    NOT_ANSWERED,
    _as_number,
    _call,
    _never_raises,
    _not_written,
    _number,
    _right,
    _show,
    _wrong,
)


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
