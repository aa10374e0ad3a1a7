import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lesson_utils.support.conv_figure import draw_convolution_and_pooling  # noqa: E402


def test_convolution_and_pooling_figure_draws_four_panels_and_closes():
    before = set(plt.get_fignums())
    fig = draw_convolution_and_pooling()
    assert len(fig.axes) == 4  # padded input, conv output, feature map, pooled map
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("input 5x5") and titles[1] == "conv output 5x5"
    assert titles[3].endswith("2x2")
    fig.canvas.draw()  # every artist renders
    plt.close(fig)
    assert set(plt.get_fignums()) == before
