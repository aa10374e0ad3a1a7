"""The lesson's train and test functions, and `fit`, which runs them for several epochs.

Plain PyTorch, as in pytorch/examples' mnist/main.py: no argument checks in the loop. Reusing a
saved run is support/runs.py's job.
"""

import copy
import math
import random
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


def seed_everything(seed=0):
    """Seed Python, NumPy and PyTorch so that a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(model, device, train_loader, optimizer, epoch, log_interval=350, amp=False):
    """One epoch of training, as in the lesson; prints a log line every `log_interval` batches
    (0: never). amp=True runs the forward pass in bfloat16 (torch.autocast; the backward pass
    stays outside it). Returns the mean training loss over the epoch's batches."""
    model.train()
    total_loss = 0.0
    for batch_idx, (data, target) in enumerate(train_loader):
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=amp):
            output = model(data)
        loss = F.nll_loss(output.float(), target)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach()  # stays on the device: no GPU->CPU wait per batch
        if log_interval and batch_idx % log_interval == 0:
            print(
                "Train Epoch: {} [{:5}/{:5} ({:.0f}%)]\tLoss: {:.6f}".format(
                    epoch,
                    batch_idx * len(data),
                    len(train_loader.dataset),
                    100.0 * batch_idx / len(train_loader),
                    loss.item(),
                )
            )
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
            loss += F.nll_loss(output, target, reduction="sum").item()
            pred = output.argmax(dim=1, keepdim=True)  # index of the max log-probability
            correct += pred.eq(target.view_as(pred)).sum().item()
            total_pred += len(target)
    loss /= total_pred
    accuracy = 100.0 * correct / total_pred
    if verbose:
        print(
            "{} set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)".format(
                prefix, loss, correct, total_pred, accuracy
            )
        )
    return loss, accuracy


HISTORY_KEYS = (
    "epoch",
    "lr",
    "train_loss",
    "train_acc",
    "val_loss",  # empty when fit has no val_loader
    "val_acc",
    "test_loss",
    "test_acc",
    "seconds",
)
LOG_INTERVAL = 350  # batches between the lesson's log lines


def new_history():
    return {key: [] for key in HISTORY_KEYS}


def fit(
    model,
    train_loader,
    test_loader,
    optimizer,
    epochs,
    device,
    scheduler=None,
    train_eval_batches=20,
    train_eval_loader=None,
    log="lesson",
    progress=False,
    history=None,
    amp=False,
    val_loader=None,
):
    """The lesson's epoch loop plus a history: for each epoch, `train`, then `test` on
    `train_eval_batches` training batches and on the whole validation set (val_loader, when given:
    images kept apart from training, that choose the epoch).

    The test set is read only for the epochs that are reported: the last one, and the one with
    the best validation accuracy (its weights are kept in memory until the end). The other epochs'
    test_loss and test_acc are nan: nothing may be chosen on the test set.

    train_eval_loader: where to measure the training accuracy (default: train_loader; pass a
    loader without augmentation when train_loader augments). The scheduler, if any, steps once per
    epoch, after the optimizer. log: "lesson" prints the lesson's lines, "epoch" one line per
    epoch, "none" nothing. progress: a progress bar over the epochs. amp: train's forward passes
    in bfloat16 (evaluation stays in float32).
    Returns a plain dict of per-epoch lists (see new_history); pass a previous history to go on.
    Stopping the kernel (KeyboardInterrupt) ends training cleanly and keeps the finished epochs; an
    error in an epoch keeps them in the exception's .history; a loss that is not a number (nan,
    inf) stops training with a message.
    """
    held = {id(p) for p in model.parameters()}
    if not any(id(p) in held for group in optimizer.param_groups for p in group["params"]):
        raise ValueError(
            "fit: the optimizer holds none of the model's parameters, so training would change "
            "nothing: build it from this model, e.g. optim.Adam(model.parameters(), lr=1e-3)"
        )
    if scheduler is not None and getattr(scheduler, "optimizer", optimizer) is not optimizer:
        raise ValueError("fit: the scheduler was built on another optimizer; build it on this one")
    train_eval_loader = train_eval_loader or train_loader
    history = history if history is not None else new_history()
    first = history["epoch"][-1] + 1 if history["epoch"] else 1
    lesson_log = log == "lesson"
    best = None  # (validation accuracy, index, weights) of the best epoch so far
    try:
        for epoch in tqdm(range(first, first + epochs), desc="epochs", disable=not progress):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            log_interval = LOG_INTERVAL if lesson_log else 0
            epoch_loss = train(model, device, train_loader, optimizer, epoch, log_interval, amp)
            train_loss, train_acc = test(
                model, device, train_eval_loader, "Train", train_eval_batches, lesson_log
            )
            row = {"epoch": epoch, "lr": lr, "train_loss": train_loss, "train_acc": train_acc}
            if val_loader is not None:
                row["val_loss"], row["val_acc"] = test(
                    model, device, val_loader, "Validation", None, lesson_log
                )
                if best is None or row["val_acc"] > best[0]:
                    weights = copy.deepcopy(model.state_dict())
                    best = (row["val_acc"], len(history["epoch"]), weights)
            row["test_loss"], row["test_acc"] = math.nan, math.nan  # read at the end
            row["seconds"] = time.perf_counter() - start
            for key, value in row.items():  # recorded as soon as the numbers exist
                history[key].append(value)
            if lesson_log:
                print()
            elif log == "epoch":
                print(epoch_line(history))
            if not math.isfinite(epoch_loss):
                print(
                    f"Stopped: the training loss is {epoch_loss} in epoch {epoch}. The "
                    "weights diverged: try a smaller learning rate."
                )
                break
            if scheduler is not None:
                scheduler.step()
    except Exception as err:  # a loader's or the model's error: the finished epochs stay with it
        err.history = history
        if hasattr(err, "add_note"):
            err.add_note(f"fit: the {len(history['epoch'])} finished epochs are in err.history")
        raise
    except KeyboardInterrupt:
        model.eval()
        print(
            f"Interrupted: kept the {len(history['epoch'])} finished epochs (the test set not "
            "read); the model holds the weights of the interrupted epoch and is in eval mode."
        )
        return history
    if history["epoch"]:
        read_test_set(model, device, test_loader, history, best, lesson_log)
    return history


