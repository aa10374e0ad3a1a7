"""The lesson's train and test functions, and `fit`, which runs them for several epochs."""
import os
import random
import time
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

DEVICE_CHOICES = ("auto", "cuda", "mps", "cpu")


def seed_everything(seed=0):
    """Seed Python, NumPy and PyTorch so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _available(name):
    if name == "cuda":
        return torch.cuda.is_available()
    if name == "mps":
        return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
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


def train(model, device, train_loader, optimizer, epoch, log_interval=350, max_batches=None,
          progress=False):
    """One epoch of training; prints the lesson's log line every `log_interval` batches.

    Returns the mean training loss over the epoch's batches.
    """
    model.train()
    total_loss, n_batches = torch.zeros((), device=device), 0
    n_total = len(train_loader) if max_batches is None else min(max_batches, len(train_loader))
    batches = tqdm(train_loader, total=n_total, desc=f"epoch {epoch}", leave=False,
                   disable=not progress)
    for batch_idx, (data, target) in enumerate(batches):
        if max_batches is not None and batch_idx == max_batches:
            break
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        output = model(data)
        loss = F.nll_loss(output, target)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach()  # stays on the device: no GPU->CPU sync per batch
        n_batches += 1
        if log_interval and batch_idx % log_interval == 0:
            print('Train Epoch: {} [{:5}/{:5} ({:.0f}%)]\tLoss: {:.6f}'.format(
                epoch, batch_idx * len(data), len(train_loader.dataset),
                100. * batch_idx / len(train_loader), loss.item()))
    batches.close()
    return total_loss.item() / max(n_batches, 1)


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


def new_history():
    keys = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds")
    return {key: [] for key in keys}


def fit(model, train_loader, test_loader, optimizer, epochs, device, scheduler=None,
        train_eval_batches=20, test_batches=None, max_train_batches=None, log_interval=350,
        progress=None, history=None):
    """Train for `epochs` epochs; after each, evaluate on `train_eval_batches` training batches and
    on the test set (its first `test_batches` batches, all when None), as the lesson does.

    The scheduler, if any, steps once per epoch, after the optimizer. Returns a plain dict of
    per-epoch lists (see new_history); pass a previous history to continue it.
    Stopping the kernel (KeyboardInterrupt) ends training cleanly and keeps finished epochs.
    progress: a tqdm bar per epoch; None shows it unless LESSON_PROGRESS=0 (batch runs set that, so
    saved notebooks hold no frozen bars).
    """
    if progress is None:
        progress = os.environ.get("LESSON_PROGRESS", "1") != "0"
    history = history if history is not None else new_history()
    first = history["epoch"][-1] + 1 if history["epoch"] else 1
    try:
        for epoch in range(first, first + epochs):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            train(model, device, train_loader, optimizer, epoch, log_interval, max_train_batches,
                  progress)
            train_loss, train_acc = test(model, device, train_loader, "Train", train_eval_batches)
            test_loss, test_acc = test(model, device, test_loader, "Test", test_batches)
            print()
            if scheduler is not None:
                scheduler.step()
            row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc,
                   "test_loss": test_loss, "test_acc": test_acc,
                   "seconds": time.perf_counter() - start}
            for key, value in row.items():
                history[key].append(value)
    except KeyboardInterrupt:
        model.eval()
        print(f"Interrupted: kept the {len(history['epoch'])} finished epochs; "
              "the model holds the weights of the interrupted epoch and is in eval mode.")
    return history


def make_scheduler(optimizer, name="step", epochs=24, step_size=7, gamma=0.1):
    """One of the schedules of notebook 05, stepped once per epoch."""
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
    scheduler = make_scheduler(optimizer, name, epochs, step_size, gamma)
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # (the epoch's training steps)
        scheduler.step()
    return rates


def save_checkpoint(path, model, optimizer=None, scheduler=None, history=None):
    """Save everything needed to resume, and torch's random state. Writes a temporary file, then
    renames it, so a crash never leaves a half-written file under the real name."""
    state = {"model": model.state_dict(), "model_class": type(model).__name__,
             "torch_rng_state": torch.get_rng_state()}  # so a resumed run shuffles the same way
    if optimizer is not None:
        state["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        state["scheduler"] = scheduler.state_dict()
    if history is not None:
        state["history"] = history
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model, optimizer=None, scheduler=None, map_location="cpu",
                    restore_rng=True):
    """Load a checkpoint written by save_checkpoint into `model` (and optimizer, scheduler).

    Uses weights_only=True: a checkpoint cannot run code when loaded. Restores torch's random
    state too (restore_rng), so that resuming repeats the uninterrupted run. Returns the saved
    history (None if there is none). A checkpoint of another network raises a ValueError listing the
    missing and unexpected keys.
    """
    state = torch.load(path, map_location=map_location, weights_only=True)
    try:
        missing, unexpected = model.load_state_dict(state["model"], strict=False)
    except RuntimeError as err:  # same names, other shapes
        raise ValueError(f"{path} does not fit {type(model).__name__}: {err}") from None
    if missing or unexpected:
        raise ValueError(f"{path} holds a {state.get('model_class', 'different')} checkpoint that "
                         f"does not fit {type(model).__name__}: missing keys {missing}, "
                         f"unexpected keys {unexpected}")
    if optimizer is not None and "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and "scheduler" in state:
        scheduler.load_state_dict(state["scheduler"])
    if restore_rng and "torch_rng_state" in state:
        torch.set_rng_state(state["torch_rng_state"])
    return state.get("history")


def final_metrics(history):
    """The last epoch's numbers from a history, rounded, plus the train-test gap and total time."""
    return {"epochs": history["epoch"][-1],
            "train_acc": round(history["train_acc"][-1], 2),
            "test_acc": round(history["test_acc"][-1], 2),
            "gap": round(history["train_acc"][-1] - history["test_acc"][-1], 2),
            "test_loss": round(history["test_loss"][-1], 4),
            "best_test_acc": round(max(history["test_acc"]), 2),
            "seconds": round(sum(history["seconds"]), 1)}
