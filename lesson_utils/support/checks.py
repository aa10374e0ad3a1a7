"""Argument checks shared by the modules: each names the argument, the value it got and what it
accepts, so a wrong call fails where it is made, with a clear message."""

import argparse
import numbers
import tempfile
from pathlib import Path

import numpy as np
import torch


def check_int(name, value, minimum=None):
    """`value` as an int; TypeError unless it is an integer (bool is not), ValueError if below
    `minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer{_at_least(minimum)}, got {value!r} ({type(value).__name__})"
        )
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be an integer{_at_least(minimum)}, got {value!r}")
    return int(value)


def _at_least(minimum):
    return "" if minimum is None else f" >= {minimum}"


def check_bool(name, value):
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_callable(name, value, accepted="a function or None"):
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be {accepted}, got {value!r} ({type(value).__name__})")
    return value


def check_transform(name, value):
    """A transform (a function of a PIL image, such as transforms.Compose([...])) or None."""
    return check_callable(name, value, "a transform (a function of a PIL image) or None")


def check_tensor(name, value, ndim=None, what=""):
    """A torch tensor with `ndim` dimensions; `what` describes the expected shape in messages."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch tensor{what}, got {type(value).__name__}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions{what}, got shape {list(value.shape)}")
    return value


def check_matrix(name, matrix):
    """A square 2-d tensor, such as a confusion matrix."""
    matrix = torch.as_tensor(matrix) if isinstance(matrix, np.ndarray) else matrix
    check_tensor(name, matrix, 2, " (a square confusion matrix, e.g. from confusion_matrix)")
    if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty square matrix, got shape {list(matrix.shape)}"
        )
    return matrix


def check_names(name, names, n):
    """A list of at least n class names."""
    if isinstance(names, str) or not hasattr(names, "__len__") or len(names) < n:
        raise ValueError(f"{name} must give a name to each of the {n} classes, got {names!r}")
    return names


HISTORY_NEEDS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc")


def check_history(name, history):
    """A history as fit returns it, with at least one epoch."""
    if not isinstance(history, dict):
        raise TypeError(
            f"{name} must be the history dict that fit returns, got {type(history).__name__}"
        )
    missing = [key for key in HISTORY_NEEDS if key not in history]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)}: pass the dict that fit returns")
    if not history["epoch"]:
        raise ValueError(f"{name} holds no epoch (an empty history): train at least one epoch")
    return history


SWITCH_ON, SWITCH_OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def read_switch(name, value, on, off):
    """An environment variable's `value`, read as a person writes a switch: 1, true, yes or on
    (any case, spaces around) is True; 0, false, no, off or nothing is False; anything else is
    refused with its name and what `on` and `off` mean."""
    word = value.strip().lower()
    if word in SWITCH_ON or word in SWITCH_OFF:
        return word in SWITCH_ON
    raise ValueError(
        f"{name}={value!r} in the environment: use {', '.join(SWITCH_ON)} to {on}, or "
        f"{', '.join(w for w in SWITCH_OFF if w)} (or leave it unset) to {off}"
    )


def positive_int_arg(text):
    """argparse type for a command-line flag that takes an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


_TRANSFORMS = "the lesson's transforms (ToTensor + Normalize)"


def check_input(x, expected=(3, 32, 32), channels_out=64, n_pools=2):
    """Explain an input the network cannot take, instead of torch's bare dtype or matmul error:
    TypeError for a non-tensor or a tensor that is not float32 (the lesson's networks are float32),
    ValueError for an empty batch or a wrong shape."""
    if not isinstance(x, torch.Tensor):
        kind = type(x).__name__
        if kind == "ndarray":
            how = (
                "torch.from_numpy(x).float(), with the channels first ([N, H, W, C] -> "
                f".permute(0, 3, 1, 2)), or {_TRANSFORMS} on each image"
            )
        elif isinstance(x, (list, tuple)):
            how = "torch.stack(images) for a list of image tensors [3, 32, 32]"
        else:
            how = f"{_TRANSFORMS}, then .unsqueeze(0) for a single image"
        raise TypeError(
            f"the network's input x must be a torch.Tensor [N, "
            f"{', '.join(map(str, expected))}] of float32, got {kind}: use {how}"
        )
    if x.dtype != torch.float32:
        scale = (
            " (.float() keeps pixel values 0..255; the transforms also scale them to "
            "[-1, 1] as in training)"
            if not x.is_floating_point()
            else ""
        )
        raise TypeError(
            f"the network's input x: expected a float32 tensor, got {x.dtype}: convert "
            f"with .float() / use {_TRANSFORMS}{scale}"
        )
    if x.dim() == 4 and tuple(x.shape[1:]) == expected:
        if x.shape[0] == 0:
            raise ValueError(
                f"the network's input x is an empty batch, shape {list(x.shape)}: "
                "a batch needs at least one image (an empty dataset or a slice "
                "past its end?)"
            )
        return
    shape = list(x.shape)
    hint = ""
    if x.dim() == 4 and x.shape[1] == expected[0]:
        h, w = x.shape[2] // 2**n_pools, x.shape[3] // 2**n_pools
        hint = (
            f" A {x.shape[2]}x{x.shape[3]} image would need the first linear layer's "
            f"in_features = {h}*{w}*{channels_out} = {h * w * channels_out}, not "
            f"{(expected[1] // 2**n_pools) * (expected[2] // 2**n_pools) * channels_out}."
        )
    elif x.dim() == 3:
        hint = " Missing the batch dimension? Use x.unsqueeze(0) for a single image."
    elif x.dim() == 4:
        hint = f" The network expects {expected[0]} colour channels, got {x.shape[1]}."
    raise ValueError(
        f"expected input of shape [N, {', '.join(map(str, expected))}], got {shape}.{hint}"
    )


def out_folder_arg(text):
    """An argparse type for --out: a folder that exists or can be made, and can be written to
    (a path below a file, or a read-only folder, is refused with one line: exit code 2)."""
    path = Path(text)
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise argparse.ArgumentTypeError(
            f"{text} cannot hold the output: {err.strerror or err}"
        ) from None
    return str(path)
