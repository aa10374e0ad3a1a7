"""Plots for the lesson: learning curves from fit's history, and grids of images."""
import matplotlib.pyplot as plt
import numpy as np


def plot_loss_curves(histories, title=None):
    """Loss and accuracy per epoch. `histories` is one history dict or {label: history}."""
    if "epoch" in histories:
        histories = {"": histories}
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for i, (label, h) in enumerate(histories.items()):
        color = f"C{i}"
        prefix = f"{label} " if label else ""
        for ax, metric in ((ax_loss, "loss"), (ax_acc, "acc")):
            ax.plot(h["epoch"], h[f"train_{metric}"], "--", color=color,
                    label=f"{prefix}train (20 batches)")
            ax.plot(h["epoch"], h[f"test_{metric}"], "-", color=color, label=f"{prefix}test")
    ax_loss.set(xlabel="epoch", ylabel="average loss (NLL)", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def unnormalize(images):
    """Undo Normalize((0.5,)*3, (0.5,)*3): [-1, 1] back to [0, 1], channels last for imshow."""
    images = images.detach().cpu()
    return (images * 0.5 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def show_images(images, labels=None, classes=None, ncols=8, title=None):
    """A grid of images (a normalized [N, 3, H, W] tensor, or a list of PIL images/arrays)."""
    if hasattr(images, "permute"):
        images = unnormalize(images)
    n = len(images)
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
