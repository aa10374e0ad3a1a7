"""Plots for the lesson: learning curves from fit's history, grids of images, the figures of the
networks and schedules, and the plots of analysis.py's results (confusion matrix, per-class
accuracy, mistakes, filters, feature maps)."""

import random

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..data import MEAN, STD
from ..models import ConvNet, trace_shapes
from .checks import check_bool, check_history, check_int, check_matrix, check_names, check_tensor


def plot_loss_curves(histories, title=None, train_label="train (20 batches)"):
    """Loss and accuracy per epoch: training dashed, validation solid (the curves a choice is
    made on). The test set is not drawn when there is validation: fit reads it only at the
    reported epochs (without validation, those readings are drawn as dots). `histories` is one
    history dict or {label: history}; a label may also hold a list of histories (one per seed):
    its curves are then the mean over the seeds, in a band from their min to their max. One
    legend, outside the axes, so that no curve is hidden.

    train_label names the dashed training curves; a history's own "train_eval" string (e.g.
    "train (100 images)") wins over it, for histories evaluated on another part of the training set.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, runs) in enumerate(_runs_per_label(histories).items()):
        h = runs[0]
        color = f"C{i}"
        prefix = f"{label} " if label else ""
        seeds = f" (mean of {len(runs)} seeds)" if len(runs) > 1 else ""
        h_train_label = h["train_eval"] if isinstance(h.get("train_eval"), str) else train_label
        parts = [("train", "--", h_train_label)]
        parts += [("val", "-", "validation")] if h.get("val_acc") else [("test", "o", "test")]
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            for part, style, name in parts:
                values = np.array([r[f"{part}_{metric}"] for r in runs], dtype=float)
                ax.plot(
                    h["epoch"],
                    values.mean(axis=0),
                    style,
                    color=color,
                    label=f"{prefix}{name}{seeds}",
                )
                if len(runs) > 1 and style != "o":
                    ax.fill_between(
                        h["epoch"],
                        values.min(axis=0),
                        values.max(axis=0),
                        color=color,
                        alpha=0.15,
                        linewidth=0,
                    )
    ax_loss.set(xlabel="epoch", ylabel="average loss (NLL)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    handles, labels = ax_acc.get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


def _runs_per_label(histories):
    """plot_loss_curves's argument as {label: [history, ...]}, checked."""
    if isinstance(histories, dict) and "epoch" in histories:
        histories = {"": histories}
    if not isinstance(histories, dict) or not histories:
        raise TypeError(
            f"histories must be a history from fit or a non-empty dict {{label: "
            f"history or list of histories}}, got {histories!r:.80}"
        )
    per_label = {}
    for label, runs in histories.items():
        runs = list(runs) if isinstance(runs, (list, tuple)) else [runs]
        if not runs:
            raise ValueError(f"histories[{label!r}] is an empty list: give one history per seed")
        for run in runs:
            check_history(f"histories[{label!r}]", run)
        if any(run["epoch"] != runs[0]["epoch"] for run in runs):
            raise ValueError(
                f"histories[{label!r}]: the runs of one label must cover the same epochs"
            )
        per_label[label] = runs
    return per_label


