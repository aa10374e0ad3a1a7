"""A drawing of what conv1 and max_pool2d do: a 3x3 kernel sliding over a zero-padded input, and a
2x2 max-pooling with stride 2 (notebook 01). Plain matplotlib."""

import matplotlib.pyplot as plt
from matplotlib.patches import ConnectionPatch, Rectangle

# one example window per colour: (row, column) of its top-left cell in the padded input
_CONV_WINDOWS = ((0, 0, "#1f77b4"), (2, 3, "#d62728"))
_POOL_VALUES = (
    (1, 3, 2, 0),
    (5, 2, 1, 4),
    (0, 1, 7, 2),
    (3, 6, 1, 0),
)


def _grid(ax, rows, cols, title, height):
    """Empty cells of a rows x cols grid, row 0 at the top, each cell one unit wide; the axes show
    `height` units, the grid centred in them, so that every panel has cells of the same size."""
    for r in range(rows):
        for c in range(cols):
            ax.add_patch(Rectangle((c, rows - 1 - r), 1, 1, fc="white", ec="0.6", lw=0.8))
    bottom = -(height - rows) / 2 - 0.9
    ax.set(xlim=(-0.3, cols + 0.3), ylim=(bottom, bottom + height + 1.2), aspect="equal")
    ax.set_title(title, y=(rows - bottom + 0.2) / (height + 1.2))
    ax.axis("off")


def _caption(ax, text):
    """`text` centred under the panel, at the same height in every panel."""
    (left, right), (bottom, _) = ax.get_xlim(), ax.get_ylim()
    ax.text((left + right) / 2, bottom + 0.6, text, ha="center", va="top")


def _box(ax, rows, r, c, size, color, fill=False, lw=2.5):
    """A size x size square whose top-left cell is (r, c) in a grid of `rows` rows."""
    ax.add_patch(
        Rectangle(
            (c, rows - r - size),
            size,
            size,
            fc=color if fill else "none",
            alpha=0.25 if fill else 1,
            ec=color,
            lw=lw,
        )
    )
    if fill:  # the outline again, fully opaque
        _box(ax, rows, r, c, size, color, lw=lw)


def _arrow(fig, ax_from, xy_from, ax_to, xy_to, color):
    fig.add_artist(
        ConnectionPatch(
            xy_from,
            xy_to,
            "data",
            "data",
            axesA=ax_from,
            axesB=ax_to,
            color=color,
            arrowstyle="->",
            lw=1.5,
            connectionstyle="arc3,rad=-0.2",
        )
    )


def draw_convolution_and_pooling(size=5, padding=1, kernel=3):
    """Four panels: a size x size input with `padding` rings of zeros and a kernel x kernel
    window at two positions; the convolution's output (stride 1) with the cell each window gives;
    a 4x4 map with its 2x2 pooling windows (stride 2); the pooled 2x2 map, each cell the max of
    its window.

    Returns the figure (the caller shows or saves it, then closes it)."""
    padded = size + 2 * padding
    out = padded - kernel + 1  # stride 1
    fig, axes = plt.subplots(
        1, 4, figsize=(13, 3.6), gridspec_kw={"width_ratios": [padded + 0.6, out + 0.6, 4.6, 2.6]}
    )
    ax_in, ax_out, ax_pool, ax_max = axes

    _grid(ax_in, padded, padded, f"input {size}x{size}, padding={padding} (zeros)", padded)
    for r in range(padded):
        for c in range(padded):
            if min(r, c) < padding or max(r, c) >= padding + size:
                ax_in.add_patch(Rectangle((c, padded - 1 - r), 1, 1, fc="0.88", ec="0.6", lw=0.8))
                ax_in.text(c + 0.5, padded - 0.5 - r, "0", ha="center", va="center", color="0.45")
    _grid(ax_out, out, out, f"conv output {out}x{out}", padded)
    for r, c, color in _CONV_WINDOWS:
        _box(ax_in, padded, r, c, kernel, color, fill=True)
        _box(ax_out, out, r, c, 1, color, fill=True)
        _arrow(
            fig,
            ax_in,
            (c + kernel - 0.3, padded - r - 0.4),
            ax_out,
            (c + 0.5, out - r - 0.5),
            color,
        )
    _caption(ax_in, f"{kernel}x{kernel} kernel at two positions")
    _caption(ax_out, f"({size} + 2*{padding} - {kernel}) / 1 + 1 = {out} positions per side")

    rows = len(_POOL_VALUES)
    _grid(ax_pool, rows, rows, f"feature map {rows}x{rows}", padded)
    for r, line in enumerate(_POOL_VALUES):
        for c, value in enumerate(line):
            ax_pool.text(c + 0.5, rows - 0.5 - r, value, ha="center", va="center", fontsize=12)
    half = rows // 2
    _grid(ax_max, half, half, f"max_pool2d(2): {half}x{half}", padded)
    for r in range(half):
        for c in range(half):
            window = [_POOL_VALUES[2 * r + i][2 * c + j] for i in (0, 1) for j in (0, 1)]
            first = r == 0 and c == 0
            color = "#2ca02c" if first else "0.35"
            _box(ax_pool, rows, 2 * r, 2 * c, 2, color, fill=first, lw=2.5 if first else 1.2)
            if first:
                _box(ax_max, half, r, c, 1, color, fill=True)
            ax_max.text(
                c + 0.5,
                half - 0.5 - r,
                max(window),
                ha="center",
                va="center",
                fontsize=12,
                fontweight="bold" if first else "normal",
            )
    _arrow(fig, ax_pool, (1.9, rows - 0.4), ax_max, (0.1, half - 0.5), "#2ca02c")
    _caption(ax_pool, "2x2 windows, stride 2")
    first = [_POOL_VALUES[i][j] for i in (0, 1) for j in (0, 1)]
    label = f"max({', '.join(map(str, first))}) = {max(first)}"
    _caption(ax_max, label)
    fig.tight_layout()
    return fig
