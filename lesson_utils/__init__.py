"""Helpers for Lesson 4, a CIFAR-10 convolutional network in PyTorch.

One module per concern: models, data, training, analysis, plots. Each is short, plain PyTorch:
read them. `setup` (lesson.py) is what each notebook's first cell calls.
"""
from .data import (CLASSES, DataUnavailableError, TensorLoader, augment_batch, cifar10_transform,
                   describe_dataset, load_cifar10, make_generated_cifar, make_loaders)
from .lesson import setup
from .models import (ConvBlock, ConvNet, DropoutConvNet, LinearBlock, ModularConvNet,
                     count_parameters, layer_summary, print_layer_summary)
from .plots import plot_loss_curves, show_images
from .training import fit, seed_everything, select_device, test, train, train_or_load
