import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from lesson_utils.analysis import (
    calibration,
    confusion_matrix,
    convnet_layers,
    feature_maps,
    first_layer_filters,
    input_window,
    misclassified,
    most_confused_pairs,
    per_class_accuracy,
    predict,
    receptive_field,
)
from lesson_utils.data import CLASSES, TensorLoader
from lesson_utils.support.cifar10 import make_generated_cifar
from lesson_utils.models import ConvNet, DropoutConvNet
from lesson_utils.support.plots import (
    plot_confusion_matrix,
    plot_feature_maps,
    plot_filters,
    plot_loss_curves,
    plot_per_class_accuracy,
    show_misclassified,
)

NAMES = ["a", "b", "c"]
# 3 classes; rows = true, columns = predicted
KNOWN = torch.tensor([[5, 3, 0], [1, 4, 0], [2, 0, 6]])


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def loader():
    return TensorLoader(make_generated_cifar(64), batch_size=16, shuffle=False)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ConvNet()


def test_confusion_matrix_of_known_predictions():
    targets = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 1, 0, 2, 0, 2])
    expected = torch.tensor([[1, 2, 0], [1, 1, 0], [1, 0, 2]])
    matrix = confusion_matrix(predictions, targets, n_classes=3)
    assert matrix.dtype == torch.long
    assert torch.equal(matrix, expected)


def test_per_class_accuracy_with_an_empty_class():
    matrix = torch.tensor(
        [
            [3, 1, 0],
            [0, 0, 0],  # no images of class 1
            [1, 1, 2],
        ]
    )
    acc = per_class_accuracy(matrix)
    assert acc[0].item() == pytest.approx(75.0)
    assert math.isnan(acc[1].item())
    assert acc[2].item() == pytest.approx(50.0)


def test_most_confused_pairs_directed():
    pairs = most_confused_pairs(KNOWN, NAMES, k=2)
    assert [p[:3] for p in pairs] == [("a", "b", 3), ("c", "a", 2)]
    assert pairs[0][3] == pytest.approx(100 * 3 / 8)
    assert pairs[1][3] == pytest.approx(100 * 2 / 8)
    # only 4 non-zero off-diagonal cells: asking for more returns those
    assert len(most_confused_pairs(KNOWN, NAMES, k=10)) == 3


def test_most_confused_pairs_symmetric():
    pairs = most_confused_pairs(KNOWN, NAMES, k=3, symmetric=True)
    # a<->b: 3 + 1 = 4; a<->c: 0 + 2 = 2; b<->c: 0
    assert [p[:3] for p in pairs] == [("a", "b", 4), ("a", "c", 2)]
    assert pairs[0][3] == pytest.approx(100 * 4 / (8 + 5))


def test_predict_over_the_whole_loader(model, loader):
    probs, predictions, targets = predict(model, loader, "cpu")
    assert probs.shape == (64, 10) and predictions.shape == targets.shape == (64,)
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(64, dtype=probs.dtype))
    assert torch.equal(predictions, probs.argmax(dim=1))
    assert torch.equal(targets, torch.tensor(make_generated_cifar(64).targets))
    assert model.training  # the model's mode is restored


def test_misclassified_returns_real_mistakes(model, loader):
    _, predictions, targets = predict(model, loader, "cpu")
    n_wrong = int((predictions != targets).sum())
    assert n_wrong > 5  # an untrained model: most answers are wrong
    result = misclassified(model, loader, "cpu", n=5)
    assert result["images"].shape == (5, 3, 32, 32)
    assert torch.all(result["predictions"] != result["targets"])
    assert torch.all((result["confidences"] > 0) & (result["confidences"] <= 1))
    # the first five mistakes in loader order, and their images are the loader's images
    expected = (predictions != targets).nonzero().flatten()[:5]
    assert torch.equal(result["indices"], expected)
    all_images = torch.cat([x for x, _ in loader])
    assert torch.equal(result["images"], all_images[expected])
    assert torch.equal(result["targets"], targets[expected])
    everything = misclassified(model, loader, "cpu", n=1000)
    assert len(everything["targets"]) == n_wrong


def _two_class(confidence, n, n_right):
    """n predictions of class 0 with probability `confidence`, of which the first n_right are
    right (target 0) and the others wrong (target 1)."""
    probs = torch.tensor([[confidence, 1 - confidence]]).repeat(n, 1)
    return probs, torch.tensor([0] * n_right + [1] * (n - n_right))


