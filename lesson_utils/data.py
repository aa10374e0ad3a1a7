"""CIFAR-10 for the lesson: downloaded, from a local copy, or generated for quick offline runs.

Every public function checks its arguments where they enter and raises a ValueError or TypeError
that names the argument, the value it got and what it accepts.
"""
import numbers
import os
import urllib.error
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms
from torchvision.datasets.utils import check_integrity

from .checks import check_bool, check_callable, check_images_dataset, check_int
from .paths import DATA_DIR, REPO_ROOT

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")  # CIFAR-10's label order
DATA_CHOICES = ("auto", "download", "local", "generated")
# The lesson's Normalize, per channel: (x - 0.5) / 0.5 maps [0, 1] to [-1, 1].
MEAN = STD = (0.5, 0.5, 0.5)


class DataUnavailableError(RuntimeError):
    """CIFAR-10 could neither be found nor downloaded."""


def cifar10_transform():
    """The lesson's preprocessing: to a [3, 32, 32] float tensor in [-1, 1]."""
    return transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ])


class ArrayDataset(Dataset):
    """Images held in memory like torchvision's CIFAR10: `data` is uint8 [N, 32, 32, 3]."""

    def __init__(self, data, targets, transform=None, classes=CLASSES, source=""):
        self.data, self.targets = data, list(targets)
        self.transform, self.classes, self.source = transform, list(classes), source

    def __len__(self):
        return len(self.data)

    def __getitem__(self, index):
        img = Image.fromarray(self.data[index])
        if self.transform is not None:
            img = self.transform(img)
        return img, self.targets[index]


def load_image_folder(folder, transform=None):
    """Read `folder/<class>/*` (class folders named as in CLASSES) into an ArrayDataset."""
    if not isinstance(folder, (str, os.PathLike)):
        raise TypeError(f"folder must be a path (str or Path), got {type(folder).__name__}")
    check_callable("transform", transform, "a transform (a function of a PIL image) or None")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist or is not a folder (expected "
                                f"one subfolder per class: {', '.join(CLASSES)})")
    images, targets = [], []
    for label, name in enumerate(CLASSES):
        class_dir = folder / name
        if not class_dir.is_dir():
            raise FileNotFoundError(f"missing class folder {class_dir} (expected one folder per "
                                    f"class: {', '.join(CLASSES)})")
        for path in sorted(class_dir.iterdir()):
            try:
                with Image.open(path) as img:
                    array = np.asarray(img.convert("RGB"))
            except OSError as err:
                raise OSError(f"cannot read image {path}: {err}. The local copy in {folder} is "
                              f"damaged: copy this file again from where the copy came from "
                              f"(or re-extract the archive), or use the download instead "
                              f"(DATA = 'download', CIFAR10_ROOT unset)") from err
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
    check_callable("transform", transform, "a transform (a function of a PIL image) or None")
    rng = np.random.default_rng(seed)
    targets = np.arange(n) % 10
    rng.shuffle(targets)
    palette = np.array([[230, 60, 60], [60, 200, 60], [70, 90, 230], [230, 200, 50], [200, 70, 220],
                        [60, 210, 210], [240, 140, 40], [130, 130, 130], [150, 90, 40],
                        [250, 250, 250]],
                       dtype=np.float32)
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


