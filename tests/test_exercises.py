"""Property tests of the exercise checks: each accepts several distinct right answers, rejects wrong
ones with its own explanation and a hint (never the answer), and answers junk with feedback
instead of raising."""

import math
import random
import re

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import optim
from torchvision import transforms
from torchvision.transforms import v2

from lesson_utils import exercises as ex
from lesson_utils.exercises import nb01_shapes, nb02_training, nb06_augmentation
from lesson_utils.models import conv_output_size
from lesson_utils.transfer import set_trainable, vgg16_conv_blocks


def shows_answer(message, answer):
    """Whether a message contains the answer as a number (so '80' in '8080' does not count)."""
    numbers = {
        float(n.replace(",", ""))
        for n in re.findall(r"\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?(?:e-?\d+)?", message)
    }
    return any(math.isclose(n, answer, rel_tol=1e-5) for n in numbers)


# 01 · a function of the image size and the number of blocks


def in_features_loop(image_size, n_blocks):
    side, channels = image_size, 32
    for block in range(n_blocks):
        side = conv_output_size(side, kernel_size=3, padding=1) // 2
        channels = 32 * 2**block
    return side * side * channels


def in_features_formula(image_size, n_blocks):
    return (image_size // 2**n_blocks) ** 2 * 32 * 2 ** (n_blocks - 1)


def in_features_by_running(image_size, n_blocks):
    layers, c_in = [], 3
    for block in range(n_blocks):
        c_out = 32 * 2**block
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        c_in = c_out
    with torch.no_grad():
        flat = nn.Sequential(*layers, nn.Flatten())(torch.zeros(1, 3, image_size, image_size))
    return flat.shape[1]


def in_features_numpy(image_size, n_blocks):
    return np.int64(np.floor(image_size / 2**n_blocks) ** 2 * 32 * 2 ** (n_blocks - 1))


# 02 · top-k accuracy on a loader


def topk_loop(model, device, loader, k):
    model.eval()
    hits, total = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            images, labels = images.to(device), labels.to(device)
            best = model(images).topk(k, dim=1).indices
            hits += (best == labels[:, None]).any(dim=1).sum().item()
            total += len(labels)
    return 100.0 * hits / total


def topk_tensor(model, device, loader, k):
    model.eval()
    with torch.inference_mode():
        hits = [
            (torch.topk(model(x.to(device)), k).indices == y.to(device).view(-1, 1)).sum()
            for x, y in loader
        ]
    return torch.stack(hits).sum() * 100 / len(loader.dataset)


def topk_argsort(model, device, loader, k):
    model.eval()
    correct = []
    with torch.no_grad():
        for x, y in loader:
            ranked = model(x).argsort(dim=1, descending=True)[:, :k]
            correct += (ranked == y.unsqueeze(1)).any(1).tolist()
    return 100 * np.mean(correct)


def topk_train_mode(model, device, loader, k):
    with torch.no_grad():
        return 100 * np.mean(
            [
                (model(x).topk(k).indices == y[:, None]).any(1).float().mean().item()
                for x, y in loader
            ]
        )


def topk_batch_means(model, device, loader, k):
    model.eval()
    with torch.no_grad():
        means = [(model(x).topk(k).indices == y[:, None]).any(1).float().mean() for x, y in loader]
    return 100 * torch.stack(means).mean()


def topk_with_grad(model, device, loader, k):
    model.eval()
    hits = sum((model(x).topk(k).indices == y[:, None]).any(1).sum().item() for x, y in loader)
    return 100 * hits / len(loader.dataset)


# 03 · dropout from scratch


class DropoutRand(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training:
            return x
        return x * (torch.rand_like(x) >= self.p) / (1 - self.p)


class DropoutBernoulli(nn.Module):
    def __init__(self, p=0.5):
        super().__init__()
        self.keep = 1 - p

    def forward(self, x):
        if self.training:
            return torch.bernoulli(torch.full_like(x, self.keep)) * x / self.keep
        return x


class DropoutWhere(nn.Module):
    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if self.training and self.p > 0:
            drop = torch.empty_like(x).uniform_() < self.p
            return torch.where(drop, torch.zeros_like(x), x / (1 - self.p))
        return x


def dropout_variant(forward):
    return type("MyDropout", (DropoutRand,), {"forward": forward})


DROPOUT_WRONG = [
    (
        dropout_variant(lambda self, x: x * (torch.rand_like(x) < self.p) / (1 - self.p)),
        "zeroed 70%",
    ),
    (
        dropout_variant(
            lambda self, x: (
                x * (torch.rand_like(x) >= self.p) if self.training else x * (1 - self.p)
            )
        ),
        "not scaled",
    ),
    (
        dropout_variant(
            lambda self, x: x * (torch.rand_like(x) >= self.p) / self.p if self.training else x
        ),
        "multiplied by",
    ),
    (
        dropout_variant(lambda self, x: x * (torch.rand_like(x) >= self.p) / (1 - self.p)),
        "eval mode",
    ),
    (
        dropout_variant(
            lambda self, x: (
                x * (torch.rand(x.shape[0], 1) >= self.p) / (1 - self.p) if self.training else x
            )
        ),
        "whole rows",
    ),
    (
        dropout_variant(
            lambda self, x: (
                x * (torch.rand(x.shape[-1]) >= self.p) / (1 - self.p) if self.training else x
            )
        ),
        "same mask",
    ),
    (dropout_variant(lambda self, x: F.dropout(x, self.p, self.training)), "PyTorch's dropout"),
    (
        dropout_variant(
            lambda self, x: (
                x.mul_((torch.rand_like(x) >= self.p) / (1 - self.p)) if self.training else x
            )
        ),
        "in place",
    ),
    (dropout_variant(lambda self, x: None), "Not answered"),
    (nn.Dropout, "PyTorch's own dropout"),
]


def fixed_mask_dropout():
    mask = {}

    def forward(self, x):
        if not self.training:
            return x
        if x.shape not in mask:
            mask[x.shape] = torch.rand_like(x) >= self.p
        return x * mask[x.shape] / (1 - self.p)

    return dropout_variant(forward)


def detached_dropout():
    def forward(self, x):
        if not self.training:
            return x
        return (x * (torch.rand_like(x) >= self.p) / (1 - self.p)).detach()

    return dropout_variant(forward)


def _renamed_dropout():
    from torch.nn.functional import dropout as d  # bound before the check patches anything

    return dropout_variant(lambda self, x: d(x, self.p, self.training))


DROPOUT_UNDER_OTHER_NAMES = {
    "imported as d": _renamed_dropout(),
    "torch.dropout": dropout_variant(lambda self, x: torch.dropout(x, self.p, self.training)),
    "torch._VF": dropout_variant(lambda self, x: torch._VF.dropout(x, self.p, self.training)),
    "getattr": dropout_variant(
        lambda self, x: getattr(F, "drop" + "out")(x, self.p, self.training)
    ),
    "aten": dropout_variant(
        lambda self, x: torch.ops.aten.native_dropout(x, self.p, self.training)[0]
    ),
    "nn.Dropout in forward": dropout_variant(
        lambda self, x: nn.Dropout(self.p).train(self.training)(x)
    ),
    "alpha_dropout": dropout_variant(lambda self, x: F.alpha_dropout(x, self.p, self.training)),
}


@pytest.mark.parametrize("case", sorted(DROPOUT_UNDER_OTHER_NAMES))
def test_the_dropout_check_tells_pytorchs_dropout_under_any_name(case):
    feedback = ex.check_dropout_module(DROPOUT_UNDER_OTHER_NAMES[case])
    assert not feedback and "PyTorch's" in feedback.message, feedback.message


def test_the_dropout_check_accepts_a_mask_from_bernoulli_in_place():
    def forward(self, x):
        if not self.training:
            return x
        return x * torch.empty_like(x).bernoulli_(1 - self.p) / (1 - self.p)

    feedback = ex.check_dropout_module(dropout_variant(forward))
    assert feedback and feedback.message.startswith("Correct."), feedback.message


# 04 · a ConvBlock with an optional BatchNorm


class BlockIdentity(nn.Module):
    def __init__(self, in_channels, out_channels, batch_norm=False):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x):
        return F.max_pool2d(F.relu(self.norm(self.conv(x))), 2)


class BlockSequential(nn.Module):
    def __init__(self, in_channels, out_channels, batch_norm=False):
        super().__init__()
        layers = [
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=not batch_norm)
        ]
        if batch_norm:
            layers.append(nn.BatchNorm2d(out_channels))
        self.layers = nn.Sequential(*layers, nn.ReLU(), nn.MaxPool2d(2))

    def forward(self, x):
        return self.layers(x)


