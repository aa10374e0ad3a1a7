"""Time the lesson's data pipeline against the fast path and against compute alone.

    python -m lesson_utils.course.benchmark [--quick] [--repeats N] [--device auto] [--amp]
                                     [--compile MODE]

Three ways to feed the lesson's ConvNet (Adam, batch 64), timed in one process, interleaved and
repeated (the median is reported), each scaled to one CIFAR-10 epoch:
  lesson   DataLoader over PIL images with ToTensor + Normalize (+ flip/crop transforms)
  fast     TensorLoader: one uint8 tensor, converted per batch (+ augment_batch)
  compute  the same batches built beforehand: what training costs with a free data path
Training is timed without and with augmentation (flip + crop), and evaluation on the test set.
The dropout network is timed on the same prebuilt batches, with the course's FastDropout and the
lesson's nn.Dropout: its ratio to the ConvNet is the cost of dropout (PyTorch's CPU dropout draws
its masks one value at a time). Those three cases also time every training step: the ratios
compare the best step of each network over all rounds (the least disturbed by other work).
Generated data of CIFAR-10's size is used: timing needs no download. The last line is JSON.

Options that change the computation itself (all off by default, and applied to every case alike,
so the ratios still compare data paths; compare two runs to see what an option gains):
  --amp      forward passes in bfloat16 under torch.autocast (changes the numerics slightly)
  --compile  torch.compile the model: "default", or "reduce-overhead" (CUDA graphs, on CUDA)

Every flag is checked when the command line is read (a wrong one exits with code 2 before any
data is made), and run() checks its arguments the same way.
"""

import argparse
import json
import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F

from ..data import (
    TensorLoader,
    augment_batch,
    augmented_cifar10_transform,
    cifar10_transform,
    make_loaders,
)
from ..models import ConvNet, DropoutConvNet
from ..support.fast_dropout import FastDropout
from ..support.checks import check_bool, check_int, positive_int_arg
from ..support.cifar10 import make_generated_cifar
from ..support.memory import keep_freed_memory
from ..support.devices import DEVICE_CHOICES, select_device

COMPILE_MODES = ("default", "reduce-overhead", "max-autotune")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def _autocast(device, amp):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)


def _train_steps(model, optimizer, batches, device, n_batches, amp=False, step_times=None):
    model.train()
    for i, (x, y) in enumerate(batches):
        if i == n_batches:
            break
        start = time.perf_counter()
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        optimizer.zero_grad()
        with _autocast(device, amp):  # the forward pass only; backward runs outside autocast
            output = model(x)
        F.nll_loss(output.float(), y).backward()
        optimizer.step()
        if step_times is not None:  # each step timed on its own (one list per network)
            _sync(device)
            step_times.append(time.perf_counter() - start)


def _eval_steps(model, batches, device, n_batches, amp=False):
    model.eval()
    correct = torch.zeros((), device=device)
    with torch.no_grad(), _autocast(device, amp):
        for i, (x, y) in enumerate(batches):
            if i == n_batches:
                break
            x, y = x.to(device), y.to(device)
            correct += (model(x).argmax(1) == y).sum()
    return correct.item()