def test_calibration_of_a_calibrated_toy_case_is_zero():
    # 4 said at 0.75, 3 right; 20 said at 0.65, 13 right: each bin's accuracy is its confidence
    a, b = _two_class(0.75, 4, 3), _two_class(0.65, 20, 13)
    result = calibration(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]), bins=10)
    assert result["ece"] == pytest.approx(0, abs=1e-6)
    assert result["count"].tolist() == [0, 0, 0, 0, 0, 0, 20, 4, 0, 0]
    assert result["confidence"][7].item() == pytest.approx(0.75)
    assert result["accuracy"][6].item() == pytest.approx(0.65)
    empty = result["count"] == 0
    assert result["confidence"][empty].isnan().all() and result["accuracy"][empty].isnan().all()
    assert torch.allclose(result["edges"], torch.linspace(0, 1, 11, dtype=torch.float64))


def test_calibration_of_an_overconfident_toy_case():
    # 10 said at 0.95, half right (gap 0.45); 10 said at 0.75, half right (gap 0.25)
    a, b = _two_class(0.95, 10, 5), _two_class(0.75, 10, 5)
    result = calibration(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]))
    assert result["ece"] == pytest.approx(0.5 * 0.45 + 0.5 * 0.25, abs=1e-6)
    assert result["accuracy"][9].item() == 0.5 and result["accuracy"][7].item() == 0.5
    assert result["confidence"][9].item() == pytest.approx(0.95)
    # five bins of 0.2: the same two groups, now in bins 4 and 3
    coarse = calibration(torch.cat([a[0], b[0]]), torch.cat([a[1], b[1]]), bins=5)
    assert coarse["count"].tolist() == [0, 0, 0, 10, 10]
    assert coarse["ece"] == pytest.approx(result["ece"], abs=1e-6)


def test_calibration_matches_a_loop_over_the_bins():
    torch.manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 10), dim=1)
    targets = torch.randint(0, 10, (500,))
    result = calibration(probs, targets, bins=10)
    confidence, predictions = probs.max(dim=1)
    ece = 0.0
    for i in range(10):
        inside = (confidence > i / 10) & (confidence <= (i + 1) / 10)
        assert result["count"][i].item() == inside.sum().item()
        if inside.any():
            accuracy = (predictions[inside] == targets[inside]).float().mean().item()
            gap = abs(accuracy - confidence[inside].mean().item())
            ece += inside.float().mean().item() * gap
            assert result["accuracy"][i].item() == pytest.approx(accuracy)
    assert result["count"].sum().item() == 500
    assert result["ece"] == pytest.approx(ece, abs=1e-6)


def test_calibration_refuses_mismatched_inputs():
    with pytest.raises(ValueError, match="probs"):
        calibration(torch.rand(5, 10), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="probs"):
        calibration(torch.rand(10), torch.zeros(10, dtype=torch.long))


def test_first_layer_filters_shape_and_range(model):
    filters = first_layer_filters(model)
    assert filters.shape == (32, 3, 3, 3)
    assert filters.min() >= 0 and filters.max() <= 1
    # each filter on its own uses the full [0, 1] range
    assert torch.allclose(filters.amin(dim=(1, 2, 3)), torch.zeros(32))
    assert torch.allclose(filters.amax(dim=(1, 2, 3)), torch.ones(32))
    # channels last: filter 0, row 1, column 2, green = weight[0, green, 1, 2], scaled
    w = model.conv1.weight[0].detach()
    scaled = (w[1, 1, 2] - w.min()) / (w.max() - w.min())
    assert filters[0, 1, 2, 1].item() == pytest.approx(scaled.item(), abs=1e-6)


@pytest.mark.parametrize("net", [ConvNet, DropoutConvNet])
def test_feature_maps_shapes(net, loader):
    torch.manual_seed(0)
    model = net()
    image = next(iter(loader))[0][0]
    maps = feature_maps(model, image)
    assert maps["conv1"].shape == (32, 32, 32)
    assert maps["conv2"].shape == (64, 16, 16)
    assert maps["conv1"].min() >= 0  # after ReLU
    expected = F.relu(model.conv1(image.unsqueeze(0)))[0]
    torch.testing.assert_close(maps["conv1"], expected)
    assert model.training  # restored; and dropout was off: the same maps twice
    torch.testing.assert_close(feature_maps(model, image)["conv2"], maps["conv2"])


