"""Checks of notebook 06 (data augmentation): a train and a test transform for CIFAR-10, and
the probability that a training image comes out unchanged."""

import numpy as np
import torch
from PIL import Image
from torchvision import transforms

from .core import (
    NOT_ANSWERED,
    _call,
    _check_number,
    _never_raises,
    _right,
    _seeded,
    _show,
    _wrong,
)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # the statistics of CIFAR-10's training images
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
SHIFT = 2  # the crop of the exercise shifts the image by up to 2 pixels
DRAWS = 200


def _check_image():
    """A 32x32 RGB image of noise: no two shifts or flips of it look alike."""
    gen = torch.Generator().manual_seed(0)
    array = torch.randint(0, 256, (32, 32, 3), generator=gen, dtype=torch.uint8).numpy()
    return Image.fromarray(array)


def _normalized(image, mean=CIFAR10_MEAN, std=CIFAR10_STD):
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]


def _variants(base, max_shift):
    """{(flipped, dy, dx): (image, mask)}: out[i, j] = src[i + dy, j + dx] where that exists."""
    found = {}
    for flipped in (False, True):
        src = base.flip(-1) if flipped else base
        for dy in range(-max_shift, max_shift + 1):
            for dx in range(-max_shift, max_shift + 1):
                image, mask = torch.zeros_like(src), torch.zeros(32, 32, dtype=torch.bool)
                rows = slice(max(0, -dy), 32 - max(0, dy))
                cols = slice(max(0, -dx), 32 - max(0, dx))
                image[:, rows, cols] = src[
                    :, max(0, dy) : 32 + min(0, dy), max(0, dx) : 32 + min(0, dx)
                ]
                mask[rows, cols] = True
                found[(flipped, dy, dx)] = image, mask
    return found


def _match(output, variants):
    for key, (image, mask) in variants.items():
        if torch.allclose(output[:, mask], image[:, mask], atol=1e-3):
            return key
    return None


def _outputs(transform, image, seeds):
    """The transform's output for each seed, as tensors; or the feedback that says why not."""
    results = []
    for seed in seeds:
        with _seeded(seed):
            out, error = _call(transform, image.copy())
        if error:
            return None, f"on a 32x32 PIL image it raised {error}"
        if not isinstance(out, torch.Tensor):
            return None, f"it returns {_show(out, 50)}, not a tensor"
        if tuple(out.shape) != (3, 32, 32) or not out.is_floating_point():
            return None, f"it returns a {out.dtype} tensor of shape {list(out.shape)}"
        results.append(out.detach().float().cpu())
    return results, None


def _test_transform_problem(test_transform, image):
    hint = "the test images are seen as they are: convert to a tensor and normalize, nothing else."
    if not callable(test_transform):
        return f"the test transform, {_show(test_transform)}, is not a transform.", hint
    outputs, error = _outputs(test_transform, image, range(12))
    if error:
        return f"the test transform: {error}.", hint
    if any(not torch.equal(outputs[0], o) for o in outputs[1:]):
        differ = len({tuple(o.flatten()[:512].tolist()) for o in outputs})
        return (
            f"the test transform gave {differ} different outputs for the same image over 12 "
            "seeds: it augments. A test image must get the same score every time.",
            hint,
        )
    out = outputs[0]
    if torch.allclose(out, _normalized(image), atol=1e-3):
        return None
    if torch.allclose(out, _normalized(image, (0, 0, 0), (1, 1, 1)), atol=1e-3):
        return (
            "the test transform does not normalize.",
            "Normalize with the question's mean and std.",
        )
    if torch.allclose(out, _normalized(image, (0.5,) * 3, (0.5,) * 3), atol=1e-3):
        return (
            "the test transform normalizes with 0.5 and 0.5, not with CIFAR-10's statistics.",
            "use the mean and std given in the question.",
        )
    if _match(out, _variants(_normalized(image), 4)):
        return "the test transform moves or flips the image (the same way every time).", hint
    return "the test transform's output is not the normalized image.", hint


