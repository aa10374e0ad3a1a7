"""CIFAR-10 for the lesson: the dataset, its transforms and its loaders.

Finding the data offline (a local copy, a generated stand-in) is support/cifar10.py's job.
Every public function checks its arguments and names the wrong one in its error.
"""

import numbers
import os

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import datasets, transforms

from .paths import DATA_DIR
from .support.checks import (
    check_bool,
    check_callable,
    check_images_dataset,
    check_int,
    check_labels,
    check_transform,
)

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)  # CIFAR-10's label order
# The lesson's Normalize, per channel: (x - 0.5) / 0.5 maps [0, 1] to [-1, 1].
MEAN = STD = (0.5, 0.5, 0.5)


def cifar10_transform():
    """The lesson's preprocessing: to a [3, 32, 32] float tensor in [-1, 1]."""
    return transforms.Compose(
        [
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )


def download_cifar10(root=DATA_DIR, transform=None, test_transform=None):
    """The lesson's datasets: torchvision downloads CIFAR-10 (170 MB) into `root` once.
    Returns (train_dataset, test_dataset); the test set gets test_transform, or transform."""
    if not isinstance(root, (str, os.PathLike)):
        raise TypeError(f"root must be a folder (str or Path), got {type(root).__name__}")
    check_transform("transform", transform)
    check_transform("test_transform", test_transform)
    transform = transform or cifar10_transform()
    return (
        datasets.CIFAR10(root, train=True, download=True, transform=transform),
        datasets.CIFAR10(root, train=False, download=True, transform=test_transform or transform),
    )


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
    return {
        "RandomRotation(30)": transforms.RandomRotation(30),
        "RandomHorizontalFlip()": transforms.RandomHorizontalFlip(),
        "ColorJitter(brightness=1, contrast=1)": transforms.ColorJitter(
            brightness=1.0, contrast=1.0
        ),
        f"RandomResizedCrop({crop_size})": transforms.RandomResizedCrop(crop_size),
    }


def make_loaders(train_dataset, test_dataset, batch_size=64, shuffle=True):
    """The lesson's loaders: batches of 64, shuffled (num_workers=0: safe in notebooks on every
    OS)."""
    batch_size = check_int("batch_size", batch_size, 1)
    check_bool("shuffle", shuffle)
    for name, dataset in (("train_dataset", train_dataset), ("test_dataset", test_dataset)):
        if not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
            raise TypeError(
                f"{name} must be a dataset (with __getitem__ and __len__), got "
                f"{type(dataset).__name__}"
            )
    return (
        DataLoader(train_dataset, batch_size=batch_size, shuffle=shuffle),
        DataLoader(test_dataset, batch_size=batch_size, shuffle=shuffle),
    )


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
        check_callable(
            "augment", augment, "a function of a float batch (see augment_batch) or None"
        )
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device must be a torch device such as 'cpu' or 'cuda', got {device!r} ({err})"
            ) from None
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
            idx = order[start : start + self.batch_size]
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
        raise ValueError(
            f"x must be a float batch of shape [N, C, H, W], got {x.dtype} of shape {list(x.shape)}"
        )
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
    classes = check_labels("classes", classes, names)
    if per_class is not None:
        per_class = check_int("per_class", per_class, 1)
    seed = check_int("seed", seed, 0)
    check_transform("transform", transform)
    targets = np.asarray(dataset.targets)
    rng = np.random.default_rng(seed)
    keep = []
    for label in classes:
        idx = np.flatnonzero(targets == label)
        keep.append(rng.permutation(idx)[:per_class] if per_class else idx)
    keep = np.sort(np.concatenate(keep))
    relabel = {label: i for i, label in enumerate(classes)}
    names = [names[c] for c in classes]
    return ArrayDataset(
        np.asarray(dataset.data)[keep],
        [relabel[t] for t in targets[keep]],
        transform or getattr(dataset, "transform", None),
        names,
        source=getattr(dataset, "source", ""),
    )
