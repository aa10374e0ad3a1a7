"""The lesson's train and test functions, and `fit`, which runs them for several epochs."""
import hashlib
import json
import math
import os
import random
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checks import check_history, check_int, check_module
from .paths import CHECKPOINT_DIR, REPO_ROOT

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def seed_everything(seed=0):
    """Seed Python, NumPy and PyTorch so that a CPU run repeats exactly."""
    if check_int("seed", seed, 0) >= 2 ** 32:
        raise ValueError(f"seed must be below 2**32 (NumPy's limit), got {seed}")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _available(name):
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        mps = getattr(torch.backends, "mps", None)
        return mps is not None and mps.is_available()
    return name == "cpu"


def select_device(name="auto", strict=False):
    """"auto" picks cuda, then mps, then cpu. A requested device that is missing falls back to the
    CPU with a warning, or raises a RuntimeError when strict=True."""
    name = str(name).lower()
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise ValueError(f"unknown DEVICE {name!r}; choose one of {DEVICE_CHOICES} "
                         "(or 'cuda:N' for a given GPU)")
    if kind == "auto":
        return torch.device(next(d for d in ("cuda", "mps", "cpu") if _available(d)))
    if _available(kind):
        return torch.device(name)
    message = f"DEVICE {name!r} was requested but this machine has no {kind.upper()} device"
    if strict:
        raise RuntimeError(message)
    warnings.warn(message + "; using the CPU instead.", stacklevel=2)
    return torch.device("cpu")


def train(model, device, train_loader, optimizer, epoch, log_interval=350):
    """One epoch of training, as in the lesson; prints a log line every `log_interval` batches
    (0: never). Returns the mean training loss over the epoch's batches."""
    model.train()
    total_loss = 0.0
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach()  # stays on the device: no GPU->CPU wait per batch
        if log_interval and batch_idx % log_interval == 0:
            print('Train Epoch: {} [{:5}/{:5} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
    return float(total_loss) / len(train_loader)


def test(model, device, loader, prefix, n_batch=None, verbose=True):
    """Evaluate on the first `n_batch` batches of `loader` (all of them when None).

    Losses are summed over every image (reduction='sum') and divided by the number of predictions
    at the end, so a smaller last batch weighs as much per image as the others.
    Returns (average loss, accuracy in %).
    """
    model.eval()
    loss, correct, total_pred = 0.0, 0, 0
    with torch.no_grad():
        for batch_idx, (data, target) in enumerate(loader):
            if n_batch is not None and batch_idx == n_batch:
                break
            data, target = data.to(device), target.to(device)
            output = model(data)
            loss += F.nll_loss(output, target, reduction='sum').item()
            pred = output.argmax(dim=1, keepdim=True)  # index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()
            total_pred += len(target)
    loss /= total_pred
    accuracy = 100. * correct / total_pred
    if verbose:
        print('{} set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)'.format(
            prefix, loss, correct, total_pred, accuracy))
    return loss, accuracy


HISTORY_KEYS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
LOG_CHOICES = ("lesson", "epoch", "none")
LOG_INTERVAL = 350  # batches between the lesson's log lines


def new_history():
    return {key: [] for key in HISTORY_KEYS}


def _check_fit_arguments(train_loader, test_loader, epochs, log, train_eval_batches):
    check_int("fit: epochs", epochs, 1)
    if train_eval_batches is not None:
        check_int("fit: train_eval_batches", train_eval_batches, 1)
    if log not in LOG_CHOICES:
        raise ValueError(f"fit: log must be one of {LOG_CHOICES}, got {log!r}")
    for name, loader in (("train_loader", train_loader), ("test_loader", test_loader)):
        if len(loader) == 0:
            raise ValueError(f"fit: {name} yields no batches (is its dataset empty?)")


def fit(model, train_loader, test_loader, optimizer, epochs, device, scheduler=None,
        train_eval_batches=20, train_eval_loader=None, log="lesson", progress=False, history=None):
    """The lesson's epoch loop plus a history: for each epoch, `train`, then `test` on
    `train_eval_batches` training batches and on the whole test set.

    train_eval_loader: where to measure the training accuracy (default: train_loader; pass a
    loader without augmentation when train_loader augments). The scheduler, if any, steps once per
    epoch, after the optimizer. log: "lesson" prints the lesson's lines, "epoch" one line per
    epoch, "none" nothing. progress: a progress bar over the epochs.
    Returns a plain dict of per-epoch lists (see new_history); pass a previous history to go on.
    Stopping the kernel (KeyboardInterrupt) ends training cleanly and keeps the finished epochs; a
    loss that is not a number (nan, inf) stops training with a message.
    """
    _check_fit_arguments(train_loader, test_loader, epochs, log, train_eval_batches)
    train_eval_loader = train_eval_loader or train_loader
    history = history if history is not None else new_history()
    first = history["epoch"][-1] + 1 if history["epoch"] else 1
    lesson_log = log == "lesson"
    try:
        for epoch in tqdm(range(first, first + epochs), desc="epochs", disable=not progress):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            epoch_loss = train(model, device, train_loader, optimizer, epoch,
                               LOG_INTERVAL if lesson_log else 0)
            train_loss, train_acc = test(model, device, train_eval_loader, "Train",
                                         train_eval_batches, lesson_log)
            test_loss, test_acc = test(model, device, test_loader, "Test", None, lesson_log)
            row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                   "test_loss": test_loss, "test_acc": test_acc,
                   "seconds": time.perf_counter() - start}
            for key, value in row.items():  # recorded as soon as the numbers exist
                history[key].append(value)
            if lesson_log:
                print()
            elif log == "epoch":
                print(f"epoch {epoch:2}: train loss {train_loss:.3f} acc {train_acc:5.1f}% | "
                      f"test loss {test_loss:.3f} acc {test_acc:5.1f}% | {row['seconds']:.0f} s")
            if not math.isfinite(epoch_loss):
                print(f"Stopped: the training loss is {epoch_loss} in epoch {epoch}. The "
                      "weights diverged: try a smaller learning rate.")
                break
            if scheduler is not None:
                scheduler.step()
    except IndexError as err:  # nll_loss's "Target 9 is out of bounds": a label past the outputs
        if "out of bounds" not in str(err):
            raise
        raise ValueError(
            f"fit: a label of the loaders is past the model's outputs ({err}). The last layer "
            "needs one output per class, e.g. nn.Linear(128, 10) for CIFAR-10's 10 classes; for "
            "fewer classes relabel the data 0..n-1 (select_classes does).") from None
    except KeyboardInterrupt:
        model.eval()
        print(f"Interrupted: kept the {len(history['epoch'])} finished epochs; "
              "the model holds the weights of the interrupted epoch and is in eval mode.")
    return history