def load_cifar10(data="auto", root=None, transform=None, test_transform=None,
                 n_generated=(2000, 500), seed=0):
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
        raise TypeError(f"root must be a folder (str or Path) or None, got "
                        f"{type(root).__name__}: {root!r}")
    check_callable("transform", transform, "a transform (a function of a PIL image) or None")
    check_callable("test_transform", test_transform,
                   "a transform (a function of a PIL image) or None")
    if (isinstance(n_generated, (str, bytes)) or not hasattr(n_generated, "__len__")
            or len(n_generated) != 2):
        raise TypeError(f"n_generated must be a pair (n_train, n_test) of integers >= 1, got "
                        f"{n_generated!r}")
    try:
        n_generated = (check_int("n_train", n_generated[0], 1),
                       check_int("n_test", n_generated[1], 1))
    except (TypeError, ValueError) as err:
        raise type(err)(f"n_generated must be a pair (n_train, n_test) of integers >= 1, got "
                        f"{n_generated!r}: {err}") from None
    seed = check_int("seed", seed, 0)
    transform = transform or cifar10_transform()
    test_transform = test_transform or transform
    if data == "generated":
        n_train, n_test = n_generated
        return (make_generated_cifar(n_train, seed, transform),
                make_generated_cifar(n_test, seed + 1, test_transform))
    if data == "local" or (data == "auto" and root):
        if not root:
            raise DataUnavailableError(_ways_out("data='local' needs a folder: pass root (the "
                                                 "notebooks' CIFAR10_ROOT)"))
        return _load_local(Path(root), transform, test_transform)
    return _download(DATA_DIR, transform, test_transform)


def _load_local(root, transform, test_transform):
    if not root.is_dir():
        raise DataUnavailableError(_ways_out(f"the folder {root} does not exist"))
    if (root / "cifar-10-batches-py").is_dir():
        try:
            return (datasets.CIFAR10(root, train=True, download=False, transform=transform),
                    datasets.CIFAR10(root, train=False, download=False, transform=test_transform))
        except (RuntimeError, OSError, ValueError, EOFError) as err:  # checksum or unpickling
            # a local copy: name the damaged file, never suggest deleting it
            damaged = damaged_cifar10_files(root) or [("cifar-10-batches-py", str(err))]
            raise DataUnavailableError(_damaged_local(root, damaged)) from None
    if (root / "train").is_dir() and (root / "test").is_dir():
        return (load_image_folder(root / "train", transform),
                load_image_folder(root / "test", test_transform))
    raise DataUnavailableError(_ways_out(
        f"{root} holds neither cifar-10-batches-py nor train/ and test/ image folders"))


def _download(root, transform, test_transform):
    try:
        return (datasets.CIFAR10(root, train=True, download=True, transform=transform),
                datasets.CIFAR10(root, train=False, download=True, transform=test_transform))
    except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
        raise DataUnavailableError(_ways_out(f"downloading CIFAR-10 failed ({err})")) from None
    except RuntimeError as err:  # a partial or damaged download fails torchvision's checksum
        raise DataUnavailableError(_corrupt(root, err)) from None


def _corrupt(root, err):
    """A damaged download (in data/, which the course manages): deleting it is the fix."""
    return (f"the CIFAR-10 files in {root} are incomplete or corrupt ({err}): delete "
            f"{root / 'cifar-10-batches-py'} and {root / 'cifar-10-python.tar.gz'} and retry")


def damaged_cifar10_files(root):
    """(file name, what is wrong) for each file of root/cifar-10-batches-py that is missing or
    fails torchvision's MD5 checksum."""
    folder = Path(root) / datasets.CIFAR10.base_folder
    meta = datasets.CIFAR10.meta
    damaged = []
    for name, md5 in datasets.CIFAR10.train_list + datasets.CIFAR10.test_list + [
            [meta["filename"], meta["md5"]]]:
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
    return (f"the local CIFAR-10 copy in {folder} is damaged ({files}). It is your copy: it was "
            f"left as it is. To get a good one: extract cifar-10-batches-py again from "
            f"the archive (tar -xzf cifar-10-python.tar.gz -C {root}) or copy it again from where "
            f"it came from; or use the download instead: DATA = 'download' with CIFAR10_ROOT "
            f"unset (torchvision fetches it into data/, 170 MB).")


def _ways_out(reason):
    return (f"CIFAR-10 is not available: {reason}.\nThree ways out:\n"
            "  1. connect to the internet and run again: torchvision downloads it into data/ "
            "(170 MB);\n"
            "  2. point CIFAR10_ROOT (or the notebook's CIFAR10_ROOT parameter) at a copy: "
            "a folder "
            "holding cifar-10-batches-py, or train/<class>/ and test/<class>/ image folders;\n"
            "  3. use the generated dataset: DATA = 'generated' or QUICK = True (offline, small).")


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


