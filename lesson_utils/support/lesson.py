"""Each notebook's set-up: one call that checks the parameters, applies QUICK, seeds, picks the
device and loads the data, and says in one line what it chose."""

import os
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torchvision import datasets

from ..data import cifar10_transform, subset, validation_split
from ..transfer import BACKBONES
from ..training import seed_everything
from .devices import DEVICE_CHOICES, select_device
from .checks import check_int, read_switch
from .memory import keep_freed_memory
from .runs import fit_or_load
from .cifar10 import DATA_CHOICES, describe_dataset, load_cifar10

# Every training run of the course trains on 90% of the training images; the other 10% (500 of
# each CIFAR-10 class) choose epochs and settings, always the same images (this seed).
VALIDATION_FRACTION, VALIDATION_SEED = 0.1, 0

# What QUICK sets each parameter to: a small generated dataset, a few epochs, small images.
# Every epoch-like parameter of a notebook must be listed here (a test checks it). QUICK never
# downloads (notebook 07 passes download=not lesson.quick), but uses weights already cached.
QUICK_VALUES = {
    "EPOCHS": 3,
    "BASELINE_EPOCHS": 3,
    "FEW_EPOCHS": 5,
    "STEP_SIZE": 2,
    "HEAD_EPOCHS": 3,
    "FINE_TUNE_EPOCHS": 2,
    "IMAGE_SIZE": 32,
    "MANY_LABELS": 40,
    "VALIDATION_PER_CLASS": 10,
    "TEST_PER_CLASS": 20,
    "SEEDS": 2,  # two seeds still show the tables' mean and range, at two thirds of three's cost
}
# The type and range of every other parameter a notebook may pass.
POSITIVE_INTS = (
    "EPOCHS",
    "BASELINE_EPOCHS",
    "FEW_EPOCHS",
    "STEP_SIZE",
    "LABELS_PER_CLASS",
    "SEEDS",
    "HEAD_EPOCHS",
    "FINE_TUNE_EPOCHS",
    "IMAGE_SIZE",
    "MANY_LABELS",
    "VALIDATION_PER_CLASS",
    "TEST_PER_CLASS",
)
BOOLS = ("PRETRAINED", "RUN_FLIP_ONLY", "AMP", "BF16")


class Lesson(SimpleNamespace):
    """What setup chose: device, train_set (the images that train: 45,000 of CIFAR-10's 50,000),
    val_set (the other 5,000, read through the test transform), test_set, full_train_set (all
    50,000), train_indices and val_indices (into full_train_set); None without data; quick, seed,
    data (a description of the data), cifar10_files (the folder of torchvision's CIFAR-10 files,
    or None), seeds (SEED, SEED + 1, ... : SEEDS of them, when SEEDS is passed) and every
    parameter passed to setup, by its name (lesson.EPOCHS)."""

    def fit(
        self, model, train_loader, test_loader, optimizer, epochs, device, scheduler=None, **options
    ):
        """fit(...) with the same arguments, that loads the saved run instead of training when
        the very same run (network, initial weights, seed, optimizer, scheduler, data, epochs,
        code...) was trained before and training would compute the same thing (a fingerprint of
        what it does, see support/runs.py). name="..." labels its file and line; reuse=False (or
        LESSON_RETRAIN=1) trains it again."""
        return fit_or_load(
            model,
            train_loader,
            test_loader,
            optimizer,
            epochs,
            device,
            scheduler,
            quick=self.quick,
            **options,
        )


def _check(name, value):
    if name in POSITIVE_INTS:
        check_int(name, value, 1)
    elif name in BOOLS:
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {value!r}")
    elif name == "BACKBONE":
        if value not in BACKBONES:
            raise ValueError(
                f"BACKBONE must be one of {', '.join(map(repr, BACKBONES))}, got {value!r}"
            )
    elif name == "GAMMA":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(
                f"GAMMA must be a number in (0, 1), the factor StepLR multiplies the learning "
                f"rate by (1 would never change it), got {value!r}"
            )
    else:
        raise TypeError(
            f"setup() got an unknown parameter {name}={value!r}; known: "
            f"{', '.join(POSITIVE_INTS + BOOLS + ('GAMMA', 'BACKBONE'))}"
        )


def as_python(value):
    """A number as NumPy or torch hold it (np.int64, np.float64, np.bool_, np.str_, as indexing
    an array gives, or a 0-d array or tensor) as the Python value it holds: what the person meant.
    Anything else as it is (the checks then say what is wrong with it)."""
    if isinstance(value, np.generic) or (
        isinstance(value, (np.ndarray, torch.Tensor)) and value.ndim == 0
    ):
        return value.item()
    if isinstance(value, torch.device):
        return str(value)
    return value


