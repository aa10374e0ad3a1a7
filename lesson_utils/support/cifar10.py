"""Where the notebooks' CIFAR-10 comes from: downloaded (torchvision's datasets.CIFAR10), a local
copy (torchvision's files or image folders), or a generated stand-in for quick offline runs; and,
when none works, a message naming the ways out."""

import os
import urllib.error
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from ..data import CLASSES, ArrayDataset, cifar10_transform
from ..paths import DATA_DIR, REPO_ROOT
from .checks import check_int, check_transform

DATA_CHOICES = ("auto", "download", "local", "generated")


class DataUnavailableError(RuntimeError):
    """CIFAR-10 could neither be found nor downloaded."""


def load_image_folder(folder, transform=None):
    """Read `folder/<class>/*` (class folders named as in CLASSES) into an ArrayDataset."""
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or Path), got {type(folder).__name__}")
    check_transform("transform", transform)
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder {folder} does not exist or is not a folder (expected "
            f"one subfolder per class: {', '.join(CLASSES)})"
        )
    images, targets = [], []
    for label, name in enumerate(CLASSES):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise FileNotFoundError(
                f"missing class folder {class_dir} (expected one folder per "
                f"class: {', '.join(CLASSES)})"
            )
        for path in sorted(class_dir.iterdir()):
            try:
                with Image.open(path) as img:
                    array = np.asarray(img.convert("RGB"))
            except OSError as err:
                raise OSError(
                    f"cannot read image {path}: {err}. The local copy in {folder} is "
                    f"damaged: copy this file again from where the copy came from "
                    f"(or re-extract the archive), or use the download instead "
                    f"(DATA = 'download', CIFAR10_ROOT unset)"
                ) from err
            if array.shape != (32, 32, 3):
                raise ValueError(f"{path} is {array.shape[1]}x{array.shape[0]}, expected 32x32")
            images.append(array)
            targets.append(label)
    data = np.stack(images) if images else np.zeros((0, 32, 32, 3), np.uint8)
    return ArrayDataset(data, targets, transform, source=str(folder))


def make_generated_cifar(n, seed=0, transform=None):
    """A CIFAR-shaped, learnable dataset made from a seed: no download needed.

    Each class has its own colour and its own stripe orientation and frequency; every image adds a
    random phase, its own shade of the colour, a random brightness and pixel noise, so the classes
    overlap and one epoch does not learn them perfectly.
    n: how many images (an integer >= 1); seed: an integer >= 0.
    """
    n = check_int("n", n, 1)
    seed = check_int("seed", seed, 0)
    check_transform("transform", transform)
    rng = np.random.default_rng(seed)
    targets = np.arange(n) % 10
    rng.shuffle(targets)
    palette = np.array(
        [
            [230, 60, 60],
            [60, 200, 60],
            [70, 90, 230],
            [230, 200, 50],
            [200, 70, 220],
            [60, 210, 210],
            [240, 140, 40],
            [130, 130, 130],
            [150, 90, 40],
            [250, 250, 250],
        ],
        dtype=np.float32,
    )
    angles = np.linspace(0, np.pi, 10, endpoint=False)
    freqs = np.array([0.3, 0.5, 0.7, 0.9, 0.4, 0.6, 0.8, 1.0, 0.35, 0.55])
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    a, f = angles[targets][:, None, None], freqs[targets][:, None, None]
    phase = rng.uniform(0, 2 * np.pi, (n, 1, 1))
    stripes = 0.5 + 0.5 * np.sin(f * (xx * np.cos(a) + yy * np.sin(a)) + phase)  # [n, 32, 32]
    colours = palette[targets] + rng.normal(0, 50, (n, 3))  # every image's own shade
    brightness = rng.uniform(0.4, 1.0, (n, 1, 1, 1))
    images = stripes[..., None] * colours[:, None, None, :] * brightness
    images += rng.normal(0, 60, images.shape)
    data = np.clip(images, 0, 255).astype(np.uint8)
    return ArrayDataset(data, targets.tolist(), transform, source=f"generated (seed {seed})")


def load_cifar10(
    data="auto", root=None, transform=None, test_transform=None, n_generated=(1040, 250), seed=0
):
    """Return (train_dataset, test_dataset).

    data: "auto"      a local copy if `root` names one, else download into data/
          "download"  torchvision's CIFAR10 in data/ (downloads 170 MB once)
          "local"     a local copy in `root`: torchvision's cifar-10-batches-py
                      or image folders train/<class>/* and test/<class>/*
          "generated" make_generated_cifar: small, offline, for quick runs and tests
    transform applies to the training set; test_transform (default: the same as transform, or the
    lesson's ToTensor + Normalize when both are None) to the test set.
    """
    if not isinstance(data, str) or data not in DATA_CHOICES:
        raise ValueError(f"unknown data {data!r}; choose one of {DATA_CHOICES}")
    if root is not None and not isinstance(root, (str, os.PathLike)):
        raise TypeError(
            f"root must be a folder (str or Path) or None, got {type(root).__name__}: {root!r}"
        )
    check_transform("transform", transform)
    check_transform("test_transform", test_transform)
    if (
        isinstance(n_generated, (str, bytes))
        or not hasattr(n_generated, "__len__")
        or len(n_generated) != 2
    ):
        raise TypeError(
            f"n_generated must be a pair (n_train, n_test) of integers >= 1, got {n_generated!r}"
        )
    try:
        n_generated = (
            check_int("n_train", n_generated[0], 1),
            check_int("n_test", n_generated[1], 1),
        )
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"n_generated must be a pair (n_train, n_test) of integers >= 1, got "
            f"{n_generated!r}: {err}"
        ) from None
    seed = check_int("seed", seed, 0)
    transform = transform or cifar10_transform()
    test_transform = test_transform or transform
    if data == "generated":
        n_train, n_test = n_generated
        return (
            make_generated_cifar(n_train, seed, transform),
            make_generated_cifar(n_test, seed + 1, test_transform),
        )
    if data == "local" or (data == "auto" and root):
        if not root:
            raise DataUnavailableError(
                _ways_out("data='local' needs a folder: pass root (the notebooks' CIFAR10_ROOT)")
            )
        return _load_local(Path(root), transform, test_transform)
    return _download(DATA_DIR, transform, test_transform)


