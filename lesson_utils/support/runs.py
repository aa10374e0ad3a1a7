"""Train once, reuse: `fit_or_load` is `fit` that loads an identical earlier run instead of
training it again (a notebook calls it as `lesson.fit`).

A saved run is reused only when training would compute the same thing. Two parts decide it:

* a description, computed from the objects, never typed: the network (class, repr, parameter
  shapes, the source of its classes, its initial weights, which parameters train), torch's random
  state (the seed: shuffling and dropout masks), the optimizer (class, every param_group's
  settings and members, its state), the scheduler (class and state), each loader (its images and
  labels, batch size, shuffling, augmentation, transform), fit's settings, the device type, QUICK,
  and the source of fit, train and test;
* what training does, measured: on copies of the network, optimizer and scheduler, under a fixed
  seed, a probe batch of the training loader's first images (as its augmentation gives them) goes
  forward and backward through the network in training mode, as `train` does it, then forward in
  eval mode; the optimizer makes two steps from fixed gradients; the scheduler steps through the
  run's epochs; the test, validation and train-evaluation loaders give their first images.
  Recorded: the batches, the loss, the gradients, the outputs, the updates and the learning rate
  of each epoch. That sees what no description does: an activation passed
  as an argument, a helper function or a module-level constant that `forward` reads, an attribute
  set after construction, a custom optimizer's step, a scheduler's lambda reading a global.
  Nothing the run uses is changed (its random state, weights and optimizer state stay as they
  were). The fingerprint is compared with a relative tolerance (FINGERPRINT_TOLERANCE), not hashed:
  a run recomputed with another number of threads, or on a GPU whose kernels are not
  deterministic, differs in the last bits and still loads; an edit that changes what training
  computes changes it far more.

Not in the key, on purpose: how much fit prints, and the torch version (an upgrade would otherwise
retrain every saved run). `reuse=False`, or LESSON_RETRAIN=1 in the environment, trains again.
A saved file carries the SHA-256 of its contents: a damaged file is never loaded.
"""

import copy
import functools
import glob
import hashlib
import inspect
import io
import json
import math
import os
import random
import re
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import training
from ..data import TensorLoader
from ..paths import CHECKPOINT_DIR, shown
from .checks import read_switch

# Bump when the key's or the file's layout changes: runs saved before are then never matched.
FORMAT = 3
PROBE_IMAGES = 16  # the probe batch
PROBE_SEED = 0
# Two fingerprints match when each part differs by less than this, relative to its size: last-bit
# differences (another thread count: about 1e-7) load, an edit of the computation does not.
FINGERPRINT_TOLERANCE = 1e-4
# fit's arguments that only change what it prints: not in the key
OUTPUT_ONLY = ("log", "progress")


def _settings_of_fit():
    """fit's settings after its six positional arguments, with fit's own defaults: the one list
    that the key, the saved run and fit share."""
    parameters = list(inspect.signature(training.fit).parameters.values())[6:]
    return {p.name: p.default for p in parameters if p.name not in OUTPUT_ONLY + ("history",)}


FIT_SETTINGS = _settings_of_fit()


def fit_settings(**given):
    """fit's settings with `given` in place of the defaults; an unknown name is refused."""
    settings = dict(FIT_SETTINGS)
    unknown = sorted(set(given) - set(settings))
    if unknown:
        raise TypeError(
            f"lesson.fit got unknown argument(s) {', '.join(unknown)}; fit's settings are "
            f"{', '.join(settings)} ({', '.join(OUTPUT_ONLY)} only change what it prints)"
        )
    settings.update(given)
    return settings


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
    if isinstance(value, np.generic):  # NumPy's numbers compute as Python's
        value = value.item()
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


def run_key(model, train_loader, test_loader, optimizer, epochs, device, quick=False, **given):
    """The description of fit(...) with these arguments, as a dict (see the module's docstring);
    `given`: fit's settings (scheduler, val_loader, amp...)."""
    settings = fit_settings(**given)
    device = torch.device(device)
    train = loader_key(train_loader)  # hashes every training image: once
    tel = settings["train_eval_loader"]
    val = settings["val_loader"]
    return {
        "format": FORMAT,
        "model": model_key(model),
        # the seed, and so the shuffling and the dropout masks
        "random_state": tensors_digest(_random_states(device)),
        "optimizer": optimizer_key(optimizer, model),
        "scheduler": scheduler_key(settings["scheduler"]),
        "train_loader": train,
        "test_loader": loader_key(test_loader),
        # fit measures the training accuracy on train_loader unless told otherwise
        "train_eval_loader": train if tel is None else loader_key(tel),
        "train_eval_batches": settings["train_eval_batches"],
        "val_loader": None if val is None else loader_key(val),
        "epochs": epochs,
        "amp": settings["amp"],
        "device": device.type,
        "quick": quick,
        "code": {f.__name__: source_of(f) for f in (training.fit, training.train, training.test)},
    }


