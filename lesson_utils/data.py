"""CIFAR-10 for the lesson: the dataset, its transforms and its loaders.

Plain PyTorch: no argument checks here. Finding the data (a download, a local copy, a generated
stand-in for offline runs) is support/cifar10.py's job; notebook 02 writes the standard
datasets.CIFAR10 + DataLoader pipeline out.
"""

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

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
    steps = [transforms.RandomHorizontalFlip()]
    if crop:
        steps.append(transforms.RandomCrop(32, padding=4))
    return transforms.Compose(steps + list(cifar10_transform().transforms))


def lesson_augmentations(crop_size=400):
    """The original lesson's four augmentations (crop_size fits matplotlib's 512x600 sample
    photo)."""
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
        device = torch.device(device)
        data = torch.as_tensor(np.asarray(dataset.data)).permute(0, 3, 1, 2)  # NHWC -> NCHW
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


def validation_split(targets, fraction=0.1, seed=0):
    """(train indices, validation indices) of a training set: `fraction` of each class's images
    (stratified: CIFAR-10's 50,000 give 500 per class, 5,000 in all), drawn with a fixed `seed`, so
    every run of the course holds out the same images. Both sorted."""
    targets = np.asarray(targets)
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(targets):
        idx = np.flatnonzero(targets == label)
        val.append(rng.permutation(idx)[: round(fraction * len(idx))])
    val = np.sort(np.concatenate(val))
    return np.setdiff1d(np.arange(len(targets)), val), val


def subset(dataset, indices, transform=None):
    """The images `indices` of `dataset` as a new ArrayDataset (in that order), read through
    `transform` (default: the dataset's own)."""
    indices = np.asarray(indices)
    return ArrayDataset(
        np.asarray(dataset.data)[indices],
        np.asarray(dataset.targets)[indices].tolist(),
        transform or getattr(dataset, "transform", None),
        getattr(dataset, "classes", CLASSES),
        source=getattr(dataset, "source", None) or getattr(dataset, "root", ""),
    )


def select_classes(dataset, classes, per_class=None, seed=0, transform=None):
    """A new ArrayDataset with only `classes` (labels renumbered 0..len(classes)-1), and at most
    `per_class` images of each, picked at random with `seed` (for few-label experiments).
    classes: label numbers (0..9 for CIFAR-10); per_class: None (all) or an integer >= 1."""
    names = list(getattr(dataset, "classes", CLASSES))
    targets = np.asarray(dataset.targets)
    rng = np.random.default_rng(seed)
    keep = []
    for label in classes:
        idx = np.flatnonzero(targets == label)
        keep.append(rng.permutation(idx)[:per_class] if per_class else idx)
    picked = subset(dataset, np.sort(np.concatenate(keep)), transform)
    relabel = {label: i for i, label in enumerate(classes)}
    picked.targets = [relabel[t] for t in picked.targets]
    picked.classes = [names[c] for c in classes]
    return picked
