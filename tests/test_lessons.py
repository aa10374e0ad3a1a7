"""Unit tests of the pieces behind notebooks 03-07: dropout, blocks, schedules, augmentation,
transfer learning."""

import os
import urllib.error

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import models

from lesson_utils import transfer
from lesson_utils.data import augmented_cifar10_transform, lesson_augmentations, select_classes
from lesson_utils.support.cifar10 import make_generated_cifar
from lesson_utils.support.demos import AUGMENTATION_NAMES, make_augmentation
from lesson_utils.models import ConvBlock, LinearBlock
from lesson_utils.support.demos import describe_modular, dropout_demo
from lesson_utils.support.vgg import prepare_vgg16
from lesson_utils.training import lr_per_epoch


def test_dropout_scales_kept_values_and_keeps_the_mean():
    demo = dropout_demo(p=0.5, draws=50_000)
    kept = demo["sample"] != 0
    torch.testing.assert_close(demo["sample"][kept], 2 * demo["input"][kept])
    assert demo["scale"] == 2
    assert abs(demo["mean_out"] - demo["mean_in"]) < 0.05
    torch.testing.assert_close(demo["eval"], demo["input"])
    assert dropout_demo(p=0.0)["zeroed"] == pytest.approx(0.1)  # only the input's own 0


def test_blocks_shapes():
    assert ConvBlock(3, 8, 3, 1, 0.5)(torch.zeros(2, 3, 32, 32)).shape == (2, 8, 16, 16)
    block = LinearBlock(10, 4, 0.0, torch.relu)
    out = block(torch.randn(64, 10))
    assert out.shape == (64, 4) and out.min() == 0  # the activation is applied


def test_describe_modular_reports_counts_or_why_not():
    assert "545,098 parameters" in describe_modular(2, 32)
    assert "below 1x1" in describe_modular(6, 32)


def test_steplr_table_per_epoch():
    rates = lr_per_epoch("step", epochs=24, lr=1e-3, step_size=7, gamma=0.1)
    assert rates[:7] == [1e-3] * 7
    assert rates[7:14] == pytest.approx([1e-4] * 7)
    assert rates[14] == pytest.approx(1e-5) and rates[21] == pytest.approx(1e-6)
    assert lr_per_epoch("exponential", 3, gamma=0.5) == pytest.approx([1e-3, 5e-4, 2.5e-4])
    cosine = lr_per_epoch("cosine", 10)
    assert cosine[0] == 1e-3 and all(a > b for a, b in zip(cosine, cosine[1:]))
    onecycle = lr_per_epoch("onecycle", 10)
    assert max(onecycle) == pytest.approx(1e-3, rel=1e-3) and onecycle[0] < 1e-4
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_per_epoch("linear")


def test_augmentation_is_for_the_training_set_only():
    train_tf = augmented_cifar10_transform(crop=True)
    names = [type(t).__name__ for t in train_tf.transforms]
    assert names == ["RandomHorizontalFlip", "RandomCrop", "ToTensor", "Normalize"]
    image = Image.fromarray(make_generated_cifar(1).data[0])
    torch.manual_seed(0)
    outputs = {tuple(train_tf(image).flatten()[:64].tolist()) for _ in range(10)}
    assert len(outputs) > 1  # random: the same image differs from draw to draw
    assert train_tf(image).shape == (3, 32, 32)


def test_lesson_and_widget_augmentations_run_on_a_photo():
    photo = Image.new("RGB", (512, 600), (120, 60, 30))
    for name, tf in lesson_augmentations(400).items():
        assert tf(photo).size in ((512, 600), (400, 400)), name
    sizes = {name: make_augmentation(name, 0.5)(photo).size for name in AUGMENTATION_NAMES}
    assert sizes == {
        "rotation": (512, 600),
        "flip": (512, 600),
        "color jitter": (512, 600),
        "resized crop": (400, 400),
        "crop with padding": (400, 400),
    }
    same = make_augmentation("rotation", 0.0)(photo)
    assert np.array_equal(np.asarray(same), np.asarray(photo))  # strength 0 changes nothing
    with pytest.raises(ValueError, match="unknown augmentation"):
        make_augmentation("blur")


def test_select_classes_relabels_and_limits():
    dataset = make_generated_cifar(500, seed=1)
    few = select_classes(dataset, [5, 6, 7, 8, 9], per_class=3, seed=0)
    assert len(few) == 15 and sorted(set(few.targets)) == [0, 1, 2, 3, 4]
    assert few.classes == ["dog", "frog", "horse", "ship", "truck"]
    assert select_classes(dataset, [5, 6, 7, 8, 9], per_class=3, seed=0).targets == few.targets


@pytest.fixture(scope="module")
def vgg():
    return models.vgg16(weights=None)


def test_vgg16_freezing_counts(vgg):
    prepare_vgg16(vgg, n_classes=5)
    counts = transfer.parameter_counts(vgg)
    features = sum(p.numel() for p in vgg.features.parameters())
    assert vgg.classifier[6].out_features == 5
    assert counts["frozen"] == features == 14_714_688
    assert counts["total"] == 138_357_544 - 4096 * 1000 - 1000 + 4096 * 5 + 5
    prepare_vgg16(vgg, 5, freeze_classifier=True)
    assert transfer.parameter_counts(vgg)["trainable"] == 4096 * 5 + 5
    assert transfer.trainable_layers(vgg) == ["classifier.6"]
    prepare_vgg16(vgg, 5, unfreeze_blocks=1, freeze_classifier=True)
    assert transfer.trainable_layers(vgg) == [
        "features.24",
        "features.26",
        "features.28",
        "classifier.6",
    ]
    assert len(transfer.vgg16_conv_blocks(vgg)) == 5


def test_vgg16_without_network_falls_back_with_a_note(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache

    def no_download(*args, **kwargs):
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(models.VGG16_Weights.IMAGENET1K_V1, "get_state_dict", no_download)
    model, note = transfer.load_vgg16(pretrained=True)
    assert "could not be downloaded" in note and "random weights" in note
    assert isinstance(model, models.VGG)


VGG16_FILE = "hub/checkpoints/vgg16-397923af.pth"  # the file name of the weights' URL


def test_a_cached_weights_file_cannot_run_code(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / VGG16_FILE).parent.mkdir(parents=True)
    torch.save({"features.0.weight": Evil()}, tmp_path / VGG16_FILE)
    model, note = transfer.load_vgg16(pretrained=True)
    assert not marker.exists()
    assert str(tmp_path / VGG16_FILE) in note and "Delete that file" in note
    assert "random weights" in note


def test_cached_stand_in_weights_are_loaded_without_a_download(monkeypatch, tmp_path):
    """torchvision reads $TORCH_HOME/hub/checkpoints/<the URL's file name> without downloading:
    stand-in weights of VGG16's shapes (bfloat16, half the size) come back in the model."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    stand_in = {k: v.to(torch.bfloat16) for k, v in models.vgg16().state_dict().items()}
    (tmp_path / VGG16_FILE).parent.mkdir(parents=True)
    torch.save(stand_in, tmp_path / VGG16_FILE)
    model, note = transfer.load_vgg16(pretrained=True)
    assert note == "vgg16 with ImageNet weights (IMAGENET1K_V1)"
    assert torch.equal(model.features[0].weight, stand_in["features.0.weight"].float())
