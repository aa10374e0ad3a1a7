"""CIFAR-10 for the lesson: downloaded, from a local copy, or generated for quick offline runs."""
import os
import urllib.error
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")  # CIFAR-10's label order
REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"  # git-ignored
DATA_CHOICES = ("auto", "download", "local", "generated")


class DataUnavailableError(RuntimeError):
    """CIFAR-10 could neither be found nor downloaded."""


def cifar10_transform():
    """The lesson's preprocessing: to a [3, 32, 32] float tensor in [-1, 1]."""
    return transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
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
    folder = Path(folder)
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
                raise OSError(f"cannot read image {path}: {err}") from err
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
    """
    rng = np.random.default_rng(seed)
    targets = np.arange(n) % 10
    rng.shuffle(targets)
    palette = np.array([[230, 60, 60], [60, 200, 60], [70, 90, 230], [230, 200, 50], [200, 70, 220],
                        [60, 210, 210], [240, 140, 40], [130, 130, 130], [150, 90, 40], [250, 250, 250]],
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

    data: "auto"      a local copy if `root` or $CIFAR10_ROOT names one, else download into data/
          "download"  torchvision's CIFAR10 in data/ (downloads 170 MB once)
          "local"     a local copy in `root` or $CIFAR10_ROOT: torchvision's cifar-10-batches-py
                      or image folders train/<class>/* and test/<class>/*
          "generated" make_generated_cifar: small, offline, for quick runs and tests
    transform applies to the training set; test_transform (default: the same as transform, or the
    lesson's ToTensor + Normalize when both are None) to the test set.
    """
    if data not in DATA_CHOICES:
        raise ValueError(f"unknown data {data!r}; choose one of {DATA_CHOICES}")
    transform = transform or cifar10_transform()
    test_transform = test_transform or transform
    root = root or os.environ.get("CIFAR10_ROOT")
    if data == "generated":
        n_train, n_test = n_generated
        return (make_generated_cifar(n_train, seed, transform),
                make_generated_cifar(n_test, seed + 1, test_transform))
    if data == "local" or (data == "auto" and root):
        if not root:
            raise DataUnavailableError(_ways_out("data='local' needs a folder: set CIFAR10_ROOT"))
        return _load_local(Path(root), transform, test_transform)
    return _download(DATA_DIR, transform, test_transform)


def _load_local(root, transform, test_transform):
    if (root / "cifar-10-batches-py").is_dir():
        try:
            return (datasets.CIFAR10(root, train=True, download=False, transform=transform),
                    datasets.CIFAR10(root, train=False, download=False, transform=test_transform))
        except RuntimeError as err:  # torchvision's checksum test failed
            raise DataUnavailableError(_corrupt(root, err)) from None
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
    return (f"the CIFAR-10 files in {root} are incomplete or corrupt ({err}): delete "
            f"{root / 'cifar-10-batches-py'} and {root / 'cifar-10-python.tar.gz'} and retry")


def _ways_out(reason):
    return (f"CIFAR-10 is not available: {reason}.\nThree ways out:\n"
            "  1. connect to the internet and run again: torchvision downloads it into data/ (170 MB);\n"
            "  2. point CIFAR10_ROOT (or the notebook's CIFAR10_ROOT parameter) at a copy: a folder "
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
    steps = [transforms.RandomHorizontalFlip()]
    if crop:
        steps.append(transforms.RandomCrop(32, padding=4))
    return transforms.Compose(steps + list(cifar10_transform().transforms))


def lesson_augmentations(crop_size=400):
    """The original lesson's four augmentations (crop_size fits matplotlib's 512x600 sample photo)."""
    return {"RandomRotation(30)": transforms.RandomRotation(30),
            "RandomHorizontalFlip()": transforms.RandomHorizontalFlip(),
            "ColorJitter(brightness=1, contrast=1)": transforms.ColorJitter(brightness=1., contrast=1.),
            f"RandomResizedCrop({crop_size})": transforms.RandomResizedCrop(crop_size)}


AUGMENTATION_NAMES = ("rotation", "flip", "color jitter", "resized crop", "crop with padding")


def make_augmentation(name, strength=0.5, size=400):
    """One augmentation whose strength goes from 0 (nothing changes) to 1 (strongest)."""
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
    """The lesson's loaders: batches of 64, shuffled (num_workers=0: safe in notebooks on every OS)."""
    return (DataLoader(train_dataset, batch_size=batch_size, shuffle=shuffle),
            DataLoader(test_dataset, batch_size=batch_size, shuffle=shuffle))


class TensorLoader:
    """A fast stand-in for DataLoader(dataset, batch_size, shuffle=True) with ToTensor + Normalize.

    The whole dataset stays in memory as one uint8 tensor (on `device`); each batch is converted and
    normalized in one go instead of image by image through PIL. With the same torch seed it yields the
    same batches, bit for bit and in the same order, as the lesson's DataLoader.
    `augment` is an optional function applied to each float batch (see augment_batch).
    """

    def __init__(self, dataset, batch_size=64, shuffle=True, device="cpu", augment=None,
                 channels_last=False):
        data = torch.as_tensor(np.asarray(dataset.data)).permute(0, 3, 1, 2)  # NHWC -> NCHW
        self.images = data.contiguous().to(device)
        self.labels = torch.as_tensor(dataset.targets, dtype=torch.long).to(device)
        self.dataset, self.batch_size, self.shuffle = dataset, batch_size, shuffle
        self.augment, self.channels_last = augment, channels_last

    def __len__(self):
        return (len(self.labels) + self.batch_size - 1) // self.batch_size

    def __iter__(self):
        n = len(self.labels)
        if self.shuffle:
            # Draw from the global RNG exactly as DataLoader + RandomSampler do, so orders match.
            torch.empty((), dtype=torch.int64).random_()  # DataLoader's base seed for workers
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        else:
            order = torch.arange(n)
        order = order.to(self.labels.device)
        for start in range(0, n, self.batch_size):
            idx = order[start:start + self.batch_size]
            x = self.images[idx].float().div(255).sub(0.5).div(0.5)  # ToTensor + Normalize
            if self.augment is not None:
                x = self.augment(x)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


def augment_batch(x, flip=True, crop_padding=4, fill=-1.0):
    """RandomHorizontalFlip + RandomCrop(32, padding) applied per image, on a whole batch at once.

    `fill` is the padding value: -1.0 is black after Normalize(0.5, 0.5), as torchvision's RandomCrop
    pads the PIL image with black before normalization.
    """
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
    `per_class` images of each, picked at random with `seed` (for few-label experiments)."""
    targets = np.asarray(dataset.targets)
    rng = np.random.default_rng(seed)
    keep = []
    for label in classes:
        idx = np.flatnonzero(targets == label)
        keep.append(rng.permutation(idx)[:per_class] if per_class else idx)
    keep = np.sort(np.concatenate(keep))
    relabel = {label: i for i, label in enumerate(classes)}
    names = [dataset.classes[c] for c in classes]
    return ArrayDataset(np.asarray(dataset.data)[keep], [relabel[t] for t in targets[keep]],
                        transform or getattr(dataset, "transform", None), names,
                        source=getattr(dataset, "source", ""))
