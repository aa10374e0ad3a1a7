import pytest
import torch

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


@pytest.mark.parametrize(
    "shape, needle",
    [
        ((2, 3, 28, 28), "7*7*64 = 3136"),
        ((2, 1, 32, 32), "3 colour channels, got 1"),
        ((3, 32, 32), "unsqueeze(0)"),
    ],
)
def test_wrong_input_gives_a_clear_error(shape, needle):
    with pytest.raises(ValueError) as err:
        ConvNet()(torch.zeros(shape))
    assert "[N, 3, 32, 32]" in str(err.value) and str(list(shape)) in str(err.value)
    assert needle in str(err.value)


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
