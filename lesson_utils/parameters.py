"""Checks for the notebooks' parameters cell, so a wrong value fails at once, with its name."""
import os

from .data import DATA_CHOICES
from .training import DEVICE_CHOICES


def quick_mode(QUICK):
    """QUICK as set in the notebook, or forced on by the environment variable LESSON_QUICK=1
    (how the tests run every notebook quickly without editing it)."""
    if not isinstance(QUICK, bool):
        raise TypeError(f"QUICK must be True or False, got {QUICK!r}")
    return QUICK or os.environ.get("LESSON_QUICK", "") == "1"


def check_parameters(EPOCHS=1, DEVICE="auto", DATA="auto"):
    """Raise a ValueError naming the parameter and its allowed values when one is wrong."""
    if isinstance(EPOCHS, bool) or not isinstance(EPOCHS, int) or EPOCHS <= 0:
        raise ValueError(f"EPOCHS must be a whole number >= 1, got {EPOCHS!r}")
    if str(DEVICE).split(":")[0].lower() not in DEVICE_CHOICES:
        raise ValueError(f"DEVICE must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {DEVICE!r}")
    if DATA not in DATA_CHOICES:
        raise ValueError(f"DATA must be one of {DATA_CHOICES}, got {DATA!r}")