def _timed(fn, device):
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def check_device(device):
    """A device name run() accepts: one of DEVICE_CHOICES or 'cuda:N', present on this machine
    (ValueError otherwise: a benchmark on a fallback device would measure the wrong thing)."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a name such as 'cpu' or 'cuda', got {device!r}")
    kind, _, index = device.lower().partition(":")
    if kind not in DEVICE_CHOICES or (index and not (kind == "cuda" and index.isdigit())):
        raise ValueError(
            f"device must be one of {', '.join(DEVICE_CHOICES)} or cuda:N, got {device!r}"
        )
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: this machine has no CUDA device; use 'cpu' or 'auto'")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ValueError(
            f"device {device!r}: this machine has {torch.cuda.device_count()} "
            f"CUDA device(s), numbered from 0"
        )
    if kind == "mps" and not (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    ):
        raise ValueError(f"device {device!r}: this machine has no MPS device; use 'cpu' or 'auto'")
    return device


def _check_run_args(quick, repeats, device, n_train, n_test, amp, compile_mode):
    """run()'s arguments, checked before anything is built (a dataset of 50,000 images takes
    seconds and gigabytes)."""
    check_bool("quick", quick)
    check_int("repeats", repeats, 1)
    device = check_device(device)
    check_int("n_train", n_train, 1)
    check_int("n_test", n_test, 1)
    check_bool("amp", amp)
    if compile_mode is not None and compile_mode not in COMPILE_MODES:
        raise ValueError(
            f"compile_mode must be None or one of {', '.join(COMPILE_MODES)}, got {compile_mode!r}"
        )
    if compile_mode == "reduce-overhead" and select_device(device).type != "cuda":
        raise ValueError("--compile reduce-overhead uses CUDA graphs: it needs a CUDA device")
    return device


def run(
    quick=False,
    repeats=3,
    device="auto",
    n_train=50_000,
    n_test=10_000,
    amp=False,
    compile_mode=None,
):
    device = select_device(
        _check_run_args(quick, repeats, device, n_train, n_test, amp, compile_mode)
    )
    batch = 64
    train_set = make_generated_cifar(n_train, seed=0, transform=cifar10_transform())
    test_set = make_generated_cifar(n_test, seed=1, transform=cifar10_transform())
    aug_set = make_generated_cifar(
        n_train, seed=0, transform=augmented_cifar10_transform(crop=True)
    )
    epoch_batches = -(-n_train // batch)
    test_batches = -(-n_test // batch)
    n = min(40, epoch_batches) if quick else epoch_batches  # batches timed per measurement
    n_eval = min(40, test_batches) if quick else test_batches
    scale, eval_scale = epoch_batches / n, test_batches / n_eval

    model = ConvNet().to(device)
    if compile_mode:
        model = torch.compile(model, mode=compile_mode)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    lesson_train, lesson_test = make_loaders(train_set, test_set, batch)
    lesson_aug = make_loaders(aug_set, test_set, batch)[0]
    fast_train = TensorLoader(train_set, batch, device=device)
    fast_aug = TensorLoader(
        train_set, batch, device=device, augment=partial(augment_batch, flip=True, crop_padding=4)
    )
    fast_test = TensorLoader(test_set, batch, shuffle=False, device=device)
    prebuilt = [(x.to(device), y.to(device)) for _, (x, y) in zip(range(n), fast_train)]
    prebuilt_test = [(x, y) for _, (x, y) in zip(range(n_eval), fast_test)]

    step_times = {"train": [], "dropout": [], "dropout_lesson": []}
    dropout_steps = {}
    for name, layer in (("course", FastDropout), ("lesson", torch.nn.Dropout)):
        net = DropoutConvNet(dropout=layer).to(device)
        if compile_mode:
            net = torch.compile(net, mode=compile_mode)
        net_optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
        dropout_steps[name] = partial(
            _train_steps, net, net_optimizer, device=device, n_batches=n, amp=amp
        )
    train_steps = partial(_train_steps, model, optimizer, device=device, n_batches=n, amp=amp)
    eval_steps = partial(_eval_steps, model, device=device, n_batches=n_eval, amp=amp)
    cases = {
        "train lesson": lambda: train_steps(lesson_train),
        "train fast": lambda: train_steps(fast_train),
        "train compute": lambda: train_steps(prebuilt, step_times=step_times["train"]),
        "train_aug lesson": lambda: train_steps(lesson_aug),
        "train_aug fast": lambda: train_steps(fast_aug),
        "eval lesson": lambda: eval_steps(lesson_test),
        "eval fast": lambda: eval_steps(fast_test),
        "eval compute": lambda: eval_steps(prebuilt_test),
        "dropout compute": lambda: dropout_steps["course"](
            prebuilt, step_times=step_times["dropout"]
        ),
        "dropout_lesson compute": lambda: dropout_steps["lesson"](
            prebuilt, step_times=step_times["dropout_lesson"]
        ),
    }
    # warm-up (and, with --compile, compilation): a full and a short last batch, train and eval
    warm_batches = prebuilt[:3] + [(x[:16], y[:16]) for x, y in prebuilt[:1]]
    train_steps(warm_batches, n_batches=len(warm_batches))
    for steps in dropout_steps.values():
        steps(warm_batches, n_batches=len(warm_batches))
    eval_steps(warm_batches, n_batches=len(warm_batches))
    times = {name: [] for name in cases}
    for _ in range(repeats):  # interleaved: every case once per round
        for name, fn in cases.items():
            factor = eval_scale if name.startswith("eval") else scale
            times[name].append(_timed(fn, device) * factor)
    median = {name: statistics.median(values) for name, values in times.items()}
    best_step = {name: min(values) for name, values in step_times.items()}

    print(
        f"device {device.type}, {torch.get_num_threads()} threads, {repeats} rounds, "
        f"{'quick: ' + str(n) + ' batches scaled' if quick else 'full epochs'}, "
        f"amp {'bf16' if amp else 'off'}, compile {compile_mode or 'off'}"
    )
    print(f"{'seconds per epoch':<18}{'lesson':>10}{'fast':>10}{'compute':>10}")
    for kind in ("train", "train_aug", "eval", "dropout", "dropout_lesson"):
        row = [median.get(f"{kind} {way}") for way in ("lesson", "fast", "compute")]
        print(
            f"{kind:<18}" + "".join(f"{t:>10.2f}" if t is not None else f"{'-':>10}" for t in row)
        )
    result = {
        "device": device.type,
        "threads": torch.get_num_threads(),
        "quick": quick,
        "amp": amp,
        "compile": compile_mode,
        "train_speedup": round(median["train lesson"] / median["train fast"], 3),
        "train_aug_speedup": round(median["train_aug lesson"] / median["train_aug fast"], 3),
        "eval_speedup": round(median["eval lesson"] / median["eval fast"], 3),
        "fast_vs_compute": round(median["train fast"] / median["train compute"], 3),
        # a DropoutConvNet training step over a ConvNet step, the best of each on the same
        # batches (the target: <= 1.25)
        "dropout_ratio": round(best_step["dropout"] / best_step["train"], 3),
        "lesson_dropout_ratio": round(best_step["dropout_lesson"] / best_step["train"], 3),
    }
    result.update({f"{name.replace(' ', '_')}_s": round(t, 3) for name, t in median.items()})
    result.update({f"{name}_step_ms": round(t * 1e3, 2) for name, t in best_step.items()})
    print(
        f"best of {len(step_times['train'])} training steps of batch {batch}: "
        f"ConvNet {result['train_step_ms']:.1f} ms, dropout network "
        f"{result['dropout_step_ms']:.1f} ms with the course's FastDropout, "
        f"{result['dropout_lesson_step_ms']:.1f} ms with nn.Dropout"
    )
    print(
        f"dropout network / ConvNet, per step: {result['dropout_ratio']:.2f} with the course's "
        f"FastDropout, {result['lesson_dropout_ratio']:.2f} with nn.Dropout"
    )
    print(json.dumps(result))
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="40 batches per case, scaled to an epoch"
    )
    parser.add_argument(
        "--repeats",
        type=positive_int_arg,
        default=3,
        help="rounds of every case (an integer >= 1; the median is reported)",
    )
    parser.add_argument(
        "--device", default="auto", help=f"{', '.join(DEVICE_CHOICES)} or cuda:N (must be present)"
    )
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast for the forward pass")
    parser.add_argument(
        "--compile",
        nargs="?",
        const="default",
        default=None,
        choices=COMPILE_MODES,
        help="torch.compile the model (reduce-overhead: CUDA graphs, CUDA only)",
    )
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
    except (TypeError, ValueError) as err:
        parser.error(f"--{err}")  # "--device ...: ..."
    if args.compile == "reduce-overhead" and select_device(args.device).type != "cuda":
        parser.error(
            "--compile reduce-overhead uses CUDA graphs: it needs a CUDA device (--device cuda)"
        )
    keep_freed_memory()  # as setup does in every notebook
    run(args.quick, args.repeats, args.device, amp=args.amp, compile_mode=args.compile)


if __name__ == "__main__":
    main()
