"""Where the notebooks' CIFAR-10 comes from: downloaded (torchvision's datasets.CIFAR10), a local
copy (torchvision's files or image folders), or a generated stand-in for quick offline runs; and,
when none works, a message naming the ways out."""

import os
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image
from torchvision import datasets
from torchvision.datasets.utils import check_integrity

from ..data import CLASSES, ArrayDataset, cifar10_transform
from ..paths import DATA_DIR
from .checks import check_int, check_transform

DATA_CHOICES = ("auto", "download", "local", "generated")


class DataUnavailableError(RuntimeError):
    """CIFAR-10 could neither be found nor downloaded."""


# What an operating system leaves in folders (macOS's .DS_Store and ._ files, __MACOSX in its
# zip archives, Windows' Thumbs.db and desktop.ini): never a person's images, so skipped.
SYSTEM_FILES = ("Thumbs.db", "desktop.ini", "__MACOSX")


def _system_file(path):
    return path.name.startswith(".") or path.name in SYSTEM_FILES


def _check_class_folders(folder):
    """Refuse a folder whose entries are not exactly the ten class folders: name what is missing
    and what is there besides (a class the networks have no output for, a stray file)."""
    missing = [name for name in CLASSES if not (folder / name).is_dir()]
    extra = sorted(
        p
        for p in folder.iterdir()
        if not _system_file(p) and not (p.is_dir() and p.name in CLASSES)
    )
    if not missing and not extra:
        return
    expected = f"expected one folder per class of CIFAR-10, and nothing else: {', '.join(CLASSES)}"
    parts = []
    if missing:
        parts.append(f"missing class folder{'s' if len(missing) > 1 else ''} ")
        parts[-1] += ", ".join(str(folder / name) for name in missing)
    if extra:
        kinds = [f"{p} ({'a folder' if p.is_dir() else 'a file'})" for p in extra]
        one = len(extra) == 1
        parts.append(
            f"{folder} also holds {', '.join(kinds)}, "
            f"{'which is not a class' if one else 'none of them a class'} of CIFAR-10 (the "
            f"networks have one output per class): move {'it' if one else 'them'} out, or "
            f"rename a class folder to the class it holds"
        )
    error = FileNotFoundError if missing else ValueError
    raise error(f"{'; '.join(parts)} ({expected})")


def _read_image(path, folder):
    """The image at `path` as an RGB array; a file that is not an image, or a damaged one, is
    refused with its path."""
    if path.is_dir():
        raise ValueError(
            f"{path} is a folder inside the class folder {path.parent}: the images of a class "
            "lie directly in its folder (no subfolders)"
        )
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as err:
        if path.suffix.lower() not in Image.registered_extensions():
            raise ValueError(
                f"{path} is not an image ({path.suffix or 'a file without extension'}): a class "
                "folder holds only images (.png, .jpg, ...); move it out"
            ) from None
        raise OSError(
            f"cannot read image {path}: {err}. The local copy in {folder} is "
            f"damaged: copy this file again from where the copy came from "
            f"(or re-extract the archive), or use the download instead "
            f"(DATA = 'download', CIFAR10_ROOT unset)"
        ) from err


