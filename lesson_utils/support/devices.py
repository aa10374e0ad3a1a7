"""Which device a notebook runs on: setup's choice behind the idiom notebook 02 writes out,
device = torch.device("cuda" if torch.cuda.is_available() else "cpu"), with Apple's mps too and a
requested device that is missing said instead of failing."""

import warnings

import torch


DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def _available(name):
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        return mps is not None and mps.is_available()
    return name == "cpu"


def select_device(name="auto", strict=False):
    """ "auto" picks cuda, then mps, then cpu. A requested device that is missing falls back to the
    CPU with a warning, or raises a RuntimeError when strict=True."""
    name = str(name).lower()
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(
            f"unknown DEVICE {name!r}; choose one of {DEVICE_CHOICES} (or 'cuda:N' for a given GPU)"
        )
    if kind == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if _available(d)))
    if _available(kind):
        return torch.device(name)
    message = f"DEVICE {name!r} was requested but this machine has no {kind.upper()} device"
    if strict:
        raise RuntimeError(message)
    warnings.warn(message + "; using the CPU instead.", stacklevel=2)
    return torch.device("cpu")