def quick_from_environment():
    """LESSON_QUICK, read as a switch (checks.read_switch): on switches QUICK on."""
    value = os.environ.get("LESSON_QUICK", "")
    return read_switch("LESSON_QUICK", value, "switch QUICK on", "leave it off")


_DEVICE_NAME = re.compile(r"(auto|cuda|mps|cpu)(:\d+)?")


def check_parameters(QUICK, DEVICE, DATA, CIFAR10_ROOT, SEED, **parameters):
    """Raise a ValueError/TypeError naming the parameter, its value and what is accepted; also
    when two of them contradict each other (STEP_SIZE not below EPOCHS; CIFAR10_ROOT with a DATA
    that reads no local copy)."""
    if not isinstance(QUICK, bool):
        raise TypeError(f"QUICK must be True or False, got {QUICK!r}")
    match = _DEVICE_NAME.fullmatch(DEVICE.lower()) if isinstance(DEVICE, str) else None
    if not match or match[0].startswith("auto:"):
        raise ValueError(f"DEVICE must be one of {DEVICE_CHOICES} (or 'cuda:N'), got {DEVICE!r}")
    if match[1] == "cuda" and match[2] and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if int(match[2][1:]) >= count:
            raise ValueError(
                f"DEVICE = {DEVICE!r}: this machine has {count} CUDA device(s), numbered from 0: "
                "choose 'cuda' or 'cuda:0'"
            )
    if DATA not in DATA_CHOICES:
        raise ValueError(f"DATA must be one of {DATA_CHOICES}, got {DATA!r}")
    if CIFAR10_ROOT is not None and not isinstance(CIFAR10_ROOT, (str, os.PathLike)):
        raise TypeError(f"CIFAR10_ROOT must be None or a folder path, got {CIFAR10_ROOT!r}")
    if isinstance(CIFAR10_ROOT, str) and not CIFAR10_ROOT.strip():
        raise ValueError(
            f"CIFAR10_ROOT = {CIFAR10_ROOT!r} is empty: give the folder that holds your copy of "
            "CIFAR-10 (cifar-10-batches-py, or train/ and test/ image folders), or None to read "
            "$CIFAR10_ROOT or else download it into data/"
        )
    if CIFAR10_ROOT is not None and DATA in ("download", "generated"):
        raise ValueError(
            f"CIFAR10_ROOT = {CIFAR10_ROOT!r} with DATA = {DATA!r}: DATA = {DATA!r} reads no "
            "local copy; use DATA = 'auto' or 'local' to read this folder, or CIFAR10_ROOT = None"
        )
    check_int("SEED", SEED, 0)
    seeds = parameters.get("SEEDS", 1)
    if isinstance(seeds, int) and SEED + seeds - 1 >= 2**32:
        raise ValueError(
            f"SEED = {SEED} with SEEDS = {seeds} would use seeds up to {SEED + seeds - 1}; "
            "seeds must be below 2**32 (NumPy's limit): choose a smaller SEED"
        )
    for name, value in parameters.items():
        _check(name, value)
    step, epochs = parameters.get("STEP_SIZE"), parameters.get("EPOCHS")
    if step is not None and epochs is not None and step >= epochs:
        raise ValueError(
            f"STEP_SIZE = {step} with EPOCHS = {epochs}: StepLR would lower the learning rate "
            f"only after epoch {step}, so no epoch would train with the lowered rate and the runs "
            "with and without decay would be the same run: choose STEP_SIZE below EPOCHS"
        )


def _environment_root():
    """$CIFAR10_ROOT, or None when it is unset; an empty value is refused, with its name."""
    value = os.environ.get("CIFAR10_ROOT")
    if value is not None and not value.strip():
        raise ValueError(
            f"CIFAR10_ROOT={value!r} in the environment is empty: set it to the folder that "
            "holds your copy of CIFAR-10 (cifar-10-batches-py, or train/ and test/ image "
            "folders), or unset it (unset CIFAR10_ROOT) to download CIFAR-10 into data/"
        )
    return value


def _select(DEVICE):
    """The device, and what the set-up line says when it is not the one asked for: a requested
    device this machine lacks falls back to the CPU, said in the line (no Python warning)."""
    try:
        return select_device(DEVICE, strict=True), ""
    except RuntimeError:
        kind = DEVICE.split(":")[0].upper()
        return torch.device("cpu"), (
            f" (DEVICE = {DEVICE!r} was asked for, but this machine has no {kind} device: "
            "the CPU runs instead)"
        )


