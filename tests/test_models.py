import pytest
import torch
import torch.nn as nn

from lesson_utils.support.fast_dropout import FastDropout
from lesson_utils.models import (
    ConvNet,
    DropoutConvNet,
    ModularConvNet,
    count_parameters,
    feature_map_sizes,
    flat_to_modular_state_dict,
    layer_summary,
    trace_shapes,
)
from lesson_utils.support.demos import describe_feature_maps


def test_convnet_shapes_and_parameter_count():
    model = ConvNet()
    assert count_parameters(model) == 545_098
    assert model.fc1.in_features == 8 * 8 * 64
    out = model(torch.zeros(64, 3, 32, 32))
    assert out.shape == (64, 10)
    # log_softmax: each row's probabilities sum to one
    torch.testing.assert_close(out.exp().sum(dim=1), torch.ones(64))


def test_layer_summary_lists_each_layer_output():
    rows = dict(layer_summary(ConvNet(), (16, 3, 32, 32)))
    assert rows["conv1"] == (16, 32, 32, 32)
    assert rows["conv2"] == (16, 64, 16, 16)
    assert rows["fc1"] == (16, 128)
    assert rows["output"] == (16, 10)


def test_trace_shapes_follows_forward():
    trace = trace_shapes(ConvNet(), torch.zeros(64, 3, 32, 32))
    assert [shape for _, shape in trace] == [
        (64, 3, 32, 32),
        (64, 32, 32, 32),
        (64, 32, 32, 32),
        (64, 32, 16, 16),
        (64, 64, 16, 16),
        (64, 64, 16, 16),
        (64, 64, 8, 8),
        (64, 4096),
        (64, 128),
        (64, 10),
    ]


@pytest.mark.parametrize("model_class", [ConvNet, DropoutConvNet])
def test_trace_shapes_ends_with_what_forward_returns(model_class):
    """trace_shapes re-types forward step by step: the two must not drift apart."""
    torch.manual_seed(0)
    model, x = model_class().eval(), torch.randn(4, 3, 32, 32)  # eval: dropout off
    with torch.no_grad():
        last_name, last = trace_shapes(model, x, tensors=True)[-1]
        assert last_name == "fc2 + log_softmax" and torch.equal(last, model(x))


def test_feature_map_sizes_matches_a_real_network():
    # the widget's arithmetic against what PyTorch computes
    for kernel, padding, stride in [(3, 1, 1), (5, 0, 1), (3, 0, 2), (5, 2, 1)]:
        conv = torch.nn.Conv2d(3, 8, kernel, stride=stride, padding=padding)
        x = torch.nn.functional.max_pool2d(conv(torch.zeros(1, 3, 32, 32)), 2)
        sizes = feature_map_sizes(32, kernel, padding, stride, 2, channels=(8,))
        assert sizes["sides"][0][1] == x.shape[-1]
        assert sizes["in_features"] == x[0].numel()
    assert feature_map_sizes()["in_features"] == 4096
    assert "cannot be built" in describe_feature_maps(8, 5, 0, 1, 2)


def test_dropout_model_is_the_modular_model():
    flat, modular = DropoutConvNet(), ModularConvNet()
    assert count_parameters(flat) == count_parameters(modular) == 545_098
    modular.load_state_dict(flat_to_modular_state_dict(flat.state_dict()))
    flat.eval(), modular.eval()
    x = torch.randn(8, 3, 32, 32)
    torch.testing.assert_close(flat(x), modular(x), rtol=0, atol=0)


def test_modular_convnet_refuses_too_many_blocks():
    ModularConvNet(channels=(8, 8, 8, 8, 8))  # 32 -> 1x1 still works
    with pytest.raises(ValueError, match="below 1x1"):
        ModularConvNet(channels=(8,) * 6)


@pytest.mark.parametrize(
    "model",
    [ConvNet(), DropoutConvNet(), ModularConvNet()],
    ids=["ConvNet", "DropoutConvNet", "ModularConvNet"],
)
def test_good_batches_pass_in_float32_and_under_autocast(model):
    model.eval()
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # the benchmark's --amp: input stays fp32
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize("model_class", [ConvNet, DropoutConvNet, ModularConvNet])
def test_every_network_traces_with_torch_fx_and_holds_no_check(model_class):
    import inspect

    import torch.fx

    model = model_class().eval()
    traced = torch.fx.symbolic_trace(model)
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(traced(x), model(x))
    assert "check" not in inspect.getsource(model_class)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.6])