def augmented_cifar10_transform(crop=True):
    """Augmentation for the training set only: random flip (and shifted 32x32 crop), then the
    lesson's ToTensor + Normalize. The test set keeps cifar10_transform()."""
    check_bool("crop", crop)
    steps = [transforms.RandomHorizontalFlip()]
    if crop:
        steps.append(transforms.RandomCrop(32, padding=4))
    return transforms.Compose(steps + list(cifar10_transform().transforms))


def lesson_augmentations(crop_size=400):
    """The original lesson's four augmentations (crop_size fits matplotlib's 512x600 sample
    photo)."""
    crop_size = check_int("crop_size", crop_size, 1)
    return {"RandomRotation(30)": transforms.RandomRotation(30),
            "RandomHorizontalFlip()": transforms.RandomHorizontalFlip(),
            "ColorJitter(brightness=1, contrast=1)": transforms.ColorJitter(brightness=1.,
                                                                             contrast=1.),
            f"RandomResizedCrop({crop_size})": transforms.RandomResizedCrop(crop_size)}


AUGMENTATION_NAMES = ("rotation", "flip", "color jitter", "resized crop", "crop with padding")


def make_augmentation(name, strength=0.5, size=400):
    """One augmentation whose strength goes from 0 (nothing changes) to 1 (strongest)."""
    if not isinstance(name, str) or name not in AUGMENTATION_NAMES:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {AUGMENTATION_NAMES}")
    if (isinstance(strength, (bool, np.bool_)) or not isinstance(strength, numbers.Real)
            or not 0 <= strength <= 1):
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
        return transforms.Compose([transforms.Resize(size), transforms.RandomCrop(
            size, padding=int(size * 0.25 * strength))])
    raise ValueError(f"unknown augmentation {name!r}; choose one of {AUGMENTATION_NAMES}")


def make_loaders(train_dataset, test_dataset, batch_size=64, shuffle=True):
    """The lesson's loaders: batches of 64, shuffled (num_workers=0: safe in notebooks on every
    OS)."""
    batch_size = check_int("batch_size", batch_size, 1)
    check_bool("shuffle", shuffle)
    for name, dataset in (("train_dataset", train_dataset), ("test_dataset", test_dataset)):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(f"{name} must be a dataset (with __getitem__ and __len__), got "
                            f"{type(dataset).__name__}")
    return (DataLoader(train_dataset, batch_size=batch_size, shuffle=shuffle),
            DataLoader(test_dataset, batch_size=batch_size, shuffle=shuffle))


class TensorLoader:
    """A fast stand-in for DataLoader(dataset, batch_size, shuffle=True) with ToTensor + Normalize.

    The whole dataset stays in memory as one uint8 tensor (on `device`); each batch is converted and
    normalized in one go instead of image by image through PIL. With the same torch seed it yields
    the same batches, bit for bit and in the same order, as the lesson's DataLoader, and leaves
    torch's random state as that DataLoader does: the order comes from a DataLoader over the
    indices.
    (shuffle=False draws no random number.)
    `augment` is an optional function applied to each float batch (see augment_batch).
    """

    def __init__(self, dataset, batch_size=64, shuffle=True, device="cpu", augment=None):
        check_images_dataset("dataset", dataset)
        if len(dataset.targets) == 0:
            raise ValueError("dataset is empty (0 images): nothing to load")
        batch_size = check_int("batch_size", batch_size, 1)
        check_bool("shuffle", shuffle)
        check_callable("augment", augment, "a function of a float batch (see augment_batch) "
                                           "or None")
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"device must be a torch device such as 'cpu' or 'cuda', got "
                             f"{device!r} ({err})") from None
        data = np.asarray(dataset.data)
        if data.dtype != np.uint8:
            raise TypeError(f"dataset.data must hold uint8 pixels (0..255), got {data.dtype}")
        data = torch.as_tensor(data).permute(0, 3, 1, 2)  # NHWC -> NCHW
        self.images = data.contiguous().to(device)
        self.labels = torch.as_tensor(dataset.targets, dtype=torch.long).to(device)
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.augment = augment
        self._mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        self._std = torch.tensor(STD, device=device).view(1, 3, 1, 1)

    def __len__(self):
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            # The order a shuffling DataLoader draws, from torch's global random state: one
            # batch holding every index is the same permutation as batches of batch_size.
            order = next(iter(DataLoader(range(n), batch_size=n, shuffle=True)))
        else:
            order = torch.arange(n)
        order = order.to(self.labels.device)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            # ToTensor + Normalize
            x = self.images[idx].float().div(255).sub(self._mean).div(self._std)
            if self.augment is not None:
                x = self.augment(x)
            yield x, self.labels[idx]


