"""Everyday edits that change what training computes without changing how the run is described,
each as a notebook cell in two versions (a and b). Run as a script in a fresh process:

    python tests/edits.py FOLDER a|b [a|b ...]

trains (or loads) every case's version with fit_or_load in FOLDER, version after version, and
prints one JSON line per version, {case: "trained" | "loaded"}. tests/test_runs.py runs it in new
processes: version a trains; in a new process, version a loads and version b trains anew.
"""

import contextlib
import io
import json
import linecache
import sys
from pathlib import Path

PRELUDE = """
from functools import partial
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.utils.data import DataLoader
from torchvision import transforms
from lesson_utils.models import ConvNet, ConvBlock, DropoutConvNet, LinearBlock
from lesson_utils.data import ArrayDataset, TensorLoader
from test_runs import TEST, TRAIN, recipe
"""

# case: (the cell, with {v} where the versions differ, version a, version b). Each cell defines
# run(), the arguments of one fit_or_load call.
CASES = {
    "an activation passed to LinearBlock": (
        """
def net():
    return nn.Sequential(ConvBlock(3, 8), nn.Flatten(), LinearBlock(8 * 16 * 16, 32, 0.0, {v}),
                         LinearBlock(32, 10, 0.0, partial(F.log_softmax, dim=1)))
def run():
    return recipe(net=net)
""",
        "F.relu",
        "F.leaky_relu",
    ),
    "a setting of a partial activation": (
        """
def net():
    return nn.Sequential(ConvBlock(3, 8), nn.Flatten(),
                         LinearBlock(8 * 16 * 16, 32, 0.0,
                                     partial(F.leaky_relu, negative_slope={v})),
                         LinearBlock(32, 10, 0.0, partial(F.log_softmax, dim=1)))
def run():
    return recipe(net=net)
""",
        "0.2",
        "0.3",
    ),
    "a helper function called in forward": (
        """
def act(x):
    return {v}(x)
class Net(ConvNet):
    def forward(self, x):
        x = F.max_pool2d(act(self.conv1(x)), 2)
        x = F.max_pool2d(act(self.conv2(x)), 2)
        return F.log_softmax(self.fc2(act(self.fc1(x.flatten(1)))), dim=1)
def run():
    return recipe(net=Net)
""",
        "F.relu",
        "torch.tanh",
    ),
    "a module-level constant read in forward": (
        """
SCALE = {v}
class Net(ConvNet):
    def forward(self, x):
        return super().forward(x * SCALE)
def run():
    return recipe(net=Net)
""",
        "1.0",
        "0.5",
    ),
    "a constant read only in eval mode": (
        """
EVAL_SHIFT = {v}
class Net(ConvNet):
    def forward(self, x):
        out = super().forward(x)
        return out if self.training else out + EVAL_SHIFT * torch.arange(10.0)
def run():
    return recipe(net=Net)
""",
        "0.0",
        "1.0",
    ),
    "an attribute set after construction": (
        """
class Net(ConvNet):
    temperature = 1.0
    def forward(self, x):
        return F.log_softmax(super().forward(x) / self.temperature, dim=1)
def net():
    model = Net()
    model.temperature = {v}
    return model
def run():
    return recipe(net=net)
""",
        "1.0",
        "2.0",
    ),
    "a forward hook": (
        """
def net():
    model = ConvNet()
    model.fc1.register_forward_hook(lambda module, inputs, output: output * {v})
    return model
def run():
    return recipe(net=net)
""",
        "1.0",
        "3.0",
    ),
    "a dropout rate set after construction": (
        """
def net():
    model = DropoutConvNet()
    model.dropout3.p = {v}
    return model
def run():
    return recipe(net=net)
""",
        "0.5",
        "0.1",
    ),
    "a custom optimizer's step": (
        """
class ScaledSGD(optim.SGD):
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_({v})
        return super().step(closure)
def run():
    return recipe(opt=ScaledSGD, lr=0.01)
""",
        "1.0",
        "2.0",
    ),
    "a scheduler's lambda reading a global": (
        """
FACTOR = {v}
def run():
    return recipe(epochs=2,
                  scheduler=lambda o: optim.lr_scheduler.LambdaLR(o, lambda e: FACTOR ** e))
""",
        "0.5",
        "0.1",
    ),
    "an augmentation calling a helper": (
        """
def jitter(x):
    return x + {v} * torch.randn_like(x)
def run():
    return recipe(augment=lambda x: jitter(x))
""",
        "0.0",
        "0.2",
    ),
    "a test transform reading a global": (
        """
SHIFT = {v}
def run():
    args = recipe()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda t: t + SHIFT)])
    test_images = ArrayDataset(TEST.data, TEST.targets, transform)
    args["test_loader"] = DataLoader(test_images, batch_size=16)
    return args
""",
        "0.0",
        "0.5",
    ),
    "a DataLoader transform reading a global": (
        """
GAIN = {v}
def run():
    args = recipe()
    transform = transforms.Compose([transforms.ToTensor(), transforms.Lambda(lambda t: t * GAIN)])
    images = ArrayDataset(TRAIN.data, TRAIN.targets, transform)
    args["train_loader"] = DataLoader(images, batch_size=16, shuffle=True)
    return args
""",
        "1.0",
        "0.5",
    ),
}


def cell(case, version):
    """The case's cell in one version, compiled as IPython compiles a cell: its source is
    readable by inspect, as in a notebook."""
    template, a, b = CASES[case]
    source = PRELUDE + template.replace("{v}", a if version == "a" else b)
    filename = f"<cell {case} {version}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace = {}
    exec(compile(source, filename, "exec"), namespace)
    return namespace["run"]


def main(folder, versions):
    from lesson_utils.support.runs import fit_or_load

    for version in versions:
        results = {}
        for case in CASES:
            args = cell(case, version)()
            out = io.StringIO()
            with contextlib.redirect_stdout(out):
                fit_or_load(**args, name="edit", folder=folder, log="none")
            results[case] = "loaded" if ": loaded " in out.getvalue() else "trained"
        print(json.dumps(results))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main(sys.argv[1], sys.argv[2:])