def _train_transform_problem(train_transform, image):
    hint = (
        "a flip with probability 0.5, RandomCrop(32, padding=...) for a shift of up to 2 "
        "pixels, ToTensor and Normalize with the question's mean and std."
    )
    if not callable(train_transform):
        return f"the train transform, {_show(train_transform)}, is not a transform.", hint
    outputs, error = _outputs(train_transform, image, range(DRAWS))
    if error:
        return f"the train transform: {error}.", hint
    variants = _variants(_normalized(image), SHIFT)
    seen = []
    for out in outputs:
        key = _match(out, variants)
        if key is None:
            if _match(out, _variants(_normalized(image), 6)):
                return (
                    "the train transform shifts the image by more than 2 pixels.",
                    "the padding sets how far the crop can move.",
                )
            for mean, std, what in (
                ((0.5,) * 3, (0.5,) * 3, "with 0.5 and 0.5, not with CIFAR-10's statistics"),
                ((0,) * 3, (1,) * 3, "not at all"),
            ):
                if _match(out, _variants(_normalized(image, mean, std), SHIFT)):
                    return (
                        f"the train transform normalizes {what}.",
                        "train and test images must be normalized alike: the question's mean "
                        "and std.",
                    )
            return (
                "an output of the train transform is not a flipped or shifted copy of the "
                "image: it changes the pixels in another way.",
                hint,
            )
        seen.append(key)
    flips = sum(flipped for flipped, _, _ in seen)
    dys, dxs = {dy for _, dy, _ in seen}, {dx for _, _, dx in seen}
    if flips in (0, DRAWS):
        return (
            f"the train transform flipped the image in {flips} of {DRAWS} draws.",
            "a random flip, half of the time: RandomHorizontalFlip's default p.",
        )
    if not 0.35 * DRAWS <= flips <= 0.65 * DRAWS:
        return (
            f"the train transform flipped the image in {flips} of {DRAWS} draws.",
            "flip half of the time.",
        )
    wrong_p = [
        t.p
        for t in getattr(train_transform, "transforms", [train_transform])
        if isinstance(t, transforms.RandomHorizontalFlip) and t.p != 0.5
    ]
    if wrong_p:  # exact where the transform says it; 200 draws could not tell 0.45 from 0.5
        return (
            f"the train transform flips with probability {wrong_p[0]}.",
            "a random flip, half of the time: RandomHorizontalFlip's default p.",
        )
    if dys == {0} and dxs == {0}:
        return (
            "the crop of the train transform never moved the image.",
            "RandomCrop(32) has room to move only if the 32x32 image is padded first.",
        )
    full = set(range(-SHIFT, SHIFT + 1))
    if dys != full or dxs != full:
        return (
            f"in {DRAWS} draws the train transform shifted the image by at most "
            f"{max(map(abs, dys | dxs))} pixel(s).",
            "the padding sets how far the crop moves.",
        )
    return None


@_never_raises(
    "two transforms, train_transform and test_transform, that take a PIL image and "
    "return a [3, 32, 32] tensor."
)
def check_train_transform(train_transform, test_transform=None):
    """The pair for CIFAR-10 normalized with its own mean and std: a train transform (random flip,
    a random shift of up to 2 pixels, to tensor, normalize) and a test transform (to tensor,
    normalize). Judged by what they do to an image over 200 seeds, not by how they are written."""
    if train_transform is None or test_transform is None:
        return NOT_ANSWERED
    image = _check_image()
    for problem in (
        _test_transform_problem(test_transform, image),
        _train_transform_problem(train_transform, image),
    ):
        if problem:
            return _wrong(*problem)
    return _right(
        "The train transform flips half of the time and shifts by up to 2 pixels; the "
        "test transform only converts and normalizes, alike."
    )


@_never_raises("a number (a fraction such as 1/5 is fine).")
def check_unchanged_probability(answer):
    """RandomHorizontalFlip() and RandomCrop(32, padding=3): the probability that a training image
    comes out exactly as it is (not flipped, not shifted)."""
    offsets = 2 * 3 + 1
    return _check_number(
        answer,
        0.5 / offsets**2,
        {
            1 / offsets**2: "leaves out the flip: half of the time the image is flipped.",
            0.5 / offsets: "counts the offsets of one direction; the crop moves across and down.",
            0.5 / 6**2: "counts 6 offsets per direction; count them from 0 to 2 * 3.",
            0.5 / 81: "is for padding=4.",
            0.5: "is the flip alone; the crop must also land in the middle.",
            1 / (offsets**2 + 2): "adds the flip to the crop positions; multiply the "
            "probabilities.",
        },
        "the crop's offset is uniform in each direction, and independent of the flip: multiply "
        "the probabilities of 'not flipped', 'middle across' and 'middle down'.",
        "The flip and both offsets must all come out right.",
        rel_tol=5e-3,
    )