def make_scheduler(optimizer, name="step", epochs=24, step_size=7, gamma=0.1):
    """One of the schedules of notebook 05, stepped once per epoch."""
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise TypeError(f"optimizer must be a torch optimizer (e.g. optim.Adam(...)), got "
                        f"{type(optimizer).__name__}")
    check_int("epochs", epochs, 1)
    check_int("step_size", step_size, 1)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not gamma > 0:
        raise ValueError(f"gamma must be a number > 0 (the factor per step), got {gamma!r}")
    schedulers = torch.optim.lr_scheduler
    if name == "step":
        return schedulers.StepLR(optimizer, step_size=step_size, gamma=gamma)
    if name == "exponential":
        return schedulers.ExponentialLR(optimizer, gamma=gamma)
    if name == "cosine":
        return schedulers.CosineAnnealingLR(optimizer, T_max=epochs)
    if name == "onecycle":
        return schedulers.OneCycleLR(optimizer, max_lr=optimizer.param_groups[0]["lr"],
                                     total_steps=epochs)
    raise ValueError(f"unknown schedule {name!r}; choose step, exponential, cosine or onecycle")


def lr_per_epoch(name="step", epochs=24, lr=1e-3, step_size=7, gamma=0.1):
    """The learning rate used in each epoch 1..epochs: the optimizer steps, then the scheduler."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    return scheduled_rates(optimizer, make_scheduler(optimizer, name, epochs, step_size, gamma),
                           epochs)


def scheduled_rates(optimizer, scheduler, epochs):
    """The learning rate of each of `epochs` epochs, stepped as fit steps them: the optimizer
    (the epoch's training), then the scheduler."""
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def save_checkpoint(path, model, optimizer=None, scheduler=None, history=None, key=None):
    """Save everything needed to resume, and torch's random state.

    Writes a temporary file of its own in the same folder, then renames it over `path`: a crash or
    another process saving at the same time never leaves a half-written file under the real name.
    `key` (a dict) records what produced the checkpoint (see train_or_load).
    """
    check_module("model", model)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    state = {"model": model.state_dict(), "model_class": type(model).__name__,
             "torch_rng_state": torch.get_rng_state()}  # so a resumed run shuffles the same way
    for name, value in (("optimizer", optimizer), ("scheduler", scheduler)):
        if value is not None:
            state[name] = value.state_dict()
    if history is not None:
        state["history"] = history
    if key is not None:
        state["key"] = key
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(state, file)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _check_fits(path, model, optimizer, state):
    """Raise a ValueError, before anything changes, if `state` cannot load into model/optimizer."""
    saved, own = state["model"], model.state_dict()
    missing = sorted(set(own) - set(saved))
    unexpected = sorted(set(saved) - set(own))
    if missing or unexpected:
        raise ValueError(f"{path} holds a {state.get('model_class', 'different')} checkpoint that "
                         f"does not fit {type(model).__name__}: missing keys {missing}, "
                         f"unexpected keys {unexpected}")
    shapes = [f"{k}: saved {list(saved[k].shape)}, model {list(own[k].shape)}"
              for k in own if saved[k].shape != own[k].shape]
    if shapes:
        raise ValueError(f"{path} does not fit {type(model).__name__}: other shapes ("
                         + "; ".join(shapes) + ")")
    if optimizer is not None and "optimizer" in state:
        groups = state["optimizer"]["param_groups"]
        own_groups = optimizer.state_dict()["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in own_groups]:
            raise ValueError(f"{path}: the saved optimizer was built for other parameters "
                             f"({[len(g['params']) for g in groups]} per group, this one has "
                             f"{[len(g['params']) for g in own_groups]})")


def load_checkpoint(path, model, optimizer=None, scheduler=None, map_location="cpu",
                    restore_rng=True):
    """Load a checkpoint written by save_checkpoint into `model` (and optimizer, scheduler).

    Uses weights_only=True: a checkpoint cannot run code when loaded. Restores torch's CPU random
    state too (restore_rng), so that resuming a CPU run repeats the uninterrupted one. Returns the
    saved history (None if there is none). A checkpoint whose layers, shapes or optimizer parameter
    groups do not fit raises a ValueError before model and optimizer are changed.
    """
    state = torch.load(path, map_location=map_location, weights_only=True)
    _check_fits(path, model, optimizer, state)
    model.load_state_dict(state["model"])
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng and "torch_rng_state" in state:
        torch.set_rng_state(state["torch_rng_state"])
    return state.get("history")


def cache_path(name, key, folder=None):
    """Where train_or_load keeps a result: the name plus a short hash of its key, in `folder`
    (default: the git-ignored checkpoints/ folder)."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name:
        raise ValueError(f"name must be a short run name such as 'baseline' (no slashes), got "
                         f"{name!r}")
    if not isinstance(key, dict):
        raise TypeError(f"key must be a dict of the run's settings, got {type(key).__name__}")
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return Path(folder or CHECKPOINT_DIR) / f"{name}-{digest}.pt"


def _complete(history, key):
    """A history worth keeping: every epoch the key asks for, and finite losses."""
    epochs = history.get("epoch", []) if isinstance(history, dict) else []
    return (len(epochs) > 0 and len(epochs) == key.get("epochs", len(epochs))
            and all(math.isfinite(v) for v in history["train_loss"] + history["test_loss"]))


def train_or_load(name, key, model, train_fn, folder=None):
    """Load the model and history that an identical earlier run saved, or train and save them.

    key: a dict of everything that changes the result (network, seed, epochs, data, QUICK...);
    only a checkpoint saved with an equal key and a complete history is used. train_fn() trains
    `model` and returns its history; an incomplete run (interrupted, or stopped on a nan loss) is
    not saved. Prints one line saying which happened. Returns the history.
    """
    path = cache_path(name, key, folder)
    check_module("model", model)
    if not callable(train_fn):
        raise TypeError(f"train_fn must be a function that trains the model and returns fit's "
                        f"history, got {train_fn!r}")
    if path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("key") == key and _complete(state.get("history"), key):
                _check_fits(path, model, None, state)  # before anything changes
                model.load_state_dict(state["model"])
                history = state["history"]
                print(f"{name}: loaded the run saved in {_shown(path)} ({history['epoch'][-1]} "
                      "epochs, same network, seed, data and settings): no training needed.")
                return history
            print(f"{name}: {_shown(path)} was saved with other settings: training again.")
        except Exception as err:  # a damaged or foreign file: never trust it, train again
            print(f"{name}: {_shown(path)} could not be read ({type(err).__name__}): "
                  "training again.")
    history = train_fn()
    check_history("train_fn()'s result", history)
    if not _complete(history, key):
        print(f"{name}: the run is incomplete ({len(history['epoch'])} epochs): not saved.")
        return history
    save_checkpoint(path, model, history=history, key=key)
    print(f"{name}: trained {len(history['epoch'])} epochs in {sum(history['seconds']):.0f} s, "
          f"saved to {_shown(path)}.")
    return history


def _shown(path):
    """A path relative to the repository when it is inside it (no machine paths in outputs)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return Path(path).name


def final_metrics(history):
    """The last epoch's numbers from a history, rounded, plus the train-test gap and total time."""
    check_history("history", history)
    return {"epochs": history["epoch"][-1],
            "train_acc": round(history["train_acc"][-1], 2),
            "test_acc": round(history["test_acc"][-1], 2),
            "gap": round(history["train_acc"][-1] - history["test_acc"][-1], 2),
            "test_loss": round(history["test_loss"][-1], 4),
            "best_test_acc": round(max(history["test_acc"]), 2),
            "seconds": round(sum(history.get("seconds", [])), 1)}


def run_seeds(run, seeds):
    """Run one training recipe once per seed. run(seed) seeds, builds the network, trains it (or
    loads the saved run) and returns (model, history). Returns the models and the histories, in the
    order of `seeds`."""
    if not callable(run):
        raise TypeError(f"run_seeds: run must be a function of the seed, got {run!r}")
    seeds = [check_int("run_seeds: each seed", seed, 0) for seed in seeds]
    if not seeds:
        raise ValueError("run_seeds: seeds is empty; give at least one seed")
    models, histories = [], []
    for seed in seeds:
        model, history = run(seed)
        models.append(model)
        histories.append(history)
    return models, histories


def seed_summary(histories, last=3):
    """What several runs of one recipe (one history per seed) agree on: for the final test
    accuracy, the test loss, the train-test gap and the test accuracy averaged over the last `last`
    epochs (steadier than one epoch), the value of each run and their mean, min and max."""
    check_int("seed_summary: last", last, 1)
    if not histories or isinstance(histories, dict):
        raise TypeError("seed_summary: histories must be a non-empty list of fit histories")
    columns = {"test_acc": [], "test_loss": [], "gap": [], "last_test_acc": []}
    for h in histories:
        m = final_metrics(h)
        columns["test_acc"].append(m["test_acc"])
        columns["test_loss"].append(m["test_loss"])
        columns["gap"].append(m["gap"])
        tail = h["test_acc"][-last:]
        columns["last_test_acc"].append(round(sum(tail) / len(tail), 2))
    return {"runs": len(histories), "last": last,
            **{name: {"values": v, "mean": round(sum(v) / len(v), 4), "min": min(v),
                      "max": max(v)} for name, v in columns.items()}}


def seed_table(histories, seeds, last=3):
    """Print one row per recipe ({name: [history per seed]}): mean and min-max over the seeds of
    the final test accuracy, test loss and train-test gap, and of the test accuracy over the last
    `last` epochs. Returns {name: seed_summary}."""
    seeds = list(seeds)
    summaries = {}
    for name, runs in histories.items():
        if len(runs) != len(seeds):
            raise ValueError(f"seed_table: {name!r} has {len(runs)} runs for {len(seeds)} seeds")
        summaries[name] = seed_summary(runs, last)
    print(f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} ({', '.join(map(str, seeds))}): "
          "mean (min to max)")
    print(f"{'':<18}{'test acc %':<21}{'test loss':<24}{'gap (points)':<21}"
          f"test acc %, last {last} epochs")
    for name, s in summaries.items():
        cells = [f"{s[k]['mean']:{f}} ({s[k]['min']:{f}} to {s[k]['max']:{f}})"
                 for k, f in (("test_acc", ".1f"), ("test_loss", ".3f"), ("gap", ".1f"),
                              ("last_test_acc", ".1f"))]
        print(f"{name:<18}{cells[0]:<21}{cells[1]:<24}{cells[2]:<21}{cells[3]}")
    if len(seeds) == 1:
        print("One seed: a difference of a point or two can be luck. SEEDS = 3 shows the spread.")
    return summaries