def test_the_course_dropout_is_distributed_as_nn_dropout(p):
    """Dropout (the course's: 16-bit draws from NumPy's PCG64) against nn.Dropout on 200,000
    values: the same share of zeros (within 5 standard errors of p, and of each other), the same
    scale on the kept values (to the 16-bit draws' resolution), no correlation between neighbours,
    the same gradient rule."""
    torch.manual_seed(0)
    x = torch.ones(400, 500, requires_grad=True)
    ours, theirs = FastDropout(p)(x), nn.Dropout(p)(x.detach())
    n, scale = x.numel(), 1 / (1 - p)
    se = (p * (1 - p) / n) ** 0.5
    zeros = [(out == 0).float().mean().item() for out in (ours, theirs)]
    assert abs(zeros[0] - p) < 5 * se and abs(zeros[0] - zeros[1]) < 5 * 2**0.5 * se, zeros
    for out in (ours, theirs):
        kept = out[out != 0]
        torch.testing.assert_close(kept, torch.full_like(kept, scale), rtol=2**-14, atol=0)
    keep = (ours != 0).float()
    for a, b in ((keep[:, 1:], keep[:, :-1]), (keep[1:], keep[:-1])):
        r = torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1].item()
        assert abs(r) < 5 / n**0.5, r
    ours.sum().backward()
    torch.testing.assert_close(x.grad, ours.detach())  # d(out)/dx = mask / (1 - p)


@pytest.mark.parametrize("p", [0.2, 0.5, 0.6, 0.9])
def test_the_course_dropout_keeps_the_expectation_exact(p):
    """A value is kept when its 16-bit draw is >= round(p * 65536): the kept values are scaled by
    the exact inverse of that keep probability, so the mean of the output is the input's."""
    torch.manual_seed(1)
    out = FastDropout(p)(torch.ones(1_000_000, dtype=torch.float64))
    keep_probability = (65536 - round(p * 65536)) / 65536
    assert set(out.unique().tolist()) == {0.0, 1 / keep_probability}
    se = (1 / keep_probability - 1) ** 0.5 / out.numel() ** 0.5  # of the mean
    assert abs(out.mean().item() - 1) < 5 * se


def test_torch_manual_seed_fixes_every_course_dropout_mask():
    x = torch.ones(3, 5, 7)  # a size that is not a multiple of 4 draws
    masks = {}
    for seed in (0, 0, 1):
        torch.manual_seed(seed)
        masks.setdefault(seed, []).append([FastDropout(0.5)(x), FastDropout(0.5)(x)])
    assert all(torch.equal(a, b) for a, b in zip(*masks[0]))  # the same seed, the same masks
    first, second = masks[0][0]
    assert not torch.equal(first, second)  # each call draws a new mask
    assert not torch.equal(first, masks[1][0][0])  # another seed, other masks
    assert first.shape == x.shape
    torch.manual_seed(0)
    net_out = DropoutConvNet(dropout=FastDropout)(torch.ones(2, 3, 32, 32))
    torch.manual_seed(0)
    assert torch.equal(DropoutConvNet(dropout=FastDropout)(torch.ones(2, 3, 32, 32)), net_out)


def test_the_course_dropout_at_the_edges():
    x = torch.randn(1000)
    assert torch.equal(FastDropout(0.5).eval()(x), x) and torch.equal(FastDropout(0.0)(x), x)
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))
    assert torch.equal(FastDropout(1.0)(x), nn.Dropout(1.0)(x))
    assert torch.equal(FastDropout(0.999999)(x), torch.zeros_like(x))  # rounds to 65536: none kept
    y = torch.ones(1000)
    assert FastDropout(0.5, inplace=True)(y) is y and set(y.unique().tolist()) == {0.0, 2.0}
    # other devices draw on the device (no NumPy): the meta device stands in for a GPU here
    assert FastDropout(0.5)(torch.ones(4, 5, device="meta")).device.type == "meta"
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 draws: the same keep probability
        out = FastDropout(0.6)(torch.ones(100_000, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16 and abs((out == 0).float().mean().item() - 0.6) < 0.01
    assert type(DropoutConvNet().dropout1) is nn.Dropout  # the lesson's layer, by default
    assert isinstance(DropoutConvNet(dropout=FastDropout).dropout1, FastDropout)
    assert type(DropoutConvNet(dropout=nn.Dropout).dropout1) is nn.Dropout