class BlockPoolFirst(nn.Module):  # max-pool before the ReLU: the same function
    def __init__(self, in_channels, out_channels, batch_norm=False):
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels, out_channels, 3, padding="same")
        self.batch_norm = batch_norm
        if batch_norm:
            self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x):
        x = self.conv_layer(x)
        if self.batch_norm:
            x = self.bn(x)
        return torch.relu(nn.functional.max_pool2d(x, kernel_size=2, stride=2))


def block_variant(forward, **init):
    return type("NormConvBlock", (BlockIdentity,), {"forward": forward, **init})


def always_norm_init(self, in_channels, out_channels, batch_norm=False):
    BlockIdentity.__init__(self, in_channels, out_channels, True)


def batch_stats_forward(self, x):
    h = self.conv(x)
    if isinstance(self.norm, nn.BatchNorm2d):
        h = F.batch_norm(h, None, None, self.norm.weight, self.norm.bias, training=True)
    return F.max_pool2d(F.relu(h), 2)


NORM_BLOCK_WRONG = [
    (
        block_variant(lambda self, x: F.max_pool2d(self.norm(F.relu(self.conv(x))), 2)),
        "after the ReLU",
    ),
    (block_variant(lambda self, x: F.relu(self.norm(self.conv(x)))), "returns [6, 8, 9, 9]"),
    (block_variant(lambda self, x: F.max_pool2d(self.norm(self.conv(x)), 2)), "differs"),
    (block_variant(batch_stats_forward), "batch's statistics"),
    (block_variant(lambda self, x: None), "Not answered"),
    (block_variant(BlockIdentity.forward, __init__=always_norm_init), "batch_norm=False"),
    (
        type(
            "NormConvBlock", (nn.Module,), {"__init__": lambda self, i, o: nn.Module.__init__(self)}
        ),
        "raised TypeError",
    ),
]