def augment_batch(x, flip=True, crop_padding=4, fill=-1.0):
    """RandomHorizontalFlip + RandomCrop(32, padding) applied per image, on a whole batch at once.

    `fill` is the padding value: -1.0 is black after Normalize(0.5, 0.5), as torchvision's
    RandomCrop pads the PIL image with black before normalization.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor batch [N, C, H, W], got {type(x).__name__}")
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float batch of shape [N, C, H, W], got {x.dtype} of shape "
                         f"{list(x.shape)}")
    check_bool("flip", flip)
    crop_padding = check_int("crop_padding", crop_padding, 0)
    if isinstance(fill, bool) or not isinstance(fill, numbers.Real):
        raise TypeError(f"fill must be a number, got {fill!r}")
    n, _, h, w = x.shape
    if flip:
        flip_mask = torch.rand(n, device=x.device) < 0.5
        x = torch.where(flip_mask[:, None, None, None], x.flip(3), x)
    if crop_padding:
        p = crop_padding
        padded = torch.nn.functional.pad(x, (p, p, p, p), value=fill)
        dy = torch.randint(0, 2 * p + 1, (n,), device=x.device)
        dx = torch.randint(0, 2 * p + 1, (n,), device=x.device)
        rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chans = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, chans, rows, cols]
    return x


def select_classes(dataset, classes, per_class=None, seed=0, transform=None):
    """A new ArrayDataset with only `classes` (labels renumbered 0..len(classes)-1), and at most
    `per_class` images of each, picked at random with `seed` (for few-label experiments).
    classes: label numbers (0..9 for CIFAR-10); per_class: None (all) or an integer >= 1."""
    check_images_dataset("dataset", dataset)
    names = list(getattr(dataset, "classes", CLASSES))
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise TypeError(f"classes must be a list of label numbers 0..{len(names) - 1}, got "
                        f"{classes!r}")
    classes = list(classes)
    if not classes:
        raise ValueError("classes is empty: choose at least one label number "
                         f"0..{len(names) - 1}")
    for c in classes:
        if isinstance(c, str) and c in names:
            raise TypeError(f"classes must hold label numbers, got the name {c!r}: its number "
                            f"is {names.index(c)}")
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, numbers.Integral):
            raise TypeError(f"classes must hold label numbers 0..{len(names) - 1}, got {c!r}")
        if not 0 <= c < len(names):
            raise ValueError(f"classes: unknown class {c!r}; this dataset's labels are "
                             f"0..{len(names) - 1} ({', '.join(names)})")
    if len(set(classes)) != len(classes):
        raise ValueError(f"classes lists a class twice: {classes}")
    if per_class is not None:
        per_class = check_int("per_class", per_class, 1)
    seed = check_int("seed", seed, 0)
    check_callable("transform", transform, "a transform (a function of a PIL image) or None")
    targets = np.asarray(dataset.targets)
    rng = np.random.default_rng(seed)
    keep = []
    for label in classes:
        idx = np.flatnonzero(targets == label)
        keep.append(rng.permutation(idx)[:per_class] if per_class else idx)
    keep = np.sort(np.concatenate(keep))
    relabel = {label: i for i, label in enumerate(classes)}
    names = [names[c] for c in classes]
    return ArrayDataset(np.asarray(dataset.data)[keep], [relabel[t] for t in targets[keep]],
                        transform or getattr(dataset, "transform", None), names,
                        source=getattr(dataset, "source", ""))