def key_digest(key):
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _probe_batch(loader):
    """The loader's first PROBE_IMAGES images and labels, as its augmentation (or its dataset's
    transform) gives them under the caller's fixed seed."""
    if isinstance(loader, TensorLoader):  # its own batches, in order: no random number drawn
        probe = copy.copy(loader)
        probe.shuffle, probe.batch_size = False, PROBE_IMAGES
        x, y = next(iter(probe))
    else:
        dataset = loader.dataset
        items = [dataset[i] for i in range(min(PROBE_IMAGES, len(dataset)))]
        x, y = torch.utils.data.default_collate(items)
    return x, y


def _projection(tensors, seed=PROBE_SEED):
    """Each tensor as three numbers: its sum, its norm and its dot product with a fixed random
    vector (one row per tensor): a change anywhere in a tensor changes them."""
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for t in tensors:
        t = t.detach().float().cpu().reshape(-1)
        r = torch.randn(t.numel(), generator=generator)
        rows.append(torch.stack([t.sum(), t.norm(), t @ r]))
    return torch.stack(rows).double() if rows else torch.zeros(0, 3, dtype=torch.float64)


def fingerprint(
    model, train_loader, optimizer, epochs, device, scheduler=None, amp=False, eval_loaders=()
):
    """What training computes, measured on copies under a fixed seed (see the module's
    docstring): {part: a float64 tensor}; eval_loaders (test, validation...): the first images
    each gives (a transform reading a global changes them). Nothing the run uses changes: weights,
    optimizer and scheduler state, and torch's, NumPy's and Python's random states are as before."""
    device = torch.device(device)
    cuda = [device] if device.type == "cuda" else []
    numpy_state, python_state = np.random.get_state(), random.getstate()
    try:
        with torch.random.fork_rng(devices=cuda), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(PROBE_SEED)
            np.random.seed(PROBE_SEED)
            random.seed(PROBE_SEED)
            behaviour = _measure(model, train_loader, optimizer, epochs, device, scheduler, amp)
            evaluated = [_probe_batch(loader)[0] for loader in eval_loaders if loader is not None]
            return {**behaviour, "evaluation": _projection(evaluated)}
    except Exception as err:  # fit meets the same error, and says it where the student looks
        return {"error": f"{type(err).__name__}: {err}"}
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


def _measure(model, train_loader, optimizer, epochs, device, scheduler, amp):
    batch = [t.to(device) for t in _probe_batch(train_loader)]
    net, opt, sched = copy.deepcopy((model, optimizer, scheduler))
    # the network: one forward and backward pass in training mode, as train does them
    net.train()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        output = net(batch[0])
    loss = F.nll_loss(output.float(), batch[1])
    loss.backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    # then in eval mode (dropout off, BatchNorm's running statistics just updated)
    net.eval()
    with torch.no_grad():
        outputs = net(batch[0]).float()
    # the optimizer: two steps from fixed gradients (from the probe's own, Adam would turn their
    # rounding noise into full-size steps where a gradient is zero, e.g. a bias before BatchNorm)
    params = [p for group in opt.param_groups for p in group["params"]]
    before = [p.detach().clone() for p in params]
    generator = torch.Generator().manual_seed(PROBE_SEED)
    for _ in range(2):
        for p in params:
            g = torch.randn(p.shape, generator=generator)
            p.grad = g.to(p.device, p.dtype) if p.requires_grad else None
        opt.step()
    rates = []
    if sched is not None:
        for _ in range(epochs):  # as fit steps it: once per epoch, after the optimizer
            rates.append([group["lr"] for group in opt.param_groups])
            sched.step()
        rates.append([group["lr"] for group in opt.param_groups])  # the rate training leaves
    return {
        "batch": _projection([batch[0]]),
        "loss": torch.tensor([loss.item()], dtype=torch.float64),
        "gradients": _projection(grads),
        "outputs": outputs.detach().cpu().double(),
        "updates": _projection([p.detach() - b for p, b in zip(params, before)]),
        "rates": torch.tensor(rates, dtype=torch.float64),
    }


