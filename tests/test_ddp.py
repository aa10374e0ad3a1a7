"""scripts/train_ddp.py: DistributedDataParallel on CPU processes talking through Gloo.

Two processes (one thread each) on generated data show that DDP is right, not only that it runs:
one DDP step of 2 x 32 images equals one plain step of the same 64 images (the gradients are
averaged); the DistributedSampler gives each process a disjoint half of every epoch, a new one
after set_epoch and the same one without it; the script itself runs under torchrun, rank 0 saves a
plain ConvNet's weights; started without torchrun, it says so.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lesson_utils.data import cifar10_transform
from lesson_utils.models import ConvNet
from lesson_utils.support.cifar10 import make_generated_cifar
from lesson_utils.training import train

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_ddp.py"
DISTRIBUTED_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
N_STEP_IMAGES, LR = 64, 0.1  # one step: 2 processes x 32 images; plain SGD: the update is lr x grad

# What each of the two processes runs: rank 0 saves its weights after one DDP step, and every rank
# writes the indices its DistributedSampler gave it, epoch by epoch.
WORKER = f"""
import datetime, importlib.util, json, os, sys
import torch, torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP
from lesson_utils.data import cifar10_transform
from lesson_utils.models import ConvNet
from lesson_utils.support.cifar10 import make_generated_cifar
from lesson_utils.training import train

spec = importlib.util.spec_from_file_location("train_ddp", {str(SCRIPT)!r})
script = importlib.util.module_from_spec(spec)
spec.loader.exec_module(script)
out, rank = sys.argv[1], int(os.environ["RANK"])
dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))

images = make_generated_cifar({N_STEP_IMAGES}, seed=0, transform=cifar10_transform())
loader = script.make_train_loader(images, batch_size={N_STEP_IMAGES} // 2, seed=0)
loader.sampler.set_epoch(1)
torch.manual_seed(0)
model = DDP(ConvNet())
optimizer = torch.optim.SGD(model.parameters(), lr={LR})
train(model, "cpu", loader, optimizer, 1, log_interval=0)  # one batch per process: one step
if rank == 0:
    torch.save(model.module.state_dict(), os.path.join(out, "ddp_step.pt"))

seen = {{"step": list(loader.sampler), "set_epoch": [], "no_set_epoch": []}}
loader = script.make_train_loader(range(100), batch_size=10, seed=0)
for epoch in range(3):
    loader.sampler.set_epoch(epoch)
    seen["set_epoch"].append(torch.cat(list(loader)).tolist())
loader = script.make_train_loader(range(100), batch_size=10, seed=0)
for epoch in range(3):  # set_epoch forgotten
    seen["no_set_epoch"].append(torch.cat(list(loader)).tolist())
with open(os.path.join(out, f"rank{{rank}}.json"), "w") as file:
    json.dump(seen, file)
dist.destroy_process_group()
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in DISTRIBUTED_VARIABLES}
    return {**env, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **extra}