def setup(
    QUICK=False, DEVICE="auto", DATA="auto", CIFAR10_ROOT=None, SEED=0, load_data=True, **parameters
):
    """Check the notebook's parameters, apply QUICK, seed, pick the device, load the data.

    QUICK (or LESSON_QUICK=1 in the environment, how the tests run every notebook quickly) swaps
    CIFAR-10 for a small generated dataset and sets each parameter listed in QUICK_VALUES to its
    quick value. CIFAR10_ROOT=None reads $CIFAR10_ROOT. Prints one line; returns a Lesson.
    NumPy numbers (np.int64(3), np.float64, np.bool_) are read as the Python numbers they hold.
    """
    QUICK, DEVICE, DATA, CIFAR10_ROOT, SEED = map(
        as_python, (QUICK, DEVICE, DATA, CIFAR10_ROOT, SEED)
    )
    parameters = {name: as_python(value) for name, value in parameters.items()}
    check_parameters(QUICK, DEVICE, DATA, CIFAR10_ROOT, SEED, **parameters)
    environment_root = _environment_root() if CIFAR10_ROOT is None and load_data else None
    said = []
    if not QUICK and quick_from_environment():
        QUICK = True
        said.append(f"QUICK (from LESSON_QUICK={os.environ['LESSON_QUICK']})")
    elif QUICK:
        said.append("QUICK")
    if QUICK:
        changed = {  # lowered, never raised (SEEDS = 1 stays 1)
            name: QUICK_VALUES[name]
            for name in parameters
            if name in QUICK_VALUES and QUICK_VALUES[name] < parameters[name]
        }
        parameters.update(changed)
        if changed:
            said.append(", ".join(f"{name} = {value}" for name, value in changed.items()))
    if environment_root is not None and load_data:
        if QUICK:
            said.append("$CIFAR10_ROOT not used (QUICK: generated data)")
        elif DATA in ("download", "generated"):
            said.append(f"$CIFAR10_ROOT not used (DATA = {DATA!r})")
        else:
            CIFAR10_ROOT = environment_root
    elif QUICK and load_data and (CIFAR10_ROOT is not None or DATA not in ("auto", "generated")):
        what = (
            f"CIFAR10_ROOT = {CIFAR10_ROOT!r}" if CIFAR10_ROOT is not None else f"DATA = {DATA!r}"
        )
        said.append(f"{what} not used (QUICK: generated data)")
    if parameters.get("BF16"):
        said.append("BF16: training under bfloat16 autocast")
    if CIFAR10_ROOT is not None:
        CIFAR10_ROOT = Path(CIFAR10_ROOT).expanduser()  # "~/data/cifar", as a shell reads it
    seed_everything(SEED)
    device, fallback = _select(DEVICE)
    full_train_set = train_set = val_set = test_set = train_indices = val_indices = None
    data = "none"
    if load_data:
        data = "generated" if QUICK else DATA
        full_train_set, test_set = load_cifar10(data, root=CIFAR10_ROOT)
        train_indices, val_indices = validation_split(
            full_train_set.targets, VALIDATION_FRACTION, VALIDATION_SEED
        )
        train_set = subset(full_train_set, train_indices)
        val_set = subset(full_train_set, val_indices, test_set.transform or cifar10_transform())
        data = (
            f"{describe_dataset(full_train_set)}: {len(train_set):,} train, "
            f"{len(val_set):,} validation, {len(test_set):,} test images"
        )
    keep_freed_memory()  # faster steps on Linux: freed memory reused, not handed back
    print(
        f"device: {device.type}{fallback} | data: {data} | seed {SEED}"
        + (f" | {'; '.join(said)}" if said else "")
    )
    root = str(CIFAR10_ROOT.resolve()) if CIFAR10_ROOT and not QUICK else None
    seeds = [SEED + i for i in range(parameters.get("SEEDS", 1))]
    return Lesson(
        device=device,
        train_set=train_set,
        val_set=val_set,
        test_set=test_set,
        full_train_set=full_train_set,
        train_indices=train_indices,
        val_indices=val_indices,
        quick=QUICK,
        seed=SEED,
        seeds=seeds,
        data=data,
        # the folder that holds torchvision's CIFAR-10 files, when the data came from them
        cifar10_files=full_train_set.root if isinstance(full_train_set, datasets.CIFAR10) else None,
        root=root,
        **parameters,
    )