def _load_local(root, transform, test_transform):
    if not root.is_dir():
        raise DataUnavailableError(_ways_out(f"the folder {root} does not exist"))
    if (root / "cifar-10-batches-py").is_dir():
        try:
            return (
                datasets.CIFAR10(root, train=True, download=False, transform=transform),
                datasets.CIFAR10(root, train=False, download=False, transform=test_transform),
            )
        except (RuntimeError, OSError, ValueError, EOFError) as err:  # checksum or unpickling
            # a local copy: name the damaged file, never suggest deleting it
            damaged = damaged_cifar10_files(root) or [("cifar-10-batches-py", str(err))]
            raise DataUnavailableError(_damaged_local(root, damaged)) from None
    if (root / "train").is_dir() and (root / "test").is_dir():
        return (
            load_image_folder(root / "train", transform),
            load_image_folder(root / "test", test_transform),
        )
    raise DataUnavailableError(
        _ways_out(f"{root} holds neither cifar-10-batches-py nor train/ and test/ image folders")
    )


def _download(root, transform, test_transform):
    try:
        return (
            datasets.CIFAR10(root, train=True, download=True, transform=transform),
            datasets.CIFAR10(root, train=False, download=True, transform=test_transform),
        )
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        raise DataUnavailableError(_ways_out(f"downloading CIFAR-10 failed ({err})")) from None
    except RuntimeError as err:  # a partial or damaged download fails torchvision's checksum
        raise DataUnavailableError(_corrupt(root, err)) from None


def _corrupt(root, err):
    """A damaged download (in data/, which the course manages): deleting it is the fix."""
    return (
        f"the CIFAR-10 files in {root} are incomplete or corrupt ({err}): delete "
        f"{root / 'cifar-10-batches-py'} and {root / 'cifar-10-python.tar.gz'} and retry"
    )


def damaged_cifar10_files(root):
    """(file name, what is wrong) for each file of root/cifar-10-batches-py that is missing or
    fails torchvision's MD5 checksum."""
    folder = Path(root) / datasets.CIFAR10.base_folder
    meta = datasets.CIFAR10.meta
    damaged = []
    for name, md5 in (
        datasets.CIFAR10.train_list + datasets.CIFAR10.test_list + [[meta["filename"], meta["md5"]]]
    ):
        path = folder / name
        if not path.is_file():
            damaged.append((name, "missing"))
        elif not check_integrity(str(path), md5):
            damaged.append((name, f"fails its MD5 checksum ({path.stat().st_size} bytes)"))
    return damaged


def _damaged_local(root, damaged):
    """A damaged local copy (the user's own files): say which file, and how to get a good one."""
    folder = Path(root) / datasets.CIFAR10.base_folder
    files = "; ".join(f"{name}: {problem}" for name, problem in damaged)
    return (
        f"the local CIFAR-10 copy in {folder} is damaged ({files}). It is your copy: it was "
        f"left as it is. To get a good one: extract cifar-10-batches-py again from "
        f"the archive (tar -xzf cifar-10-python.tar.gz -C {root}) or copy it again from where "
        f"it came from; or use the download instead: DATA = 'download' with CIFAR10_ROOT "
        f"unset (torchvision fetches it into data/, 170 MB)."
    )


def _ways_out(reason):
    return (
        f"CIFAR-10 is not available: {reason}.\nThree ways out:\n"
        "  1. connect to the internet and run again: torchvision downloads it into data/ "
        "(170 MB);\n"
        "  2. point CIFAR10_ROOT (or the notebook's CIFAR10_ROOT parameter) at a copy: "
        "a folder "
        "holding cifar-10-batches-py, or train/<class>/ and test/<class>/ image folders;\n"
        "  3. use the generated dataset: DATA = 'generated' or QUICK = True (offline, small)."
    )


def describe_dataset(dataset):
    """One line: how many images, and where they came from (paths relative to the repository)."""
    source = getattr(dataset, "source", None) or getattr(dataset, "root", "")
    path = Path(str(source))
    if path.is_absolute():
        try:
            source = path.resolve().relative_to(REPO_ROOT)
        except ValueError:
            source = f"$CIFAR10_ROOT/{path.name}" if path.name else "$CIFAR10_ROOT"
    return f"{len(dataset)} images from {source}"