def unnormalize(images):
    """Undo Normalize(MEAN, STD): [-1, 1] back to [0, 1], channels last for imshow."""
    images = images.detach().cpu()
    mean, std = torch.tensor(MEAN).view(3, 1, 1), torch.tensor(STD).view(3, 1, 1)
    return (images * std + mean).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def show_images(images, labels=None, classes=None, ncols=8, title=None):
    """A grid of images (a normalized [N, 3, H, W] tensor, or a list of PIL images/arrays)."""
    check_int("ncols", ncols, 1)
    if hasattr(images, "permute"):
        images = unnormalize(check_tensor("images", images, 4, " ([N, 3, H, W])"))
    n = len(images)
    if labels is not None and len(labels) != n:
        raise ValueError(
            f"labels must give one label per image: {len(labels)} labels for {n} images"
        )
    if labels is not None and classes:
        check_names("classes", classes, max(int(label) for label in labels) + 1)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.6 * ncols, 1.8 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i])
            if labels is not None:
                label = int(labels[i])
                ax.set_title(classes[label] if classes else str(label), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_lr_schedules(schedules, title="learning rate per epoch"):
    """`schedules` maps a label to the list of learning rates of epochs 1, 2, ... (log scale)."""
    if not isinstance(schedules, dict) or not schedules:
        raise TypeError(
            f"schedules must be a non-empty dict {{label: learning rates per epoch}}, "
            f"got {schedules!r:.80}"
        )
    for label, rates in schedules.items():
        if not rates or not all(isinstance(r, (int, float)) and r > 0 for r in rates):
            raise ValueError(
                f"schedules[{label!r}] must be a non-empty list of positive "
                f"learning rates, got {rates!r:.80}"
            )
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for label, rates in schedules.items():
        ax.step(range(1, len(rates) + 1), rates, where="post", marker=".", label=label)
    ax.set(yscale="log", xlabel="epoch", ylabel="learning rate", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def augmentation_grid(image, augmentations, rows=3, cols=4, seed=0):
    """Apply a randomly chosen augmentation to `image` in each cell of a rows x cols grid."""
    check_int("rows", rows, 1)
    check_int("cols", cols, 1)
    if not augmentations or not all(callable(f) for f in dict(augmentations).values()):
        raise TypeError(
            "augmentations must be a non-empty dict {name: transform of an image}, "
            f"got {augmentations!r:.80}"
        )
    random.seed(seed)
    torch.manual_seed(seed)  # torchvision's random transforms draw from torch's generator
    augmentations = dict(augmentations)
    fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat:
        name = random.choice(list(augmentations))
        ax.imshow(augmentations[name](image))
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    fig.tight_layout()
    return fig


VGG16_LAYOUT = [
    ("conv block 1\n2 x conv 64", 224),
    ("conv block 2\n2 x conv 128", 112),
    ("conv block 3\n3 x conv 256", 56),
    ("conv block 4\n3 x conv 512", 28),
    ("conv block 5\n3 x conv 512", 14),
    ("fc 4096", None),
    ("fc 4096", None),
    ("fc 1000", None),
]


def draw_vgg16(frozen_blocks=0, freeze_classifier=False, new_head=None, title="VGG16"):
    """VGG16 as 8 boxes: 5 conv blocks (each ends in a 2x2 max-pool) and 3 linear layers.

    frozen_blocks: how many conv blocks, from the first, are frozen (grey);
    freeze_classifier: the two hidden linear layers frozen too; new_head: the class count of a
    replaced last layer (orange), or None for the original 1000-class layer.
    """
    if check_int("frozen_blocks", frozen_blocks, 0) > 5:
        raise ValueError(
            f"frozen_blocks must be 0 to 5 (VGG16 has 5 conv blocks), got {frozen_blocks}"
        )
    check_bool("freeze_classifier", freeze_classifier)
    if new_head is not None:
        check_int("new_head", new_head, 1)
    fig, ax = plt.subplots(figsize=(11, 2.8))
    for i, (label, side) in enumerate(VGG16_LAYOUT):
        frozen = i < frozen_blocks or (freeze_classifier and i in (5, 6))
        is_head = i == 7 and new_head is not None
        if is_head:
            label = f"new fc {new_head}"
        color = "#f4a259" if is_head else ("#c8c8c8" if frozen else "#8fb8de")
        height = 0.9 if side is None else 0.4 + 0.5 * side / 224
        ax.add_patch(plt.Rectangle((i * 1.3, -height / 2), 1.1, height, color=color, ec="black"))
        ax.text(i * 1.3 + 0.55, 0, label, ha="center", va="center", fontsize=8)
        status = "new, trained" if is_head else ("frozen" if frozen else "trained")
        ax.text(i * 1.3 + 0.55, -0.62, status, ha="center", va="top", fontsize=7)
        if side is not None:
            ax.text(i * 1.3 + 0.55, 0.55, f"{side}x{side}", ha="center", fontsize=7)
    ax.set(xlim=(-0.2, 10.4), ylim=(-0.9, 0.8), title=title)
    ax.axis("off")
    fig.tight_layout()
    return fig


def draw_shape_flow(steps=None, title="the lesson's ConvNet: 32 -> 16 -> 8"):
    """Boxes for each step of ConvNet.forward, sized by the feature map, labelled with the shape.

    steps: (name, shape) pairs as returned by models.trace_shapes (one image); by default those of
    the lesson's ConvNet.
    """
    if steps is not None and (
        not isinstance(steps, (list, tuple))
        or not all(isinstance(step, (tuple, list)) and len(step) == 2 for step in steps)
    ):
        raise TypeError(
            f"steps must be (name, shape) pairs as trace_shapes returns, or None; got {steps!r:.80}"
        )
    if steps is None:
        steps = [
            (n, s) for n, s in trace_shapes(ConvNet(), torch.zeros(1, 3, 32, 32)) if n != "relu"
        ]
    fig, ax = plt.subplots(figsize=(12, 3))
    for i, (name, shape) in enumerate(steps):
        side = shape[-1] if len(shape) == 4 else None
        height = 0.25 + 0.7 * side / 32 if side else 0.2
        color = "#8fb8de" if side else "#f4a259"
        ax.add_patch(plt.Rectangle((i * 1.25, -height / 2), 1.0, height, color=color, ec="black"))
        ax.text(i * 1.25 + 0.5, 0.62, name, ha="center", fontsize=8)
        ax.text(i * 1.25 + 0.5, -0.68, str(list(shape[1:])), ha="center", fontsize=8)
    ax.set(xlim=(-0.2, len(steps) * 1.25), ylim=(-0.8, 0.8), title=title)
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, classes, title=None, normalize=True):
    """A confusion matrix (rows = true class, columns = predicted), numbers in the cells.

    normalize=True shows each row as percentages of that class's images (rows with no images stay
    empty); False shows the raw counts.
    """
    counts = check_matrix("matrix", torch.as_tensor(matrix)).double()
    if len(classes) != len(counts):
        raise ValueError(
            f"classes must name the {len(counts)} rows of matrix, got {len(classes)} names"
        )
    check_bool("normalize", normalize)
    values = counts / counts.sum(dim=1, keepdim=True) * 100 if normalize else counts
    values = values.numpy()
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=100 if normalize else None)
    fig.colorbar(image, ax=ax, label="% of the true class" if normalize else "images")
    ticks = range(len(classes))
    ax.set_xticks(ticks, classes, rotation=45, ha="right")
    ax.set_yticks(ticks, classes)
    ax.set(
        xlabel="predicted class",
        ylabel="true class",
        title=title
        or (
            "confusion matrix (% of each true class)" if normalize else "confusion matrix (images)"
        ),
    )
    high = np.nanmax(values) if np.isfinite(values).any() else 0
    for (row, col), value in np.ndenumerate(values):
        if np.isfinite(value):
            ax.text(
                col,
                row,
                f"{value:.0f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.6 * high else "black",
            )
    fig.tight_layout()
    return fig


