"""Checks of notebook 04 (modular code): a convolution block with an optional BatchNorm,
and the number of parameters of one."""

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm

from .core import (
    _call,
    _check_number,
    _never_raises,
    _not_written,
    _right,
    _seeded,
    _show,
    _wanted_class,
    _wrong,
)


def _reference_block(conv, norm, x, training, order):
    h = conv(x)
    if norm is not None and order == "norm, relu":
        h = F.batch_norm(
            h, norm.running_mean, norm.running_var, norm.weight, norm.bias, training, 0.0, norm.eps
        )
    h = F.relu(h)
    if norm is not None and order == "relu, norm":
        h = F.batch_norm(
            h, norm.running_mean, norm.running_var, norm.weight, norm.bias, training, 0.0, norm.eps
        )
    return F.max_pool2d(h, 2)


def _norm_block_problem(NormConvBlock, c_in, c_out, batch_norm, keyword=True):
    call = (
        f"NormConvBlock({c_in}, {c_out}, batch_norm={batch_norm})"
        if keyword
        else f"NormConvBlock({c_in}, {c_out})"
    )
    block, error = (
        _call(NormConvBlock, c_in, c_out)
        if not keyword
        else _call(lambda: NormConvBlock(c_in, c_out, batch_norm=batch_norm))
    )
    if error:
        return (
            f"{call} raised {error}",
            "__init__(self, in_channels, out_channels, batch_norm=False).",
        )
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, _BatchNorm)]
    if not convs and _call(block, torch.zeros(1, c_in, 4, 4))[0] is None:
        return "", ""  # the notebook's empty template
    if len(convs) != 1:
        return (f"{call} holds {len(convs)} nn.Conv2d layers.", "one convolution per block.")
    conv = convs[0]
    padding = (1, 1) if conv.padding == "same" else conv.padding  # the same for a 3x3 kernel
    if (
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        padding,
        conv.stride,
        conv.dilation,
        conv.groups,
        conv.padding_mode,
    ) != (c_in, c_out, (3, 3), (1, 1), (1, 1), (1, 1), 1, "zeros"):
        return (
            f"{call} holds {_show(conv, 90)}.",
            "a 3x3 convolution with padding=1 from in_channels to out_channels.",
        )
    if not batch_norm and norms:
        return f"{call} holds a {type(norms[0]).__name__}.", "only batch_norm=True adds one."
    if batch_norm and len(norms) != 1:
        return f"{call} holds {len(norms)} BatchNorm layers.", "one nn.BatchNorm2d, when asked."
    norm = norms[0] if norms else None
    if norm is not None and (not isinstance(norm, nn.BatchNorm2d) or norm.num_features != c_out):
        return (
            f"{call} holds {_show(norm, 70)}.",
            "nn.BatchNorm2d normalizes each channel of the convolution's output.",
        )
    x = torch.randn(6, c_in, 9, 9)
    for training in (True, False):
        block.train(training)
        mode = "training" if training else "eval"
        with torch.no_grad():
            if norm is not None and norm.running_mean is not None and not training:
                norm.running_mean.copy_(torch.rand(c_out))  # so that eval differs from training
                norm.running_var.copy_(1 + torch.rand(c_out))
            y, error = _call(block, x)
            if error:
                return f"in {mode} mode, {call} raised {error}", "forward(self, x)."
            if y is None:
                return "", ""
            if not isinstance(y, torch.Tensor) or y.shape != (6, c_out, 4, 4):
                shape = list(y.shape) if isinstance(y, torch.Tensor) else _show(y)
                return (
                    f"for a [6, {c_in}, 9, 9] input, {call} returns {shape}.",
                    "the block keeps the side through the convolution and halves it, "
                    "rounding down, in the max-pool.",
                )
            batch_stats = training or norm is None or norm.running_mean is None
            if torch.allclose(
                y, _reference_block(conv, norm, x, batch_stats, "norm, relu"), atol=1e-5
            ):
                continue
            if norm is not None and torch.allclose(
                y, _reference_block(conv, norm, x, batch_stats, "relu, norm"), atol=1e-5
            ):
                return (
                    "BatchNorm comes after the ReLU.",
                    "normalize the convolution's output, then apply the ReLU.",
                )
            if (
                norm is not None
                and not batch_stats
                and torch.allclose(
                    y, _reference_block(conv, norm, x, True, "norm, relu"), atol=1e-5
                )
            ):
                return (
                    "in eval mode it still normalizes with the batch's statistics.",
                    "call the nn.BatchNorm2d module: it switches to its running statistics "
                    "in eval mode.",
                )
            return (
                f"in {mode} mode the output of {call} differs from convolution, "
                f"{'BatchNorm, ' if norm is not None else ''}ReLU, 2x2 max-pool applied "
                "to the same input.",
                "apply the layers in that order in forward.",
            )
    return None


@_never_raises(
    "a class NormConvBlock(nn.Module) with __init__(self, in_channels, out_channels, "
    "batch_norm=False) and forward(self, x)."
)
def check_norm_conv_block(NormConvBlock):
    """NormConvBlock(in_channels, out_channels, batch_norm=False): a 3x3 convolution (padding 1),
    then nn.BatchNorm2d when batch_norm is True, ReLU and 2x2 max-pooling. Run in training and eval
    mode against the same layers applied by hand, for several channel counts."""
    problem = _wanted_class(
        NormConvBlock,
        "NormConvBlock",
        "__init__(self, in_channels, out_channels, batch_norm=False)",
    )
    if problem is not None:
        return problem
    cases = [(3, 8, True, True), (8, 16, False, True), (5, 12, True, True), (4, 6, False, False)]
    for c_in, c_out, batch_norm, keyword in cases:
        with _seeded(c_in):
            found = _norm_block_problem(NormConvBlock, c_in, c_out, batch_norm, keyword)
        if found == ("", ""):
            return _not_written("forward")
        if found:
            return _wrong(*found)
    return _right("Convolution, optional BatchNorm, ReLU, max-pool, in training and eval mode.")


@_never_raises("a number.")
def check_norm_block_parameters(answer):
    """The trainable parameters of NormConvBlock(64, 128, batch_norm=True), the convolution with
    its bias."""
    c_in, c_out = 64, 128
    conv = c_in * c_out * 9 + c_out
    return _check_number(
        answer,
        conv + 2 * c_out,
        {
            conv: "counts the convolution only; BatchNorm2d learns a scale and a shift per "
            "channel.",
            conv + 4 * c_out: "counts the running mean and variance, which are buffers, not "
            "parameters: no gradient changes them.",
            conv + c_out: "is one parameter per channel short: the convolution has a bias per "
            "channel, and BatchNorm2d learns two parameters per channel.",
            c_in * c_out * 9: "counts the convolution's weights only.",
        },
        "the convolution's weights and biases, plus BatchNorm2d's weight and bias (one of each "
        "per channel); count_parameters(NormConvBlock(64, 128, batch_norm=True)) checks it.",
        "BatchNorm2d adds a weight and a bias per channel; its running statistics are buffers.",
        whole=True,
    )