# 05 · warm-up then step


def warmup_sequential(optimizer):
    warmup = optim.lr_scheduler.LinearLR(optimizer, start_factor=0.25, total_iters=3)
    step = optim.lr_scheduler.StepLR(optimizer, step_size=6, gamma=0.1)
    return optim.lr_scheduler.SequentialLR(optimizer, [warmup, step], milestones=[3])


def warmup_lambda(optimizer):
    return optim.lr_scheduler.LambdaLR(
        optimizer, lambda i: (i + 1) / 4 if i < 4 else 0.1 ** ((i - 3) // 6)
    )


def warmup_multistep(optimizer):
    warmup = optim.lr_scheduler.LinearLR(optimizer, 0.25, 1.0, total_iters=3)
    steps = optim.lr_scheduler.MultiStepLR(optimizer, milestones=[6, 12, 18, 24], gamma=0.1)
    return optim.lr_scheduler.SequentialLR(optimizer, [warmup, steps], milestones=[3])


# 05 · the training loop: optimizer.step() per batch, scheduler.step() once per epoch


def loop_variant(zero_grad=True, per_batch=False, before=False, step=True, record_after=False):
    """The loop of the exercise, or one of the lesson's mistakes."""

    def train_epochs(model, optimizer, scheduler, loader, epochs):
        rates = []
        for _ in range(epochs):
            if before and step:
                scheduler.step()
            if not record_after:
                rates.append(optimizer.param_groups[0]["lr"])
            model.train()
            for images, labels in loader:
                if zero_grad:
                    optimizer.zero_grad()
                F.nll_loss(model(images), labels).backward()
                optimizer.step()
                if per_batch and step:
                    scheduler.step()
            if step and not before and not per_batch:
                scheduler.step()
            if record_after:
                rates.append(optimizer.param_groups[0]["lr"])
        return rates

    return train_epochs


def loop_with_train(model, optimizer, scheduler, loader, epochs):
    from lesson_utils.training import train

    rates = []
    for epoch in range(1, epochs + 1):
        rates.append(scheduler.get_last_lr()[0])
        train(model, "cpu", loader, optimizer, epoch, log_interval=0)
        scheduler.step()
    return rates


def loop_cross_entropy(model, optimizer, scheduler, loader, epochs):
    rates = torch.empty(epochs)
    for epoch in range(epochs):
        rates[epoch] = optimizer.param_groups[0]["lr"]
        for x, y in loader:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()  # of log-probabilities: the same loss
            optimizer.step()
        scheduler.step()
    return rates


def loop_summed_loss(model, optimizer, scheduler, loader, epochs):
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        for x, y in loader:
            optimizer.zero_grad()
            F.nll_loss(model(x), y, reduction="sum").backward()
            optimizer.step()
        scheduler.step()
    return rates


TRAIN_EPOCHS_WRONG = [
    (loop_variant(per_batch=True), "once per batch"),
    (loop_variant(before=True), "before each epoch's training"),
    (loop_variant(zero_grad=False), "gradients add up"),
    (loop_variant(step=False), "never stepped"),
    (lambda m, o, s, ld, e: (loop_variant()(m, o, s, ld, e), None)[1], "returned None"),
    (loop_variant(record_after=True), "after the scheduler stepped"),
    (loop_summed_loss, "weights differ"),
    (lambda m, o, s, ld, e: loop_variant()(m, o, s, ld, e - 1), "stepped 12 times"),
    (lambda m, o, s, ld, e: [0.1] * e, "never ran"),
    (lambda m, o, s, ld, e: 1 / 0, "raised ZeroDivisionError"),
]

# 06 · transforms, judged by what they do

MEAN, STD = nb06_augmentation.CIFAR10_MEAN, nb06_augmentation.CIFAR10_STD


def pipeline(*steps, normalize=(MEAN, STD)):
    return transforms.Compose(
        list(steps) + [transforms.ToTensor(), transforms.Normalize(*normalize)]
    )


TEST = pipeline()
FLIP, CROP = transforms.RandomHorizontalFlip(), transforms.RandomCrop(32, padding=2)
V2_TEST = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(MEAN, STD)])
TRANSFORM_RIGHT = [
    (pipeline(FLIP, CROP), TEST),
    (pipeline(CROP, FLIP), TEST),
    (
        transforms.Compose([CROP, transforms.ToTensor(), FLIP, transforms.Normalize(MEAN, STD)]),
        TEST,
    ),
    (pipeline(FLIP, transforms.RandomCrop(32, padding=(2, 2, 2, 2))), TEST),
    (pipeline(transforms.RandomCrop(32, padding=(2, 2)), FLIP), TEST),
    (pipeline(FLIP, transforms.RandomCrop(32, padding=2, padding_mode="reflect")), TEST),
    (
        v2.Compose(
            [
                v2.RandomHorizontalFlip(),
                v2.RandomCrop(32, padding=2),
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
            ]
        ),
        V2_TEST,
    ),
    (
        v2.Compose(
            [
                v2.ToImage(),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(MEAN, STD),
                v2.RandomCrop(32, padding=[2, 2, 2, 2]),
                v2.RandomHorizontalFlip(p=0.5),
            ]
        ),
        TEST,
    ),
]
TRANSFORM_WRONG = [
    ((pipeline(transforms.RandomHorizontalFlip(p=1.0), CROP), TEST), "200 of 200"),
    ((pipeline(CROP), TEST), "0 of 200"),
    ((pipeline(FLIP, transforms.RandomCrop(32)), TEST), "never moved"),
    ((pipeline(FLIP, transforms.CenterCrop(32)), TEST), "never moved"),
    ((pipeline(FLIP, transforms.RandomCrop(32, padding=4)), TEST), "more than 2 pixels"),
    ((pipeline(FLIP, transforms.RandomCrop(32, padding=1)), TEST), "at most 1 pixel"),
    ((pipeline(FLIP, CROP), pipeline(FLIP)), "it augments"),
    ((pipeline(FLIP, CROP), pipeline(FLIP, CROP)), "it augments"),
    ((pipeline(FLIP, CROP), transforms.ToTensor()), "does not normalize"),
    ((pipeline(FLIP, CROP), pipeline(normalize=((0.5,) * 3, (0.5,) * 3))), "0.5 and 0.5"),
    ((pipeline(FLIP, CROP, normalize=((0.5,) * 3, (0.5,) * 3)), TEST), "0.5 and 0.5"),
    ((pipeline(FLIP, CROP, transforms.ColorJitter(brightness=0.3)), TEST), "another way"),
    ((transforms.Compose([FLIP, CROP]), TEST), "not a tensor"),
    ((pipeline(transforms.RandomHorizontalFlip(p=0.1), CROP), TEST), "of 200 draws"),
    ((pipeline(FLIP, CROP), pipeline(transforms.RandomHorizontalFlip(p=1.0))), "moves or flips"),
    ((pipeline(FLIP, CROP), None), "Not answered"),
]