def plot_per_class_accuracy(accuracies, classes, chance=10.0, title=None):
    """Horizontal bars of the accuracy (%) of each class, a dashed line at the chance level.

    accuracies: one model's per-class accuracies, or {label: accuracies} to compare several models
    side by side (grouped bars). A nan accuracy (no images of that class) draws no bar.
    """
    if not isinstance(accuracies, dict):
        accuracies = {"": accuracies}
    for label, values in accuracies.items():
        if len(values) != len(classes):
            raise ValueError(
                f"accuracies{f'[{label!r}]' if label else ''} has {len(values)} "
                f"values for {len(classes)} classes"
            )
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(classes) * max(len(accuracies), 2) + 1))
    height = 0.8 / len(accuracies)
    positions = np.arange(len(classes))
    for i, (label, values) in enumerate(accuracies.items()):
        values = np.asarray(torch.as_tensor(values, dtype=torch.float64))
        ax.barh(
            positions + (i - (len(accuracies) - 1) / 2) * height,
            values,
            height,
            label=label or None,
            color=f"C{i}",
        )
    ax.axvline(chance, color="gray", linestyle="--", label=f"chance ({chance:g}%)")
    ax.set_yticks(positions, classes)
    ax.invert_yaxis()  # the first class on top
    ax.set(xlim=(0, 100), xlabel="accuracy (%)", title=title or "accuracy per class")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def show_misclassified(result, classes, ncols=8):
    """A grid of wrong predictions from analysis.misclassified, each titled
    "true / predicted (confidence %)", e.g. "cat / dog (87%)"."""
    check_int("ncols", ncols, 1)
    needs = ("images", "targets", "predictions", "confidences")
    if not isinstance(result, dict) or not all(key in result for key in needs):
        raise TypeError(
            f"result must be the dict that analysis.misclassified returns (with "
            f"{', '.join(needs)}), got {type(result).__name__}"
        )
    n = len(result["targets"])
    if n == 0:
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        ax.axis("off")
        return fig
    images = unnormalize(result["images"])
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(1.6 * ncols, 2.2 * nrows), squeeze=False, layout="constrained"
    )
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i])
            true, predicted = int(result["targets"][i]), int(result["predictions"][i])
            confidence = float(result["confidences"][i])
            ax.set_title(f"{classes[true]} /\n{classes[predicted]} ({confidence:.0%})", fontsize=8)
    fig.suptitle("true / predicted (confidence)", fontsize=9)
    return fig