def test_convnet_layers_and_receptive_field(model):
    layers = convnet_layers(model)
    assert [(k, s, p) for _, k, s, p in layers] == [(3, 1, 1), (2, 2, 0), (3, 1, 1), (2, 2, 0)]
    rows = receptive_field(layers)
    assert [(r["size"], r["jump"]) for r in rows] == [(3, 1), (4, 2), (8, 2), (10, 4)]


def seen_pixels(model, i, j, pool=F.avg_pool2d, signed=False):
    """Input pixels with a nonzero gradient of the final 8x8 map's position (i, j): the pixels it
    sees. All weights positive, no bias and a positive input keep every ReLU open, and average
    pooling (same geometry as max pooling) passes the gradient to all four pixels."""
    x = torch.randn(1, 3, 32, 32) if signed else torch.rand(1, 3, 32, 32)
    x.requires_grad_()
    out = pool(F.relu(model.conv2(pool(F.relu(model.conv1(x)), 2))), 2)
    assert out.shape == (1, 64, 8, 8)
    out[0, :, i, j].sum().backward()  # all 64 channels see the same window
    return x.grad[0].abs().sum(dim=0) > 0  # [32, 32] mask


@pytest.fixture(scope="module")
def positive_model():
    model = ConvNet()
    with torch.no_grad():
        for conv in (model.conv1, model.conv2):
            conv.weight.uniform_(0.1, 1.0)
            conv.bias.zero_()
    return model


def window_of(mask):
    rows = mask.any(dim=1).nonzero().flatten()
    cols = mask.any(dim=0).nonzero().flatten()
    return rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1


def test_receptive_field_matches_the_gradient(positive_model):
    centre = seen_pixels(positive_model, 3, 3)
    r0, r1, c0, c1 = window_of(centre)
    assert (r1 - r0, c1 - c0) == (10, 10)  # the receptive field
    assert centre.sum().item() == 100  # a full square, nothing missing inside
    assert window_of(seen_pixels(positive_model, 3, 4))[2] - c0 == 4  # the jump
    last = receptive_field(convnet_layers(positive_model))[-1]
    assert (last["size"], last["jump"]) == (10, 4)


@pytest.mark.parametrize("position", [(0, 0), (7, 7), (0, 7), (3, 3), (4, 2)])
def test_input_window_matches_the_gradient(positive_model, position):
    layers = convnet_layers(positive_model)
    assert input_window(position, layers) == window_of(seen_pixels(positive_model, *position))


def test_input_window_corner_and_centre():
    layers = [("conv", 3, 1, 1), ("pool", 2, 2, 0), ("conv", 3, 1, 1), ("pool", 2, 2, 0)]
    assert input_window((0, 0), layers) == (0, 7, 0, 7)  # 3 of the 10 rows lie in the padding
    assert input_window((3, 3), layers) == (9, 19, 9, 19)
    assert input_window((7, 7), layers) == (25, 32, 25, 32)


def test_max_pooling_sees_no_pixel_outside_the_window(model):
    """With the real max-pooling and ReLUs some pixels get no gradient, but none outside."""
    seen = torch.zeros(32, 32, dtype=torch.bool)
    for _ in range(5):
        seen |= seen_pixels(model, 3, 3, pool=F.max_pool2d, signed=True)
    r0, r1, c0, c1 = input_window((3, 3), convnet_layers(model))
    outside = seen.clone()
    outside[r0:r1, c0:c1] = False
    assert seen.any() and not outside.any()


