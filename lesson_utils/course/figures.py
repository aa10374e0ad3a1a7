"""Draw every figure the course uses into figures/ (or another folder).

python -m lesson_utils.course.figures [--out FOLDER]
"""

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no window
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import cbook  # noqa: E402
from PIL import Image  # noqa: E402

from ..support.checks import out_folder_arg
from ..data import lesson_augmentations  # noqa: E402
from ..paths import REPO_ROOT  # noqa: E402
from ..support.plots import augmentation_grid, draw_shape_flow, draw_vgg16  # noqa: E402

FIGURES = {
    "convnet_shapes": lambda: draw_shape_flow(),
    "vgg16": lambda: draw_vgg16(title="VGG16: 5 conv blocks and 3 linear layers"),
    "vgg16_frozen": lambda: draw_vgg16(5, True, title="VGG16 frozen"),
    "vgg16_new_head": lambda: draw_vgg16(
        5, True, new_head=5, title="VGG16 frozen, with a new head"
    ),
    "augmentation_grid": lambda: augmentation_grid(
        Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)).convert("RGB"),
        lesson_augmentations(400),
        rows=3,
        cols=4,
        seed=0,
    ),
}


def save_all(out_dir=REPO_ROOT / "figures"):
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw in FIGURES.items():
        fig = draw()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100, metadata={"Software": None})  # no version stamp: stable files
        plt.close(fig)
        paths.append(path)
    return paths


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=out_folder_arg, default=str(REPO_ROOT / "figures"))
    for path in save_all(parser.parse_args(argv).out):
        print(path)


if __name__ == "__main__":
    main()
