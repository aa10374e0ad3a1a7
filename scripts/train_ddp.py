"""Train the lesson's ConvNet on several GPUs (or CPU processes) with DistributedDataParallel.

Start it with torchrun, which starts one process per device and tells each its rank:

    torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --quick
    torchrun --standalone --nproc_per_node=$(nvidia-smi -L | wc -l) scripts/train_ddp.py --epochs 14

Every process holds a copy of the network and trains on its own share of each epoch's images
(DistributedSampler); during backward, DDP averages the gradients of all processes (all-reduce), so
every copy takes the same optimizer step: the step of one batch of N x --batch-size images. Rank 0
alone evaluates (the validation set after each epoch, the test set once at the end), prints and
saves. On CUDA the processes talk through NCCL, on CPUs through Gloo.
Plain PyTorch, in the style of pytorch/examples (mnist/main.py, distributed/ddp-tutorial-series).
"""

import argparse
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.optim as optim
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from lesson_utils.data import subset, validation_split
from lesson_utils.models import ConvNet
from lesson_utils.support.checks import positive_int_arg
from lesson_utils.support.cifar10 import DATA_CHOICES, DataUnavailableError, load_cifar10
from lesson_utils.support.lesson import VALIDATION_FRACTION, VALIDATION_SEED
from lesson_utils.training import test, train

USAGE = "torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --quick"


def positive_float_arg(text):
    """argparse type for a number > 0 (the learning rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], epilog=f"e.g. {USAGE}")
    parser.add_argument("--epochs", type=positive_int_arg, default=14, help="(default: 14)")
    parser.add_argument(
        "--batch-size",
        type=positive_int_arg,
        default=64,
        help="images per process and step; the global batch is N times that (default: 64)",
    )
    parser.add_argument(
        "--lr", type=positive_float_arg, default=1e-3, help="Adam's learning rate (default: 1e-3)"
    )
    parser.add_argument("--seed", type=int, default=0, help="initial weights and order (0)")
    parser.add_argument("--quick", action="store_true", help="the generated stand-in, offline")
    parser.add_argument("--data", choices=DATA_CHOICES, default="auto", help="(default: auto)")
    parser.add_argument(
        "--data-root",
        default=os.environ.get("CIFAR10_ROOT"),
        help="a local copy of CIFAR-10 (default: $CIFAR10_ROOT)",
    )
    parser.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    parser.add_argument(
        "--out", default="convnet_ddp.pt", help="rank 0 saves the weights here (convnet_ddp.pt)"
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"argument --seed: expected an integer >= 0, got {args.seed}")
    if args.quick:
        args.data = "generated"
    return args


def load_data(args):
    """(train, validation, test) sets: the course's 45,000 / 5,000 split of the training images
    (the same held-out images as every notebook), and the test set."""
    full_train_set, test_set = load_cifar10(args.data, root=args.data_root)
    train_indices, val_indices = validation_split(
        full_train_set.targets, VALIDATION_FRACTION, VALIDATION_SEED
    )
    val_set = subset(full_train_set, val_indices, test_set.transform)
    return subset(full_train_set, train_indices), val_set, test_set


def make_train_loader(train_set, batch_size, seed=0):
    """This process's share of the training set: the DistributedSampler shuffles all the indices
    with the same seed in every process (plus the epoch set by set_epoch), then gives rank r every
    N-th of them, starting at r. So the processes see disjoint parts, together the whole set."""
    sampler = DistributedSampler(train_set, shuffle=True, seed=seed)
    return DataLoader(train_set, batch_size=batch_size, sampler=sampler)  # no shuffle=: sampler


def main(argv=None):
    args = parse_args(argv)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        sys.exit(
            "train_ddp.py: start it with torchrun, which runs one process per device and sets "
            f"RANK, LOCAL_RANK and WORLD_SIZE for each (they are not set here), e.g.\n  {USAGE}"
        )
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))  # this process's device on its machine
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            sys.exit(
                f"train_ddp.py: local rank {local_rank} has no GPU: this machine has "
                f"{torch.cuda.device_count()}; use --nproc_per_node={torch.cuda.device_count()}"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    dist.init_process_group("nccl" if use_cuda else "gloo")  # reads MASTER_ADDR/PORT, RANK...

    # Only one process per machine may download (several writing one file would clash): local
    # rank 0 loads first, the others wait at the barrier, then read its copy.
    try:
        if local_rank == 0:
            train_set, val_set, test_set = load_data(args)
        dist.barrier()
        if local_rank != 0:
            train_set, val_set, test_set = load_data(args)
    except DataUnavailableError as err:
        sys.exit(f"train_ddp.py: {err}")
    train_loader = make_train_loader(train_set, args.batch_size, args.seed)
    print(
        f"rank {rank} of {world_size} (local rank {local_rank}, {device}): "
        f"{len(train_loader.sampler)} of {len(train_set)} training images per epoch, "
        f"{len(train_loader)} steps of {args.batch_size}",
        flush=True,
    )

    torch.manual_seed(args.seed)  # the same initial weights everywhere (DDP also copies rank 0's)
    model = DDP(ConvNet().to(device), device_ids=[local_rank] if use_cuda else None)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    if rank == 0:
        val_loader = DataLoader(val_set, batch_size=1000)
        test_loader = DataLoader(test_set, batch_size=1000)
        print(
            f"world size {world_size} ({dist.get_backend()}): {world_size} x {args.batch_size} "
            f"images = a global batch of {world_size * args.batch_size} per step; Adam, learning "
            f"rate {args.lr:g} (the lesson's 1e-3 was chosen for a batch of 64)",
            flush=True,
        )

    start = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_start = time.perf_counter()
        train_loader.sampler.set_epoch(epoch)  # a new order, and a new split, every epoch
        loss = train(model, device, train_loader, optimizer, epoch, log_interval=0)
        loss = torch.tensor(loss, device=device)
        dist.all_reduce(loss)  # the sum over the processes; divided below: their mean loss
        if rank == 0:  # one process evaluates and prints; the others wait at the barrier
            seconds = time.perf_counter() - epoch_start
            print(
                f"epoch {epoch}: train loss {loss.item() / world_size:.4f} (the mean over the "
                f"processes), {seconds:.1f} s",
                flush=True,
            )
            test(model.module, device, val_loader, "Validation")  # what chooses the epochs
        dist.barrier()

    if rank == 0:  # the test set, read once, for the report
        test(model.module, device, test_loader, "Test")
        torch.save(model.module.state_dict(), args.out)  # the plain ConvNet's, without "module."
        print(f"saved {args.out}; {args.epochs} epochs in {time.perf_counter() - start:.1f} s")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