def plot_filters(filters, ncols=8, title="conv1's 32 filters (3x3, RGB, each scaled to [0, 1])"):
    """The first layer's filters from analysis.first_layer_filters ([32, 3, 3, 3], channels last):
    a 4x8 grid of 3x3 colour patches, shown pixel by pixel (interpolation="nearest")."""
    check_int("ncols", ncols, 1)
    check_tensor("filters", filters, 4, " ([N, 3, 3, 3] channels last, from first_layer_filters)")
    filters = filters.numpy()
    nrows = int(np.ceil(len(filters) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.2 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(filters):
            ax.imshow(filters[i], interpolation="nearest")
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_feature_maps(maps, image=None, n=16, ncols=8):
    """The input image (a normalized [3, H, W] tensor, optional) and the first `n` channels of each
    layer's maps ({name: [C, H, W]} from analysis.feature_maps): one row group per layer, titled
    with the layer's name and shape. Bright = strong activation."""
    check_int("n", n, 1)
    check_int("ncols", ncols, 1)
    if not isinstance(maps, dict) or not maps:
        raise TypeError(
            f"maps must be the dict {{layer name: [C, H, W] tensor}} that "
            f"analysis.feature_maps returns, got {type(maps).__name__}"
        )
    for name, layer_maps in maps.items():
        check_tensor(f"maps[{name!r}]", layer_maps, 3, " ([C, H, W])")
    if image is not None:
        check_tensor("image", image, 3, " ([3, H, W], normalized)")
    groups = ([("input image", None)] if image is not None else []) + list(maps.items())
    rows = [1 if maps_ is None else int(np.ceil(min(n, len(maps_)) / ncols)) for _, maps_ in groups]
    fig = plt.figure(
        figsize=(1.4 * ncols, 1.55 * sum(rows) + 0.4 * len(groups)), layout="constrained"
    )
    for subfig, (name, layer_maps), nrows in zip(
        np.atleast_1d(fig.subfigures(len(groups), 1, height_ratios=rows)), groups, rows
    ):
        if layer_maps is None:
            ax = subfig.subplots()
            ax.imshow(unnormalize(image.unsqueeze(0))[0])
            ax.axis("off")
            subfig.suptitle(f"input image {list(image.shape)}", fontsize=9)
            continue
        shown = min(n, len(layer_maps))
        axes = subfig.subplots(nrows, ncols, squeeze=False)
        for i, ax in enumerate(axes.flat):
            ax.axis("off")
            if i < shown:
                ax.imshow(layer_maps[i].detach().cpu().numpy(), cmap="viridis")
                ax.set_title(f"channel {i}", fontsize=7)
        subfig.suptitle(f"{name} {list(layer_maps.shape)}: first {shown} channels", fontsize=9)
    return fig
