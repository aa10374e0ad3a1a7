"""The course on a CUDA GPU: `pytest -m gpu` (scripts/gpu_check.sh runs it). Skipped, with the
reason, where CUDA is absent, as on the machines that build this course; no other test needs a GPU.
"""

from functools import partial

import pytest
import torch
import torch.nn as nn
import torch.optim as optim

from lesson_utils.data import TensorLoader, augment_batch, select_classes
from lesson_utils.models import ConvNet, DropoutConvNet
from lesson_utils.support.fast_dropout import FastDropout
from lesson_utils.support.cifar10 import make_generated_cifar
from lesson_utils.support.runs import fit_or_load
from lesson_utils.support.devices import select_device
from lesson_utils.training import fit

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def data():
    return make_generated_cifar(640, seed=0), make_generated_cifar(256, seed=1)


def test_auto_picks_cuda():
    assert select_device("auto").type == "cuda"


def test_tensor_loader_on_cuda_gives_the_cpu_batches(data):
    train_set, _ = data
    batches = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        batches[device] = [
            (x.cpu(), y.cpu()) for x, y in TensorLoader(train_set, 64, device=device)
        ]
    for (x, y), (xc, yc) in zip(batches["cpu"], batches["cuda"]):
        assert torch.equal(y, yc) and torch.allclose(x, xc)


def test_a_cpu_state_dict_loads_on_cuda_and_back(tmp_path):
    model = ConvNet().eval()
    torch.save(model.state_dict(), tmp_path / "convnet.pt")
    on_gpu = ConvNet().to(CUDA).eval()
    on_gpu.load_state_dict(
        torch.load(tmp_path / "convnet.pt", map_location=CUDA, weights_only=True)
    )
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(on_gpu(x.to(CUDA)).cpu(), model(x), atol=1e-4, rtol=1e-4)
    back = ConvNet()
    back.load_state_dict({k: v.cpu() for k, v in on_gpu.state_dict().items()})
    for a, b in zip(back.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)


def _recipes(train_set):
    augment = partial(augment_batch, flip=True, crop_padding=4)
    return {
        "baseline (02)": (ConvNet, None, None),
        "dropout (03)": (partial(DropoutConvNet, dropout=FastDropout), None, None),
        "StepLR (05)": (ConvNet, lambda o: optim.lr_scheduler.StepLR(o, 7, 0.1), None),
        "flip + crop (06)": (ConvNet, None, augment),
    }


@pytest.mark.parametrize("amp", [False, True], ids=["float32", "bf16 autocast"])
def test_one_epoch_of_each_recipe_on_cuda(data, amp, capsys):
    train_set, test_set = data
    test_loader = TensorLoader(test_set, 64, device=CUDA)
    for name, (net, schedule, augment) in _recipes(train_set).items():
        torch.manual_seed(0)
        model = net().to(CUDA)
        optimizer = optim.Adam(model.parameters(), lr=1e-3)
        train_loader = TensorLoader(train_set, 64, device=CUDA, augment=augment)
        history = fit(
            model,
            train_loader,
            test_loader,
            optimizer,
            1,
            CUDA,
            schedule(optimizer) if schedule else None,
            log="none",
            amp=amp,
        )
        assert history["epoch"] == [1] and history["test_acc"][0] > 10, name


def test_few_labels_transfer_on_cuda(data, tmp_path, capsys):
    """07's recipe: pretrain on 5 classes, then a frozen network with a new head, reused runs."""
    train_set, test_set = data
    pretrained = ConvNet()
    pretrained.fc2 = nn.Linear(128, 5)
    pretrained = pretrained.to(CUDA)
    old, new = list(range(5)), list(range(5, 10))
    loaders = [TensorLoader(select_classes(s, old), device=CUDA) for s in (train_set, test_set)]
    optimizer = optim.Adam(pretrained.parameters(), lr=1e-3)
    fit_or_load(pretrained, *loaders, optimizer, 1, CUDA, folder=tmp_path, log="none")
    model = ConvNet()
    model.fc2 = nn.Linear(128, 5)
    model = model.to(CUDA)
    model.load_state_dict(pretrained.state_dict())
    for layer in (model.conv1, model.conv2, model.fc1):
        layer.requires_grad_(False)
    frozen = model.conv1.weight.detach().clone()
    few = [
        TensorLoader(select_classes(s, new, per_class=4), device=CUDA)
        for s in (train_set, test_set)
    ]
    fit(model, *few, optim.Adam(model.fc2.parameters(), lr=1e-3), 2, CUDA, log="none")
    assert torch.equal(model.conv1.weight, frozen)
    assert "trained" in capsys.readouterr().out


def test_compiled_convnet_with_cuda_graphs_trains():
    torch.manual_seed(0)
    model = torch.compile(ConvNet().to(CUDA), mode="reduce-overhead")
    optimizer = optim.Adam(model.parameters(), lr=1e-3)
    x, y = torch.randn(64, 3, 32, 32, device=CUDA), torch.randint(0, 10, (64,), device=CUDA)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        loss = nn.functional.nll_loss(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_the_course_dropout_draws_its_mask_on_the_gpu():
    """On CUDA the course's FastDropout draws with torch on the device (no NumPy, no host copy): the
    same 16-bit threshold and scale as on the CPU, and torch.manual_seed fixes the mask."""
    x = torch.ones(400, 500, device=CUDA)
    torch.manual_seed(0)
    out = FastDropout(0.6)(x)
    torch.manual_seed(0)
    assert torch.equal(FastDropout(0.6)(x), out) and out.device.type == "cuda"
    assert abs((out == 0).float().mean().item() - 0.6) < 0.01
    kept = out[out != 0]
    torch.testing.assert_close(kept, torch.full_like(kept, 65536 / (65536 - round(0.6 * 65536))))