def same_behaviour(a, b, tolerance=FINGERPRINT_TOLERANCE):
    """Whether two fingerprints match: the same parts, each within `tolerance` of the other
    relative to its size (an error's message must be equal)."""
    if a.keys() != b.keys():
        return False
    for part in a:
        x, y = a[part], b[part]
        if isinstance(x, str) or isinstance(y, str) or x.shape != y.shape:
            if not (isinstance(x, str) and isinstance(y, str) and x == y):
                return False
        elif not (torch.isfinite(x).all() and torch.isfinite(y).all()):
            if not torch.equal(x, y):  # a nan or inf: equal or not the same
                return False
        elif x.numel():
            scale = x.abs().amax(dim=0, keepdim=True) if x.dim() > 1 else x.abs().max()
            if ((x - y).abs() > tolerance * scale + 1e-12).any():
                return False
    return True


def _summary(history):
    """The run in a few numbers: the last epoch's validation and test accuracy, and the epoch
    validation chose, with its own."""
    last = f"{len(history['epoch'])} epochs, last: "
    if history.get("val_acc"):
        m = training.final_metrics(history)
        last += f"val {history['val_acc'][-1]:.1f}%, "
    line = last + f"test {history['test_acc'][-1]:.1f}%"
    if history.get("val_acc"):
        line += f"; best val epoch {m['best_epoch']}: val {m['best_val_acc']:.1f}%"
        line += f", test {m['test_acc_at_best']:.1f}%"
    return line


def _complete(history, epochs):
    return (
        len(history["epoch"]) == epochs
        and all(math.isfinite(v) for v in history["train_loss"])
        and math.isfinite(history["test_loss"][-1])
    )