def load_image_folder(folder, transform=None):
    """Read `folder/<class>/*` (class folders named as in CLASSES, and nothing else beside them;
    each holds at least one 32x32 image) into an ArrayDataset. Files an operating system leaves
    (.DS_Store, Thumbs.db, ...) are skipped; anything else that is not one of these is refused,
    with its path."""
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or Path), got {type(folder).__name__}")
    check_transform("transform", transform)
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"folder {folder} does not exist or is not a folder (expected "
            f"one subfolder per class: {', '.join(CLASSES)})"
        )
    _check_class_folders(folder)
    images, targets = [], []
    for label, name in enumerate(CLASSES):
        class_dir = folder / name
        paths = [p for p in sorted(class_dir.iterdir()) if not _system_file(p)]
        if not paths:
            raise ValueError(
                f"the class folder {class_dir} holds no image: every class needs images (the "
                f"network would never see a {name}); put its images there, or use the download"
            )
        for path in paths:
            array = _read_image(path, folder)
            if array.shape != (32, 32, 3):
                raise ValueError(f"{path} is {array.shape[1]}x{array.shape[0]}, expected 32x32")
            images.append(array)
            targets.append(label)
    return ArrayDataset(np.stack(images), targets, transform, source=str(folder))


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
    if isinstance(root, str) and not root.strip():
        raise ValueError(
            f"root = {root!r} is empty: give the folder that holds a copy of CIFAR-10 "
            "(cifar-10-batches-py, or train/ and test/ image folders), or None to download it"
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
        return _load_local(Path(root).expanduser(), transform, test_transform)
    return _download(DATA_DIR, transform, test_transform)


ACCEPTED = "a folder holding cifar-10-batches-py, or train/<class>/ and test/<class>/ image folders"


def _load_local(root, transform, test_transform):
    if root.is_file():
        raise DataUnavailableError(_a_file(root))
    if not root.is_dir():
        where = "" if root.is_absolute() else f" ({root.absolute()}, from the current folder)"
        raise DataUnavailableError(_ways_out(f"the folder {root}{where} does not exist"))
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
    train, test = (root / "train").is_dir(), (root / "test").is_dir()
    if train and test:
        return (
            load_image_folder(root / "train", transform),
            load_image_folder(root / "test", test_transform),
        )
    raise DataUnavailableError(_not_a_copy(root, train, test))


def _not_a_copy(root, train, test):
    """Why the folder `root` is not a copy of CIFAR-10, and what to do."""
    if train or test:
        has, lacks = ("train", "test") if train else ("test", "train")
        return (
            f"{root} holds {has}/ but no {lacks}/ folder: image folders need both "
            f"train/<class>/ and test/<class>/ (the test images are never trained on)"
        )
    if (root / "data_batch_1").is_file() or root.name == "cifar-10-batches-py":
        return (
            f"{root} is torchvision's cifar-10-batches-py folder itself: CIFAR10_ROOT (root) is "
            f"the folder that holds it: {root.parent}"
        )
    if any((root / name).is_dir() for name in CLASSES):
        return (
            f"{root} holds class folders itself: CIFAR10_ROOT (root) is the folder above, that "
            f"holds train/<class>/ and test/<class>/ ({root.parent}?)"
        )
    inside = sorted(
        p
        for p in root.iterdir()
        if p.is_dir()
        and (
            (p / "cifar-10-batches-py").is_dir() or (p / "train").is_dir() and (p / "test").is_dir()
        )
    )
    if inside:
        return f"{root} holds a copy one folder down: point CIFAR10_ROOT (root) at {inside[0]}"
    archives = sorted(p for p in root.iterdir() if p.is_file() and _archive(p))
    if archives:
        return (
            f"{root} holds no unpacked copy, but the archive {archives[0].name}: "
            f"{_unpack(archives[0])}"
        )
    return _ways_out(f"{root} holds neither cifar-10-batches-py nor train/ and test/ image folders")


def _archive(path):
    """What kind of archive the file at `path` is ('a tar archive', 'a zip archive'), or ''."""
    try:
        if zipfile.is_zipfile(path):
            return "a zip archive"
        if tarfile.is_tarfile(path):
            return "a tar archive"
    except OSError:  # unreadable: not ours to say what it is
        pass
    return ""


def _unpack(path):
    """How to unpack the archive at `path` into its own folder, and where CIFAR10_ROOT points."""
    command = (
        f"unzip {path} -d {path.parent}"
        if _archive(path) == "a zip archive"
        else f"tar -xf {path} -C {path.parent}"
    )
    return (
        f"unpack it ({command}), then point CIFAR10_ROOT (root) at the folder that holds "
        f"cifar-10-batches-py (for torchvision's cifar-10-python.tar.gz: {path.parent}) or "
        f"train/ and test/"
    )


def _a_file(path):
    """The copy given is a file: say what it is, and what to do with it."""
    kind = _archive(path)
    if kind:
        return f"CIFAR10_ROOT (root) {path} is a file, {kind}, not a folder: {_unpack(path)}"
    return (
        f"CIFAR10_ROOT (root) {path} is a file ({path.stat().st_size} bytes), not a folder: "
        f"expected {ACCEPTED}"
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
    """What the images are, in a few words a student needs (no machine paths): CIFAR-10 from
    torchvision's files, CIFAR-10 from image folders (a JPEG copy, say), or the generated
    stand-in."""
    if isinstance(dataset, datasets.CIFAR10):
        return "CIFAR-10 (torchvision's files)"
    source = str(getattr(dataset, "source", "") or "")
    if source.startswith("generated"):
        return "generated stand-in for CIFAR-10 (QUICK)"
    return "CIFAR-10 (image folders)"
