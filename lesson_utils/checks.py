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


def check_module(name, value, needs=(), hint="e.g. ConvNet()"):
    """A torch.nn.Module that has the attributes `needs` (e.g. ("conv1",))."""
    if not isinstance(value, torch.nn.Module):
        raise TypeError(f"{name} must be a torch.nn.Module ({hint}), got {type(value).__name__}")
    missing = [attribute for attribute in needs if not hasattr(value, attribute)]
    if missing:
        raise ValueError(f"{name} must have {' and '.join(missing)} ({hint}); this "
                         f"{type(value).__name__} has not")
    return value


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
        raise ValueError(f"{name} must be a non-empty square matrix, got shape "
                         f"{list(matrix.shape)}")
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
        raise TypeError(f"{name} must be the history dict that fit returns, got "
                        f"{type(history).__name__}")
    missing = [key for key in HISTORY_NEEDS if key not in history]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(missing)}: pass the dict that fit returns")
    if not history["epoch"]:
        raise ValueError(f"{name} holds no epoch (an empty history): train at least one epoch")
    return history


def check_loader(name, loader):
    """Something to iterate over for (images, labels) batches, with at least one batch."""
    if not hasattr(loader, "__iter__") or isinstance(loader, (str, torch.Tensor)):
        raise TypeError(f"{name} must be a loader of (images, labels) batches such as TensorLoader "
                        f"or DataLoader, got {type(loader).__name__}")
    if hasattr(loader, "__len__") and len(loader) == 0:
        raise ValueError(f"{name} yields no batches (is its dataset empty?)")
    return loader


def positive_int_arg(text):
    """argparse type for a command-line flag that takes an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value