def _random_states(device):
    """torch's random state: the CPU generator's, and the GPU's when the run is on one."""
    states = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def _python_numbers(value):
    """`value` with NumPy's scalars as Python's (a StepLR(step_size=np.int64(7)) state): a saved
    run holds only what torch.load(weights_only=True) reads back."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {k: _python_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_python_numbers(v) for v in value)
    return value


class DamagedRun(Exception):
    """A saved run whose contents are not what was written (its SHA-256 differs)."""


def _read(path):
    """The run saved in `path`: its contents checked against the SHA-256 written with them, read
    without running any code (weights_only). Raises on a damaged or foreign file."""
    outer = torch.load(path, map_location="cpu", weights_only=True)
    payload = outer["payload"]
    if hashlib.sha256(payload).hexdigest() != outer["sha256"]:
        raise DamagedRun("its contents do not match the SHA-256 saved with them")
    return torch.load(io.BytesIO(payload), map_location="cpu", weights_only=True)


def _saved(path):
    """The run saved in `path`, or None when the file cannot be read."""
    try:
        return _read(path)
    except Exception:
        return None


def save_run(path, key, behaviour, model, optimizer, scheduler, history, device, seed=None):
    """Write the run to a temporary file beside `path`, then rename it: a crash or another process
    never leaves a half-written file under the real name. The file holds the run's contents and
    their SHA-256."""
    state = {
        "key": key,
        "fingerprint": behaviour,
        "model": model.state_dict(),
        "optimizer": _python_numbers(optimizer.state_dict()),
        "scheduler": _python_numbers(scheduler.state_dict()) if scheduler is not None else None,
        "history": _python_numbers(history),
        "random_state_after": _random_states(device),
        "seed": seed,
        "saved": time.strftime("%Y-%m-%d %H:%M"),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name[:40] + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            torch.save({"sha256": hashlib.sha256(payload).hexdigest(), "payload": payload}, file)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a checkpoint is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _is_this_run(state, key, behaviour):
    return (
        state is not None
        and state.get("key") == key
        and same_behaviour(state.get("fingerprint") or {}, behaviour)
        and _complete(state["history"], key["epochs"])
    )


def _restore(state, model, optimizer, scheduler, device):
    """Put the model, optimizer, scheduler and random state as training left them; a part that
    does not fit raises, with the model and optimizer as they were."""
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
    rng = state["random_state_after"]  # what follows is the same, loaded or trained
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and device.type == "cuda":
        torch.cuda.set_rng_state(rng["cuda"], device)
    return state["history"]


RETRAIN_HINT = "lesson.fit(..., reuse=False) or LESSON_RETRAIN=1 trains it again"


def retrain_from_environment():
    """LESSON_RETRAIN, read as a switch (checks.read_switch): on trains every run again."""
    value = os.environ.get("LESSON_RETRAIN", "")
    return read_switch("LESSON_RETRAIN", value, "train every run again", "reuse saved runs")


def file_name(name, digest, n=1):
    """The file of a run: its name (letters, digits, '-', '_' and '.' kept, at most 60
    characters) and the digest of its description; n > 1 for another behaviour of it."""
    label = re.sub(r"[^\w.-]+", "_", str(name)).strip("._")[:60] or "run"
    return f"{label}-{digest}{'' if n == 1 else f'-{n}'}.pt"


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
    reuse=True,
    **options,
):
    """fit(...), unless the very same run was saved before: then load it. Prints one line saying
    which, with the final numbers. reuse=False (or LESSON_RETRAIN=1) trains again and replaces the
    saved run of the same training. An incomplete run (interrupted, or stopped on a nan loss) is
    not saved; a save that fails warns, and the trained model and history are returned anyway.
    `name` only labels the file and the line; options: fit's settings (val_loader, amp...), which
    the key holds, and log and progress, which only change what fit prints."""
    device = torch.device(device)
    printing = {k: options.pop(k) for k in OUTPUT_ONLY if k in options}
    settings = fit_settings(scheduler=scheduler, **options)  # what fit gets is what the key holds
    reuse = reuse and not retrain_from_environment()
    seed = torch.initial_seed()
    label = f"{name}, seed {seed}"  # each line names its recipe and seed
    key = run_key(model, train_loader, test_loader, optimizer, epochs, device, quick, **settings)
    evaluated = (test_loader, settings["val_loader"], settings["train_eval_loader"])
    behaviour = fingerprint(
        model,
        train_loader,
        optimizer,
        epochs,
        device,
        settings["scheduler"],
        settings["amp"],
        evaluated,
    )
    folder = Path(folder or CHECKPOINT_DIR)
    digest = key_digest(key)
    candidates = sorted(glob.glob(str(folder / f"*-{digest}.pt")))
    candidates += sorted(glob.glob(str(folder / f"*-{digest}-*.pt")))
    same = None  # the file that holds this very run
    for found in candidates:
        try:
            state = _read(found)
        except Exception as err:  # a damaged or foreign file: never trusted, never deleted
            print(f"{name}: {shown(found)} could not be read ({type(err).__name__}): ignored.")
            continue
        if not _is_this_run(state, key, behaviour):
            continue
        same = Path(found)
        if reuse:
            history = _restore(state, model, optimizer, settings["scheduler"], device)
            print(
                f"{label}: loaded the run saved on {state['saved']} ({_summary(history)}) "
                f"instead of training it again; {RETRAIN_HINT}."
            )
            return history
    history = training.fit(
        model, train_loader, test_loader, optimizer, epochs, device, **settings, **printing
    )
    if not _complete(history, epochs):
        print(f"{label}: incomplete ({len(history['epoch'])} of {epochs} epochs): not saved.")
        return history
    trained = f"{label}: trained {_summary(history)}, in {sum(history['seconds']):.0f} s"
    try:  # every way a save can fail keeps the trained work
        path = same or _free_path(folder, name, digest, key, behaviour)
        replaced = "; it replaces the saved run of the same training" if same else ""
        save_run(
            path, key, behaviour, model, optimizer, settings["scheduler"], history, device, seed
        )
    except Exception as err:  # a full disk, a read-only folder, a name the disk refuses
        warnings.warn(
            f"{name}: the run could not be saved in {folder} ({type(err).__name__}: {err}); the "
            "trained model and its history are kept in memory only.",
            stacklevel=2,
        )
        print(f"{trained} (not saved)")
        return history
    print(f"{trained}; saved to {shown(path)}{replaced}")
    return history


def _free_path(folder, name, digest, key, behaviour):
    """Where to save a new run: the first name that holds no other run. A file that holds this
    very run (saved meanwhile by another kernel) is said as such; a damaged one is replaced."""
    for n in range(1, 1000):
        path = folder / file_name(name, digest, n)
        if not path.exists():
            return path
        state = _saved(path)
        if state is None:
            print(f"{name}: replacing {shown(path)}, which could not be read.")
            return path
        if _is_this_run(state, key, behaviour):
            print(f"{name}: {shown(path)} was saved meanwhile by another run of the same training.")
            return path
    raise FileExistsError(f"999 other runs are saved under {folder / file_name(name, digest)}")
