"""Helpers for Lesson 4, a CIFAR-10 convolutional network in PyTorch.

The lesson's PyTorch, one module per concern: models, data, training, analysis, transfer. Each is
short and plain: read them. support/ holds what the notebooks use around the lesson (set-up and
saved runs, plots, widgets, seed tables, offline CIFAR-10), exercises/ the exercises' checks and
course/ the course's batch tools.
"""

from .data import (
    CLASSES,
    TensorLoader,
    augment_batch,
    cifar10_transform,
    make_loaders,
)
from .models import (
    BatchNormConvNet,
    ConvBlock,
    ConvNet,
    DropoutConvNet,
    LinearBlock,
    ModularConvNet,
    count_parameters,
    layer_summary,
    print_layer_summary,
)
from .support.cifar10 import (
    DataUnavailableError,
    describe_dataset,
    load_cifar10,
    make_generated_cifar,
)
from .support.lesson import setup
from .support.plots import plot_loss_curves, show_images
from .training import fit, seed_everything, test, train