def test_plots_return_figures(model, loader):
    probs, predictions, targets = predict(model, loader, "cpu")
    matrix = confusion_matrix(predictions, targets)
    fig = plot_confusion_matrix(matrix, CLASSES)
    assert isinstance(fig, plt.Figure) and len(fig.axes) == 2  # matrix + colour bar
    assert fig.axes[0].get_ylabel() == "true class"
    assert fig.axes[0].get_xlabel() == "predicted class"
    assert len(fig.axes[0].texts) == 100

    acc = per_class_accuracy(matrix)
    fig = plot_per_class_accuracy({"a": acc, "b": acc.flip(0)}, CLASSES, title="t")
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 20
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert sorted(labels) == ["a", "b", "chance (10%)"]
    assert len(plot_per_class_accuracy(acc, CLASSES).axes[0].patches) == 10

    result = misclassified(model, loader, "cpu", n=10)
    fig = show_misclassified(result, CLASSES, ncols=4)
    assert len(fig.axes) == 12
    true, predicted = CLASSES[result["targets"][0]], CLASSES[result["predictions"][0]]
    title = fig.axes[0].get_title()
    assert title.startswith(f"{true} /\n{predicted} (") and title.endswith("%)")

    assert len(plot_filters(first_layer_filters(model)).axes) == 32

    image = next(iter(loader))[0][0]
    fig = plot_feature_maps(feature_maps(model, image), image=image, n=16)
    assert len(fig.axes) == 1 + 16 + 16
    assert len(plot_feature_maps(feature_maps(model, image), n=8).axes) == 16


def test_plot_loss_curves_train_label():
    history = {
        "epoch": [1, 2],
        "train_loss": [2.0, 1.5],
        "test_loss": [2.1, 1.7],
        "train_acc": [20, 40],
        "test_acc": [18, 35],
    }

    def labels(fig):
        assert not any(ax.get_legend() for ax in fig.axes)  # one legend, outside the axes
        (legend,) = fig.legends
        return [t.get_text() for t in legend.get_texts()]

    assert labels(plot_loss_curves(history)) == ["train (20 batches)", "test"]
    assert labels(plot_loss_curves(history, train_label="train (all)"))[0] == "train (all)"
    tagged = dict(history, train_eval="train (100 images)")
    assert labels(plot_loss_curves({"x": tagged, "y": history})) == [
        "x train (100 images)",
        "x test",
        "y train (20 batches)",
        "y test",
    ]


def test_plot_loss_curves_over_seeds_draws_the_mean_in_a_band():
    nan = float("nan")
    runs = [
        {
            "epoch": [1, 2],
            "train_loss": [2.0, 1.0],
            "val_loss": [2.0, 1.2],
            "test_loss": [nan, 1.3],
            "train_acc": [20, 40],
            "val_acc": [10, 30],
            "test_acc": [nan, 29],
        },
        {
            "epoch": [1, 2],
            "train_loss": [1.0, 0.5],
            "val_loss": [1.6, 1.0],
            "test_loss": [nan, 1.1],
            "train_acc": [30, 60],
            "val_acc": [20, 50],
            "test_acc": [nan, 48],
        },
    ]
    fig = plot_loss_curves({"x": runs})
    ax_loss, ax_acc = fig.axes
    labels = [line.get_label() for line in ax_acc.get_lines()]
    assert labels == ["x train (20 batches) (mean of 2 seeds)", "x validation (mean of 2 seeds)"]
    assert list(ax_acc.get_lines()[1].get_ydata()) == [15, 40]  # no test curve: validation's
    band = ax_acc.collections[-1].get_paths()[0].vertices[:, 1]  # min and max of val_acc
    assert {10, 20, 30, 50} <= set(band.tolist())
    assert len(ax_loss.collections) == 2  # a band for train and for validation
    assert not plot_loss_curves({"x": runs[:1]}).axes[0].collections  # one seed: no band


def test_misclassified_spreads_over_classes_with_per_class():
    class AlwaysAirplane(torch.nn.Module):
        def forward(self, x):
            return torch.log_softmax(torch.tensor([5.0] + [0.0] * 9).expand(len(x), -1), dim=1)

    labels = torch.arange(10).repeat_interleave(5)  # sorted by class, like the test folders
    loader = [(torch.zeros(25, 3, 32, 32), labels[:25]), (torch.zeros(25, 3, 32, 32), labels[25:])]
    first = misclassified(AlwaysAirplane(), loader, "cpu", n=6)
    assert first["targets"].tolist() == [1, 1, 1, 1, 1, 2]
    spread = misclassified(AlwaysAirplane(), loader, "cpu", n=20, per_class=2)
    assert spread["targets"].tolist() == [c for c in range(1, 10) for _ in range(2)]
    assert spread["indices"].tolist()[:3] == [5, 6, 10]
    assert spread["images"].shape == (18, 3, 32, 32)