def read_test_set(model, device, test_loader, history, best=None, verbose=False):
    """The test set, read for the reported epochs: the last one (the model's weights) and, when
    `best` = (val acc, index, weights) names another, the best validation epoch (its weights,
    loaded for the reading; the last weights come back after it)."""

    def read(i):
        name = f"Test (epoch {history['epoch'][i]})"
        history["test_loss"][i], history["test_acc"][i] = test(
            model, device, test_loader, name, None, verbose
        )

    last = len(history["epoch"]) - 1
    read(last)
    if best and best[1] != last:  # the best epoch's weights for its reading, then the last back
        last_weights = copy.deepcopy(model.state_dict())
        model.load_state_dict(best[2])
        read(best[1])
        model.load_state_dict(last_weights)


def epoch_line(history, i=-1):
    """fit's one line (log="epoch") for epoch i of a history: the last one by default."""
    epoch, seconds = history["epoch"][i], history["seconds"][i]
    train_loss, train_acc = history["train_loss"][i], history["train_acc"][i]
    val = ""
    if history["val_acc"]:
        val_loss, val_acc = history["val_loss"][i], history["val_acc"][i]
        val = f"val loss {val_loss:.3f} acc {val_acc:5.1f}% | "
    test_loss, test_acc = history["test_loss"][i], history["test_acc"][i]
    test = "" if math.isnan(test_acc) else f"test loss {test_loss:.3f} acc {test_acc:5.1f}% | "
    return (
        f"epoch {epoch:2}: train loss {train_loss:.3f} acc {train_acc:5.1f}% | {val}{test}"
        f"{seconds:.0f} s"
    )


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
        return schedulers.OneCycleLR(
            optimizer, max_lr=optimizer.param_groups[0]["lr"], total_steps=epochs
        )
    raise ValueError(f"unknown schedule {name!r}; choose step, exponential, cosine or onecycle")


def lr_per_epoch(name="step", epochs=24, lr=1e-3, step_size=7, gamma=0.1):
    """The learning rate used in each epoch 1..epochs: the optimizer steps, then the scheduler."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    return scheduled_rates(
        optimizer, make_scheduler(optimizer, name, epochs, step_size, gamma), epochs
    )


def scheduled_rates(optimizer, scheduler, epochs):
    """The learning rate of each of `epochs` epochs, stepped as fit steps them: the optimizer
    (the epoch's training), then the scheduler."""
    rates = []
    for _ in range(epochs):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def best_epoch(history):
    """The index of the epoch with the highest validation accuracy (the first of equal ones):
    the epoch early stopping keeps. The test set plays no part in the choice."""
    val_acc = history["val_acc"]
    return max(range(len(val_acc)), key=lambda i: (val_acc[i], -i))


def final_metrics(history):
    """The last epoch's numbers from a history, rounded, plus the train-test gap and total time;
    with validation metrics, also the epoch of the best validation accuracy and its numbers
    (val_acc is None without them)."""
    metrics = {
        "epochs": history["epoch"][-1],
        "train_acc": round(history["train_acc"][-1], 2),
        "val_acc": round(history["val_acc"][-1], 2) if history.get("val_acc") else None,
        "test_acc": round(history["test_acc"][-1], 2),
        "gap": round(history["train_acc"][-1] - history["test_acc"][-1], 2),
        "test_loss": round(history["test_loss"][-1], 4),
        "seconds": round(sum(history.get("seconds", [])), 1),
    }
    if history.get("val_acc"):
        i = best_epoch(history)
        metrics.update(
            best_epoch=history["epoch"][i],
            best_val_acc=round(history["val_acc"][i], 2),
            test_acc_at_best=round(history["test_acc"][i], 2),
        )
    return metrics