# 07 · freezing all but one block


def only_block_set_trainable(model, block):
    set_trainable(model, False)
    for index in vgg16_conv_blocks(model)[block - 1]:
        set_trainable(model.features[index], True)
    set_trainable(model.classifier[6], True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def only_block_by_name(model, block):
    indices = {str(i) for i in vgg16_conv_blocks(model)[block - 1]}
    count = 0
    for name, parameter in model.named_parameters():
        part, index = name.split(".")[:2]
        parameter.requires_grad = (part == "features" and index in indices) or name.startswith(
            "classifier.6."
        )
        count += parameter.numel() if parameter.requires_grad else 0
    return count


def only_block_requires_grad(model, block):
    model.requires_grad_(False)
    blocks = vgg16_conv_blocks(model)
    for index in blocks[block - 1]:
        model.features[index].requires_grad_(True)
    model.classifier[-1].requires_grad_(True)
    return torch.tensor(sum(p.numel() for p in model.parameters() if p.requires_grad))


def only_block_variant(change):
    def answer(model, block):
        only_block_set_trainable(model, block)
        return change(model, block)

    return answer


def zero_based(model, block):
    return only_block_set_trainable(model, block + 1 if block < 5 else block - 1)


def no_freeze_first(model, block):
    for index in vgg16_conv_blocks(model)[block - 1]:
        set_trainable(model.features[index], True)
    return 0


def head_frozen(model, block):
    only_block_set_trainable(model, block)
    set_trainable(model.classifier[6], False)
    return 0


TRAIN_ONLY_WRONG = [
    (zero_based, "another block"),
    (no_freeze_first, "should be frozen"),
    (head_frozen, "new head is frozen"),
    (only_block_variant(lambda m, b: sum(p.numel() for p in m.parameters())), "frozen ones too"),
    (only_block_variant(lambda m, b: sum(p.requires_grad for p in m.parameters())), "tensors"),
    (only_block_variant(lambda m, b: None), "Not answered"),
    (only_block_variant(lambda m, b: 12), "not the number"),
    (lambda m, b: setattr(m.classifier, "6", nn.Linear(4096, 5)), "replaced"),
]


CODE_CHECKS = {
    "check_in_features_function": (
        [in_features_loop, in_features_formula, in_features_by_running, in_features_numpy],
        [
            (lambda s, n: (s / 2**n) ** 2 * 32 * 2 ** (n - 1), "fractions"),
            (lambda s, n: (s // 2**n) ** 2 * 64, "64 channels"),
            (lambda s, n: (s // 2**n) ** 2 * 32 * 2**n, "too many"),
            (lambda s, n: math.ceil(s / 2**n) ** 2 * 32 * 2 ** (n - 1), "rounds the side up"),
            (lambda s, n: (s // 2**n) * 32 * 2 ** (n - 1), "side once"),
            (lambda s, n: 4096, "not what PyTorch gives"),
            (lambda s, n: None, "Not answered"),
            (lambda s: s, "raised TypeError"),
            (lambda s, n: "4096", "not a number"),
        ],
    ),
    "check_topk_accuracy": (
        [topk_loop, topk_tensor, topk_argsort],
        [
            (topk_train_mode, "training mode"),
            (topk_batch_means, "batches' accuracies"),
            (topk_with_grad, "gradients on"),
            (lambda m, d, ld, k: topk_loop(m, d, ld, 1), "k is left out"),
            (lambda m, d, ld, k: topk_loop(m, d, ld, k) / 100, "fraction"),
            (lambda m, d, ld, k: topk_loop(m, d, ld, k) * len(ld.dataset) / 100, "count of images"),
            (lambda m, d, ld, k: topk_loop(m, d, [next(iter(ld))], k), "saw 5 images"),
            (lambda m, d, ld, k: None, "Not answered"),
            (lambda m, d, ld, k: 50.0, "never ran the model"),
            (lambda m, d, ld, k: (topk_loop(m, d, ld, k), 50.0)[1], "not the percent"),
        ],
    ),
    "check_dropout_module": (
        [DropoutRand, DropoutBernoulli, DropoutWhere],
        DROPOUT_WRONG
        + [
            (fixed_mask_dropout(), "same values at every call"),
            (detached_dropout(), "gradients do not flow"),
        ],
    ),
    "check_norm_conv_block": ([BlockIdentity, BlockSequential, BlockPoolFirst], NORM_BLOCK_WRONG),
    "check_warmup_scheduler": (
        [warmup_sequential, warmup_lambda, warmup_multistep],
        [
            (lambda o: optim.lr_scheduler.StepLR(o, step_size=6, gamma=0.1), "epoch 1 uses"),
            (
                lambda o: optim.lr_scheduler.LambdaLR(
                    o, lambda i: i / 4 if i < 4 else 0.1 ** ((i - 4) // 6)
                ),
                "one epoch late",
            ),
            (
                lambda o: optim.lr_scheduler.LambdaLR(o, lambda i: 1e-3 * min(1, (i + 1) / 4)),
                "epoch 1 uses",
            ),
            (
                lambda o: optim.lr_scheduler.StepLR(torch.optim.SGD([torch.zeros(1)], lr=1), 2),
                "never changes",
            ),
            (lambda o: None, "Not answered"),
            (lambda o: [1, 2], "raised AttributeError"),
        ],
    ),
    "check_train_epochs": (
        [loop_variant(), loop_with_train, loop_cross_entropy],
        TRAIN_EPOCHS_WRONG,
    ),
    "check_train_only_block": (
        [only_block_set_trainable, only_block_by_name, only_block_requires_grad],
        TRAIN_ONLY_WRONG,
    ),
}

NUMBER_CHECKS = {  # the right answer, other ways to type it, and wrong answers with their cause
    "check_view_shape": (
        [128, 2560],
        [
            (128, 2560),
            torch.Size([128, 2560]),
            "128 x 2560",
            np.array([128, 2560]),
            [128.0, 2560.0],
        ],
        [
            ([80, 4096], "x.shape[0]"),
            ([128, 4096], "full batch"),
            ([64, 1024], "batches of 64"),
            ([128, 512], "16 images"),
            ([128, 2560, 1], "not two"),
            ([2560, 128], "is not it"),
        ],
    ),
    "check_optimizer_steps": (
        11730,
        ["11,730", 11730.0, torch.tensor(11730), np.int64(11730), "11_730"],
        [
            (11700, "last, smaller"),
            (391, "one epoch"),
            (1_500_000, "counts images"),
            (23460, "batches of 64"),
            (11731, "is not it"),
        ],
    ),
    "check_dropout_value": (
        3.75,
        ["3.75", 15 / 4, "15/4", torch.tensor(3.75)],
        [
            (3, "scaled"),
            (2.4, "keep probability"),
            (15, "divides by p"),
            (0.6, "multiplies by p"),
            (1.25, "the factor"),
        ],
    ),
    "check_norm_block_parameters": (
        74112,
        ["74,112", 74112.0, np.float32(74112)],
        [
            (73856, "BatchNorm2d learns"),
            (74368, "buffers"),
            (73984, "one parameter per channel short"),
            (73728, "weights only"),
            (74000, "is not it"),
        ],
    ),
    "check_exponential_lr": (
        1e-3 * 0.9**5,
        ["5.9049e-4", 0.00059, "0.000590", 5.905e-4],
        [
            (1e-3 * 0.9**6, "once too often"),
            (1e-3 * 0.9**4, "once too few"),
            (5e-4, "subtracts"),
            (1e-3, "starting rate"),
            (6e-4, "is not it"),
        ],
    ),
    "check_unchanged_probability": (
        1 / 98,
        ["1/98", 0.0102, "0.010204", 0.5 / 49],
        [
            (1 / 49, "leaves out the flip"),
            (1 / 14, "one direction"),
            (1 / 72, "6 offsets"),
            (1 / 162, "padding=4"),
            (0.5, "flip alone"),
            (1 / 51, "multiply"),
        ],
    ),
    "check_head_parameters": (
        409_700,
        ["409,700", 409700.0, 4096 * 100 + 100],
        [
            (409_600, "weights only"),
            (20_485, "5-class"),
            (40_970, "10-class"),
            (4_097_000, "ImageNet"),
            (409_800, "is not it"),
        ],
    ),
}


def test_every_check_has_property_tests():
    checks = {name for name in dir(ex) if name.startswith("check_")}
    assert checks == set(CODE_CHECKS) | set(NUMBER_CHECKS) | {"check_train_transform"}


@pytest.mark.parametrize("name", sorted(NUMBER_CHECKS))
def test_number_checks_accept_the_answer_however_typed_and_explain_mistakes(name):
    check = getattr(ex, name)
    answer, typed, wrong = NUMBER_CHECKS[name]
    assert len(typed) >= 3 and len(wrong) >= 5
    for right in [answer] + typed:
        feedback = check(right)
        assert feedback and feedback.message.startswith("Correct."), (right, feedback.message)
    for value, cause in wrong:
        feedback = check(value)
        assert not feedback and "Hint:" in feedback.message and cause in feedback.message, (
            value,
            feedback.message,
        )
        if not isinstance(answer, list):
            assert not shows_answer(feedback.message, answer), feedback.message
    assert "Not answered" in check(None).message


@pytest.mark.parametrize("name", sorted(CODE_CHECKS))
def test_code_checks_accept_distinct_right_answers_and_explain_wrong_ones(name):
    check = getattr(ex, name)
    rights, wrongs = CODE_CHECKS[name]
    assert len(rights) >= 3 and len(wrongs) >= 5
    for right in rights:
        feedback = check(right)
        assert feedback and feedback.message.startswith("Correct."), feedback.message
    for answer, cause in wrongs:
        feedback = check(answer)
        assert not feedback, cause
        assert cause in feedback.message, (cause, feedback.message)
        assert "Hint:" in feedback.message or feedback.message.startswith("Not answered")


def test_train_epochs_feedback_never_shows_the_loop():
    for answer, _ in TRAIN_EPOCHS_WRONG:
        message = ex.check_train_epochs(answer).message
        for code in ("zero_grad(", "backward(", "scheduler.step()", "for ", "param_groups"):
            assert code not in message, (code, message)


def test_in_features_feedback_never_shows_what_pytorch_gives():
    for answer, _ in CODE_CHECKS["check_in_features_function"][1]:
        message = ex.check_in_features_function(answer).message
        case = re.search(r"fc1_in_features\((\d+), (\d+)\)", message)
        if case:  # the failing case is named; its right value is not
            assert not shows_answer(message, nb01_shapes._fc1_in_features(*map(int, case.groups())))


def test_topk_feedback_never_shows_the_right_percent():
    _, _, _, hits = nb02_training._probe_data()
    for answer, _ in CODE_CHECKS["check_topk_accuracy"][1]:
        message = ex.check_topk_accuracy(answer).message
        case = re.search(r"k=(\d+)\)", message)
        if case:  # the failing k is named; its right percent is not
            assert not shows_answer(message, 100 * hits[int(case.group(1))].mean().item())


def test_transform_check_judges_by_effect():
    for train, test in TRANSFORM_RIGHT:
        feedback = ex.check_train_transform(train, test)
        assert feedback and feedback.message.startswith("Correct."), (train, feedback.message)
    for (train, test), cause in TRANSFORM_WRONG:
        feedback = ex.check_train_transform(train, test)
        assert not feedback and cause in feedback.message, (train, test, feedback.message)


def raises(*args, **kwargs):
    raise RuntimeError("boom")


class RaisingModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise ValueError("cannot build")


class BadRepr:
    def __repr__(self):
        raise RuntimeError("no repr")


JUNK = {
    "None": None,
    "empty str": "",
    "str": "four thousand",
    "huge int": 10**400,
    "huger int": 10**5000,
    "nan": float("nan"),
    "inf": float("inf"),
    "bool": True,
    "list": [1, 2, 3],
    "dict": {"a": 1},
    "tuple of str": ("a", "b"),
    "tensor": torch.randn(3),
    "function that raises": raises,
    "module object": nn.Linear(2, 2),
    "module class": nn.Linear,
    "module that raises": RaisingModule,
    "class": int,
    "bad repr": BadRepr(),
    "returns huge": lambda *a, **k: 10**400,
    "returns nan": lambda *a, **k: float("nan"),
    "returns str": lambda *a, **k: "abc",
    "returns list": lambda *a, **k: [1, 2],
    "generator": (i for i in range(3)),
    "builtin": print,
}

ALL_CHECKS = sorted(name for name in dir(ex) if name.startswith("check_"))


@pytest.mark.parametrize("name", ALL_CHECKS)
def test_checks_answer_junk_with_feedback_and_never_raise(name):
    check = getattr(ex, name)
    assert len(JUNK) >= 8
    calls = [(junk,) for junk in JUNK.values()]
    if name == "check_train_transform":
        calls = [(junk, TEST) for junk in JUNK.values()] + [
            (TRANSFORM_RIGHT[0][0], junk) for junk in JUNK.values()
        ]
    for args in calls:
        feedback = check(*args)
        assert isinstance(feedback, ex.Feedback) and not feedback.correct, args
        assert feedback.message.startswith(("Not quite:", "Not answered")), feedback.message
        assert "Hint:" in feedback.message or feedback.message.startswith("Not answered")
        assert "could not use" not in feedback.message, feedback.message  # not the safety net
        assert max(map(len, feedback.message.splitlines())) < 400


@pytest.mark.parametrize("name", ALL_CHECKS)
def test_checks_leave_the_random_state_alone(name):
    check = getattr(ex, name)
    if name == "check_train_transform":
        answer = TRANSFORM_RIGHT[0]
    else:
        answer = (CODE_CHECKS[name][0][0] if name in CODE_CHECKS else NUMBER_CHECKS[name][0],)
    torch.manual_seed(123)
    random.seed(123)
    np.random.seed(123)
    states = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    assert check(*answer)
    assert torch.equal(torch.get_rng_state(), states[0]) and random.getstate() == states[1]
    assert (np.random.get_state()[1] == states[2]).all()


def test_feedback_shows_its_message_in_a_notebook():
    feedback = ex.check_head_parameters(409_600)
    assert repr(feedback) == feedback.message and feedback.message.startswith("Not quite")


def test_the_notebooks_empty_templates_say_not_answered():
    class NormConvBlock(nn.Module):
        def __init__(self, in_channels, out_channels, batch_norm=False):
            super().__init__()

        def forward(self, x):
            return None

    class MyDropout(nn.Module):
        def __init__(self, p):
            super().__init__()
            self.p = p

        def forward(self, x):
            return None

    templates = {
        "check_in_features_function": lambda image_size, n_blocks: None,
        "check_topk_accuracy": lambda model, device, loader, k: None,
        "check_dropout_module": MyDropout,
        "check_norm_conv_block": NormConvBlock,
        "check_warmup_scheduler": lambda optimizer: None,
        "check_train_epochs": lambda model, optimizer, scheduler, loader, epochs: None,
        "check_train_only_block": lambda model, block: None,
    }
    for name, template in templates.items():
        assert getattr(ex, name)(template).message.startswith("Not answered yet"), name
    assert ex.check_train_transform(None, None).message.startswith("Not answered yet")


@pytest.mark.parametrize(
    "check, answer",
    [
        ("check_optimizer_steps", "11,730"),
        ("check_optimizer_steps", "11 730"),
        ("check_optimizer_steps", "11_730"),
        ("check_dropout_value", "3,75"),
        ("check_dropout_value", "3.75"),
        ("check_unchanged_probability", "1.02%"),
        ("check_unchanged_probability", "1/98"),
    ],
)
def test_ordinary_spellings_of_a_right_number_are_right(check, answer):
    feedback = getattr(ex, check)(answer)
    assert feedback and feedback.message.startswith("Correct."), feedback.message


@pytest.mark.parametrize(
    "check, answer",
    [("check_optimizer_steps", "11730.4"), ("check_optimizer_steps", 11730.4)],
)
def test_a_count_must_be_a_whole_number(check, answer):
    feedback = getattr(ex, check)(answer)
    assert not feedback and "not a whole number" in feedback.message


def test_a_flip_of_another_probability_is_wrong():
    from torchvision import transforms

    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    normalize = [transforms.ToTensor(), transforms.Normalize(mean, std)]
    train = transforms.Compose(
        [transforms.RandomHorizontalFlip(p=0.45), transforms.RandomCrop(32, padding=2), *normalize]
    )
    feedback = ex.check_train_transform(train, transforms.Compose(normalize))
    assert not feedback and "probability 0.45" in feedback.message


def test_a_function_that_never_returns_gets_an_answer_in_time(monkeypatch):
    import time

    from lesson_utils.exercises import core

    monkeypatch.setattr(core, "TIME_LIMIT_S", 1)

    def fc1_in_features(image_size, n_blocks):
        while True:
            pass

    start = time.perf_counter()
    feedback = ex.check_in_features_function(fc1_in_features)
    assert time.perf_counter() - start < 5
    assert not feedback and "did not return within 1 s" in feedback.message
    assert "Kernel > Interrupt" in feedback.message


def test_a_norm_block_with_groups_or_circular_padding_is_wrong():
    grouped = lambda i, o: dict(groups=math.gcd(i, o))  # grouped wherever the channels allow
    circular = lambda i, o: dict(padding_mode="circular")
    for options in (grouped, circular):

        class NormConvBlock(nn.Module):
            def __init__(self, in_channels, out_channels, batch_norm=False):
                super().__init__()
                more = options(in_channels, out_channels)
                self.conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, **more)
                self.norm = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

            def forward(self, x):
                return F.max_pool2d(F.relu(self.norm(self.conv(x))), 2)

        feedback = ex.check_norm_conv_block(NormConvBlock)
        assert not feedback and "holds Conv2d" in feedback.message, (options, feedback.message)


def test_train_only_block_that_resets_or_replaces_the_block_is_wrong():
    def right(model, block):
        for p in model.parameters():
            p.requires_grad = False
        for i in vgg16_conv_blocks(model)[block - 1]:
            set_trainable(model.features[i], True)
        set_trainable(model.classifier[6], True)
        return sum(p.numel() for p in model.parameters() if p.requires_grad)

    def resets(model, block):
        for i in vgg16_conv_blocks(model)[block - 1]:
            if hasattr(model.features[i], "reset_parameters"):
                model.features[i].reset_parameters()
        return right(model, block)

    def replaces(model, block):
        i = vgg16_conv_blocks(model)[block - 1][0]
        old = model.features[i]
        model.features[i] = nn.Conv2d(old.in_channels, old.out_channels, 3, padding=1)
        return right(model, block)

    assert ex.check_train_only_block(right)
    assert "changed the values" in ex.check_train_only_block(resets).message
    assert "replaced layers" in ex.check_train_only_block(replaces).message
