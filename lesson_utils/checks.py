"""Argument checks shared by the modules: each names the argument, the value it got and what it
accepts, so a wrong call fails where it is made, with a clear message."""
import argparse
import numbers

import numpy as np
import torch


def check_int(name, value, minimum=None):
    """`value` as an int; TypeError unless it is an integer (bool is not), ValueError if below
    `minimum`."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer{_at_least(minimum)}, got {value!r} "
                        f"({type(value).__name__})")
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


def check_images_dataset(name, dataset):
    """A dataset held in memory like torchvision's CIFAR10: `.data` uint8 [N, 32, 32, 3] and
    `.targets` (N labels)."""
    if not (hasattr(dataset, "data") and hasattr(dataset, "targets")):
        raise TypeError(
            f"{name} must be a dataset with .data (uint8 images [N, 32, 32, 3]) and .targets "
            f"(N labels), such as load_cifar10's, make_generated_cifar's or select_classes's; "
            f"got {type(dataset).__name__}"
            + (" (for a subset of classes use select_classes, which keeps .data and .targets)"
               if isinstance(dataset, torch.utils.data.Subset) else ""))
    data = dataset.data
    shape = tuple(getattr(data, "shape", ()))
    if len(shape) != 4 or shape[3] != 3:
        raise ValueError(f"{name}.data must be images of shape [N, 32, 32, 3], got shape "
                         f"{list(shape) if shape else type(data).__name__}")
    if len(dataset.targets) != shape[0]:
        raise ValueError(f"{name} has {shape[0]} images but {len(dataset.targets)} targets")
    return dataset


def positive_int_arg(text):
    """argparse type for a command-line flag that takes an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
