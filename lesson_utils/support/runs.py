"""Train once, reuse: `fit_or_load` is `fit` that loads an identical earlier run instead of
training it again (a notebook calls it as `lesson.fit`).

A saved run is reused only when everything that decides its result is equal, and that is computed
from the objects themselves, never typed: the network (class, repr, parameter shapes, the source of
its classes, its initial weights, which parameters train), torch's random state (the seed: shuffling
and dropout masks), the optimizer (class, every param_group's settings and members, its state), the
scheduler (class and state), each loader (its images and labels, batch size, shuffling,
augmentation, transform), the epochs, the train-evaluation settings, the device type, QUICK, and the
source of fit, train and test. Not in the key, on purpose: how much fit prints, and the torch
version (an upgrade would otherwise retrain every saved run).
"""

import copy
import functools
import glob
import hashlib
import inspect
import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import training
from ..data import TensorLoader
from ..paths import CHECKPOINT_DIR, shown


def _bytes_of(tensor):
    """The raw bytes of a tensor, whatever its dtype or device."""
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def tensors_digest(tensors):
    """A hash of named tensors (a state_dict): names, dtypes, shapes and values."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        h.update(f"{name}|{t.dtype}|{list(t.shape)}|".encode())
        h.update(_bytes_of(t))
    return h.hexdigest()


def _array_digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(f"{a.dtype}|{a.shape}|".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def source_of(function):
    """The source of a function (a cell's function too); its bytecode when no source exists."""
    function = inspect.unwrap(function)
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        code = getattr(function, "__code__", None)
        if code is None:
            return f"{type(function).__module__}.{type(function).__qualname__}"
        return code.co_code.hex() + repr(code.co_consts)


def plain(value):
    """`value` as JSON-able data that is the same from one process to the next (no addresses)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, torch.Tensor):
        return {"tensor": tensors_digest({"": value})}
    if isinstance(value, np.ndarray):
        return {"array": _array_digest(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, functools.partial):
        return {
            "partial": plain(value.func),
            "args": plain(value.args),
            "keywords": plain(value.keywords),
        }
    if inspect.isfunction(value) or inspect.ismethod(value):
        return {"function": value.__qualname__, "source": source_of(value)}
    if callable(value) and type(value).__module__.startswith(("torch", "torchvision")):
        return repr(value)  # a transform or a layer: its repr lists its settings
    if callable(value):  # an object of the student's own class
        return {"callable": repr(value), "source": source_of(type(value).__call__)}
    return repr(value)


def model_key(model):
    """The network: its class, layers and shapes, the source of its own classes, its initial
    weights (the seed, or loaded or pretrained weights) and which parameters train."""
    state = model.state_dict()
    classes = {
        f"{type(m).__module__}.{type(m).__qualname__}": type(m)
        for m in model.modules()
        if not type(m).__module__.startswith("torch.")
    }
    return {
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "repr": repr(model),
        "layers": [f"{type(m).__module__}.{type(m).__qualname__}" for m in model.modules()],
        "shapes": {k: list(v.shape) for k, v in state.items()},
        "source": {
            name: {k: source_of(v) for k, v in vars(cls).items() if inspect.isfunction(v)}
            for name, cls in sorted(classes.items())
        },
        "weights": tensors_digest(state),
        "trainable": [n for n, p in model.named_parameters() if p.requires_grad],
        "training_mode": model.training,
    }


def optimizer_key(optimizer, model):
    """The optimizer's class, each param group's settings and the parameters it holds (by name in
    the model), and its state (empty for a new optimizer)."""
    names = {id(p): n for n, p in model.named_parameters()}
    groups = []
    for group in optimizer.param_groups:
        settings = {k: plain(v) for k, v in group.items() if k != "params"}
        members = [names.get(id(p), f"not in the model: {list(p.shape)}") for p in group["params"]]
        groups.append({**settings, "params": members})
    state = optimizer.state_dict()["state"]
    tensors = {
        f"{i}.{k}": v for i, s in state.items() for k, v in s.items() if isinstance(v, torch.Tensor)
    }
    return {
        "class": f"{type(optimizer).__module__}.{type(optimizer).__qualname__}",
        "groups": groups,
        "state": tensors_digest(tensors) if tensors else None,
    }


def scheduler_key(scheduler):
    if scheduler is None:
        return None
    functions = {  # LambdaLR's lambdas are not in its state_dict
        k: plain(v)
        for k, v in vars(scheduler).items()
        if callable(v) or (isinstance(v, list) and v and all(callable(f) for f in v))
    }
    return {
        "class": f"{type(scheduler).__module__}.{type(scheduler).__qualname__}",
        "state": plain(scheduler.state_dict()),
        "functions": functions,
    }


def dataset_key(dataset):
    """A dataset's images and labels (a hash), its transform, and for a Subset its indices."""
    if hasattr(dataset, "indices") and hasattr(dataset, "dataset"):  # torch.utils.data.Subset
        return {
            "indices": _array_digest(np.asarray(dataset.indices)),
            "of": dataset_key(dataset.dataset),
        }
    key = {"class": type(dataset).__qualname__, "length": len(dataset)}
    if hasattr(dataset, "tensors"):  # torch.utils.data.TensorDataset (e.g. computed features)
        key["tensors"] = _array_digest(*(t.detach().cpu() for t in dataset.tensors))
    elif hasattr(dataset, "data") and hasattr(dataset, "targets"):
        key["images"] = _array_digest(np.asarray(dataset.data), np.asarray(dataset.targets))
    else:
        key["repr"] = repr(dataset)
    key["transform"] = plain(getattr(dataset, "transform", None))
    return key


def loader_key(loader):
    """What a loader feeds a run: its data, batch size, order and augmentation."""
    if isinstance(loader, TensorLoader):
        return {
            "class": "TensorLoader",
            "images": _array_digest(loader.images.cpu(), loader.labels.cpu()),
            "batch_size": loader.batch_size,
            "shuffle": loader.shuffle,
            "augment": plain(loader.augment),
            "source": source_of(TensorLoader.__iter__),
        }
    return {
        "class": type(loader).__qualname__,
        "dataset": dataset_key(loader.dataset),
        "batch_size": getattr(loader, "batch_size", None),
        "sampler": type(getattr(loader, "sampler", None)).__qualname__,
        "drop_last": getattr(loader, "drop_last", None),
        "collate_fn": plain(getattr(loader, "collate_fn", None)),
    }


def run_key(
    model,
    train_loader,
    test_loader,
    optimizer,
    epochs,
    device,
    scheduler=None,
    train_eval_batches=20,
    train_eval_loader=None,
    quick=False,
    amp=False,
    val_loader=None,
):
    """Everything that decides the result of fit(...) with these arguments, as a dict."""
    device = torch.device(device)
    train = loader_key(train_loader)  # hashes every training image: once
    return {
        "model": model_key(model),
        # the seed, and so the shuffling and the dropout masks
        "random_state": tensors_digest(_random_states(device)),
        "optimizer": optimizer_key(optimizer, model),
        "scheduler": scheduler_key(scheduler),
        "train_loader": train,
        "test_loader": loader_key(test_loader),
        # fit measures the training accuracy on train_loader unless told otherwise
        "train_eval_loader": train if train_eval_loader is None else loader_key(train_eval_loader),
        "train_eval_batches": train_eval_batches,
        "val_loader": None if val_loader is None else loader_key(val_loader),
        "epochs": epochs,
        "amp": amp,
        "device": device.type,
        "quick": quick,
        "code": {f.__name__: source_of(f) for f in (training.fit, training.train, training.test)},
    }


def key_digest(key):
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _summary(history):
    line = (
        f"{len(history['epoch'])} epochs, test acc {history['test_acc'][-1]:.1f}%, "
        f"test loss {history['test_loss'][-1]:.3f}"
    )
    if history.get("val_acc"):
        m = training.final_metrics(history)
        line += f"; best val epoch {m['best_epoch']}: test acc {m['test_acc_at_best']:.1f}%"
    return line


def _complete(history, epochs):
    return len(history["epoch"]) == epochs and all(
        math.isfinite(v) for v in history["train_loss"] + history["test_loss"]
    )


def _random_states(device):
    """torch's random state: the CPU generator's, and the GPU's when the run is on one."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _saved_key(path):
    """The key of the run saved in `path`, or None when the file cannot be read."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True).get("key")
    except Exception:
        return None


def save_run(path, key, model, optimizer, scheduler, history, device):
    """Write the run to a temporary file beside `path`, then rename it: a crash or another process
    never leaves a half-written file under the real name."""
    state = {
        "key": key,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "history": history,
        "random_state_after": _random_states(device),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save(state, file)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _load(path, key, model, optimizer, scheduler, device):
    """The saved history when `path` holds this very run, after restoring the model, optimizer,
    scheduler and random state as training left them; None otherwise. A part that does not fit
    raises, with the model and optimizer as they were."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state.get("key") != key or not _complete(state["history"], key["epochs"]):
        return None
    rng = state["random_state_after"]  # what follows is the same, loaded or trained
    before = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
    except BaseException:  # a part that does not fit: the model and optimizer as they were
        model.load_state_dict(before[0])
        optimizer.load_state_dict(before[1])
        raise
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    return state["history"]


def fit_or_load(
    model,
    train_loader,
    test_loader,
    optimizer,
    epochs,
    device,
    scheduler=None,
    *,
    name="run",
    quick=False,
    folder=None,
    train_eval_batches=20,
    train_eval_loader=None,
    amp=False,
    val_loader=None,
    **fit_options,
):
    """fit(...), unless the very same run was saved before: then load it. Prints one line saying
    which, with the final numbers. An incomplete run (interrupted, or stopped on a nan loss) is
    not saved; a save that fails warns and the trained model and history are returned anyway.
    `name` only labels the file and the line; fit_options (log, progress) go to fit: they do not
    change the result."""
    device = torch.device(device)
    # what fit gets is what the key holds: one set of settings for both
    settings = dict(
        scheduler=scheduler,
        train_eval_batches=train_eval_batches,
        train_eval_loader=train_eval_loader,
        amp=amp,
        val_loader=val_loader,
    )
    key = run_key(
        model, train_loader, test_loader, optimizer, epochs, device, quick=quick, **settings
    )
    folder = Path(folder or CHECKPOINT_DIR)
    digest = key_digest(key)
    for found in sorted(glob.glob(str(folder / f"*-{digest}.pt"))):
        try:
            history = _load(found, key, model, optimizer, scheduler, device)
        except Exception as err:  # a damaged or foreign file: never trusted, never deleted
            print(f"{name}: {shown(found)} could not be read ({type(err).__name__}): ignored.")
            continue
        if history is not None:
            print(
                f"{name}: loaded {shown(found)}, the same run trained before: {_summary(history)}"
            )
            return history
    history = training.fit(
        model, train_loader, test_loader, optimizer, epochs, device, **settings, **fit_options
    )
    if not _complete(history, epochs):
        print(f"{name}: incomplete ({len(history['epoch'])} of {epochs} epochs): not saved.")
        return history
    path = folder / f"{name}-{digest}.pt"
    if path.exists():  # never replaced silently
        if _saved_key(path) == key:  # another kernel trained the same run meanwhile
            print(f"{name}: {shown(path)} was saved meanwhile by another run of the same training.")
        else:  # the damaged file found above
            print(f"{name}: replacing {shown(path)}, which could not be read.")
    try:
        save_run(path, key, model, optimizer, scheduler, history, device)
    except Exception as err:  # a full disk, a read-only folder: the trained work is kept
        warnings.warn(
            f"{name}: the run could not be saved to {path} ({type(err).__name__}: {err}); the "
            "trained model and its history are kept in memory only.",
            stacklevel=2,
        )
        print(
            f"{name}: trained {_summary(history)}, in {sum(history['seconds']):.0f} s (not saved)"
        )
        return history
    print(
        f"{name}: trained {_summary(history)}, in {sum(history['seconds']):.0f} s; "
        f"saved to {shown(path)}"
    )
    return history