@pytest.fixture(scope="module")
def workers(tmp_path_factory):
    """Run WORKER in two processes, as torchrun would start them; return their folder."""
    out = tmp_path_factory.mktemp("ddp")
    port = str(free_port())
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(out)],
            env=child_env(
                RANK=str(rank),
                LOCAL_RANK=str(rank),
                WORLD_SIZE="2",
                MASTER_ADDR="127.0.0.1",
                MASTER_PORT=port,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    try:
        outputs = [proc.communicate(timeout=180)[0] for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    for proc, output in zip(procs, outputs):
        assert proc.returncode == 0, output
    return out


def one_plain_step(images, indices):
    """The same network and seed, one process, one SGD step on images[indices] as one batch."""
    batch = [images[i] for i in indices]
    torch.manual_seed(0)
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    train(model, "cpu", DataLoader(batch, batch_size=len(batch)), optimizer, 1, log_interval=0)
    return model.state_dict()


def max_abs_difference(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def test_one_ddp_step_of_2_x_32_images_is_one_step_of_64(workers):
    ddp = torch.load(workers / "ddp_step.pt", weights_only=True)
    images = make_generated_cifar(N_STEP_IMAGES, seed=0, transform=cifar10_transform())
    torch.manual_seed(0)
    initial = ConvNet().state_dict()
    whole = one_plain_step(images, range(N_STEP_IMAGES))
    rank0 = json.loads((workers / "rank0.json").read_text())["step"]
    half = one_plain_step(images, rank0)  # rank 0's own 32 images, without rank 1's gradients
    difference = max_abs_difference(ddp, whole)
    print(f"DDP step vs one step of the same 64 images: max abs difference {difference:.2e}")
    assert difference < 1e-6
    assert max_abs_difference(whole, initial) > 1e-3  # the step moved the weights
    assert max_abs_difference(half, whole) > 100 * max(difference, 1e-7)  # the test can fail


def test_each_process_sees_its_own_half_and_set_epoch_reshuffles(workers):
    seen = [json.loads((workers / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert sorted(seen[0]["step"] + seen[1]["step"]) == list(range(N_STEP_IMAGES))
    for key in ("set_epoch", "no_set_epoch"):
        for first, second in zip(seen[0][key], seen[1][key]):
            assert len(first) == len(second) == 50 and not set(first) & set(second)
            assert sorted(first + second) == list(range(100))
    for rank in range(2):
        with_, without = seen[rank]["set_epoch"], seen[rank]["no_set_epoch"]
        assert with_[0] != with_[1] != with_[2] != with_[0]  # a new order every epoch
        assert set(with_[0]) != set(with_[1])  # and a new half
        assert without[0] == without[1] == without[2]  # without set_epoch: the same every epoch


def test_the_script_trains_under_torchrun_and_rank_0_saves_a_plain_convnet(tmp_path):
    out = tmp_path / "convnet.pt"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    flags = ["--epochs", "1", "--quick", "--device", "cpu", "--out", str(out)]
    result = subprocess.run(
        [*command, str(SCRIPT), *flags],
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("Test set:") == 1  # one epoch, evaluated by rank 0 alone
    model = ConvNet()
    model.load_state_dict(torch.load(out, weights_only=True))  # no "module." prefix
    torch.manual_seed(0)
    assert max_abs_difference(model.state_dict(), ConvNet().state_dict()) > 1e-3  # it trained


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("train_ddp", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_torchrun_the_script_says_how_to_start_it(script, monkeypatch, tmp_path):
    """Started as `python scripts/train_ddp.py` (no RANK, no WORLD_SIZE): SystemExit with a message,
    which Python prints to stderr, exiting with code 1; nothing is trained or saved."""
    for name in DISTRIBUTED_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "convnet.pt"
    with pytest.raises(SystemExit) as exit_:
        script.main(["--quick", "--out", str(out)])
    assert isinstance(exit_.value.code, str) and "torchrun" in exit_.value.code  # exit code 1
    assert not out.exists()


@pytest.mark.parametrize(
    "flags, name",
    [
        (["--epochs", "0"], "--epochs"),
        (["--epochs", "1.5"], "--epochs"),
        (["--batch-size", "-3"], "--batch-size"),
        (["--lr", "0"], "--lr"),
        (["--lr", "nan"], "--lr"),
        (["--seed", "-1"], "--seed"),
        (["--data", "mnist"], "--data"),
    ],
)
def test_a_bad_flag_is_named(script, capsys, flags, name):
    with pytest.raises(SystemExit) as exit_:
        script.parse_args(flags)
    assert exit_.value.code == 2 and name in capsys.readouterr().err


def test_quick_means_the_generated_data(script):
    args = script.parse_args(["--quick"])
    assert args.data == "generated" and (args.batch_size, args.lr) == (64, 1e-3)
