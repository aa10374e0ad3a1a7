"""The lesson's networks, and tools to look at the shapes flowing through them.

Plain PyTorch: no argument checks inside the networks. A wrong input gets torch's own error, which
notebook 01 reads; `setup` adds a friendlier one for the lesson's ConvNet (support/lesson.py).
"""

from functools import partial

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvNet(nn.Module):
    """The lesson's CNN: two padded 3x3 convolutions, each followed by ReLU and 2x2 max-pooling."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels=3, out_channels=32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(in_channels=32, out_channels=64, kernel_size=3, padding=1)
        # 32x32 -> pool -> 16x16 -> pool -> 8x8, with 64 channels: 8*8*64 = 4096 features
        self.fc1 = nn.Linear(in_features=8 * 8 * 64, out_features=128)
        self.fc2 = nn.Linear(in_features=128, out_features=10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.view(x.shape[0], -1)  # [N, 64, 8, 8] -> [N, 4096]
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


class DropoutConvNet(ConvNet):
    """The same network with dropout after each convolution and after fc1, as in the lesson.
    `dropout` is the layer class: nn.Dropout, or another with the same behaviour (notebook 03's
    experiments pass a faster one, support/fast_dropout.py)."""

    def __init__(self, p_conv1=0.6, p_conv2=0.6, p_fc1=0.5, dropout=nn.Dropout):
        super().__init__()
        self.dropout1 = dropout(p_conv1)
        self.dropout2 = dropout(p_conv2)
        self.dropout3 = dropout(p_fc1)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.dropout1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.dropout2(self.conv2(x))), 2)
        x = x.view(x.shape[0], -1)
        x = F.relu(self.dropout3(self.fc1(x)))
        return F.log_softmax(self.fc2(x), dim=1)


class BatchNormConvNet(ConvNet):
    """The same network with BatchNorm after each convolution (04's NormConvBlock exercise builds
    it from blocks). In training, BatchNorm normalizes each channel with the batch's mean and
    variance, then applies a learned scale and shift; model.eval() switches it to running averages
    of those statistics, gathered during training."""

    def __init__(self):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(32)
        self.bn2 = nn.BatchNorm2d(64)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = x.view(x.shape[0], -1)
        x = F.relu(self.fc1(x))
        return F.log_softmax(self.fc2(x), dim=1)


class ConvBlock(nn.Module):
    """conv -> dropout -> ReLU -> 2x2 max-pool."""

    def __init__(self, in_channels, out_channels, kernel_size=3, padding=1, dropout_p=0.0):
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)
        self.dropout = nn.Dropout(dropout_p)

    def forward(self, x):
        return F.max_pool2d(F.relu(self.dropout(self.conv_layer(x))), 2)


class LinearBlock(nn.Module):
    """linear -> dropout -> activation (the activation is a plain function, e.g. F.relu)."""

    def __init__(self, in_features, out_features, dropout_p=0.0, activation=F.relu):
        super().__init__()
        self.linear_layer = nn.Linear(in_features, out_features)
        self.dropout = nn.Dropout(dropout_p)
        self.activation = activation

    def forward(self, x):
        return self.activation(self.dropout(self.linear_layer(x)))


class ModularConvNet(nn.Module):
    """DropoutConvNet rebuilt from blocks. `channels` sets the number and width of conv blocks."""

    def __init__(
        self, channels=(32, 64), conv_p=0.6, fc_p=0.5, hidden=128, n_classes=10, image_size=32
    ):
        super().__init__()
        side = image_size // 2 ** len(channels)
        if side < 1:
            raise ValueError(
                f"{len(channels)} conv blocks halve a {image_size}x{image_size} image "
                f"below 1x1; use at most {image_size.bit_length() - 1} blocks."
            )
        in_channels = (3,) + tuple(channels[:-1])
        self.conv_part = nn.Sequential(
            *[ConvBlock(c_in, c_out, 3, 1, conv_p) for c_in, c_out in zip(in_channels, channels)]
        )
        self.linear_part = nn.Sequential(
            LinearBlock(side * side * channels[-1], hidden, fc_p, F.relu),
            LinearBlock(hidden, n_classes, 0.0, partial(F.log_softmax, dim=1)),
        )

    def forward(self, x):
        x = self.conv_part(x)
        x = torch.flatten(x, start_dim=1)
        return self.linear_part(x)


# How the flat DropoutConvNet's weights are named inside ModularConvNet.
FLAT_TO_MODULAR_KEYS = {
    "conv1": "conv_part.0.conv_layer",
    "conv2": "conv_part.1.conv_layer",
    "fc1": "linear_part.0.linear_layer",
    "fc2": "linear_part.1.linear_layer",
}


def flat_to_modular_state_dict(state_dict):
    """Rename a ConvNet/DropoutConvNet state dict so ModularConvNet can load it."""
    renamed = {}
    for key, value in state_dict.items():
        layer, _, param = str(key).rpartition(".")
        if layer not in FLAT_TO_MODULAR_KEYS:
            raise ValueError(
                f"state_dict: unknown key {key!r}; a ConvNet/DropoutConvNet state "
                f"dict has the layers {', '.join(FLAT_TO_MODULAR_KEYS)}"
            )
        renamed[f"{FLAT_TO_MODULAR_KEYS[layer]}.{param}"] = value
    return renamed


def count_parameters(model, trainable_only=False):
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def layer_summary(model, input_shape=(64, 3, 32, 32)):
    """Run a zero batch through `model` and return (layer name, output shape) for each leaf layer.
    Functional calls inside forward (F.relu, F.max_pool2d, view) are not modules, so they are not
    listed; `trace_shapes` below follows the lesson's ConvNet step by step instead."""
    rows = []
    hooks = [
        module.register_forward_hook(
            lambda m, inp, out, name=name: rows.append((name, tuple(out.shape)))
        )
        for name, module in model.named_modules()
        if not list(module.children())
    ]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(torch.zeros(input_shape, device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    rows.append(("output", tuple(out.shape)))
    return rows


def print_layer_summary(model, input_shape=(64, 3, 32, 32)):
    print(f"{'input':<28}{list(input_shape)}")
    for name, shape in layer_summary(model, input_shape):
        print(f"{name:<28}{list(shape)}")


def trace_shapes(model, x, tensors=False):
    """Every step of ConvNet.forward, with the shape after it (functional steps included);
    tensors=True gives each step's tensor instead of its shape."""
    pool = partial(F.max_pool2d, kernel_size=2)
    forward = [  # ConvNet.forward, one step at a time (a test checks that it ends at model(x))
        ("conv1", model.conv1),
        ("relu", F.relu),
        ("max_pool2d(2)", pool),
        ("conv2", model.conv2),
        ("relu", F.relu),
        ("max_pool2d(2)", pool),
        ("view(N, -1)", lambda t: t.view(t.shape[0], -1)),
        ("fc1 + relu", lambda t: F.relu(model.fc1(t))),
        ("fc2 + log_softmax", lambda t: F.log_softmax(model.fc2(t), dim=1)),
    ]
    steps = [("input", x)]
    for name, step in forward:
        x = step(x)
        steps.append((name, x))
    return steps if tensors else [(name, tuple(t.shape)) for name, t in steps]


def conv_output_size(size, kernel_size, padding=0, stride=1):
    """Side of a convolution's output: floor((size + 2*padding - kernel_size) / stride) + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def feature_map_sizes(image_size=32, kernel_size=3, padding=1, stride=1, pool=2, channels=(32, 64)):
    """Side length after each (conv, pool) block and the resulting fc1 in_features: a dict,
    'sides' lists (after conv, after pool) per block, 'in_features' the flatten size (0 when the
    map vanished)."""
    sides, side = [], image_size
    for _ in channels:
        after_conv = conv_output_size(side, kernel_size, padding, stride)
        side = after_conv // pool if pool > 1 else after_conv
        sides.append((after_conv, side))
        if side < 1:
            break
    in_features = side * side * channels[-1] if side >= 1 and len(sides) == len(channels) else 0
    return {"sides": sides, "in_features": in_features}
