"""Saving a run and reusing it: a notebook run again loads what an identical run trained
(train_or_load) instead of training it twice."""

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path

import torch

from ..paths import CHECKPOINT_DIR, REPO_ROOT
from ..training import epoch_line
from .checks import check_bool, check_history, check_module


def save_checkpoint(path, model, optimizer=None, scheduler=None, history=None, key=None):
    """Save everything needed to resume, and torch's random state.

    Writes a temporary file of its own in the same folder, then renames it over `path`: a crash or
    another process saving at the same time never leaves a half-written file under the real name.
    `key` (a dict) records what produced the checkpoint (see train_or_load).
    """
    check_module("model", model)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    state = {
        "model": model.state_dict(),
        "model_class": type(model).__name__,
        "torch_rng_state": torch.get_rng_state(),
    }  # so a resumed run shuffles the same way
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
        raise ValueError(
            f"{path} holds a {state.get('model_class', 'different')} checkpoint that "
            f"does not fit {type(model).__name__}: missing keys {missing}, "
            f"unexpected keys {unexpected}"
        )
    shapes = [
        f"{k}: saved {list(saved[k].shape)}, model {list(own[k].shape)}"
        for k in own
        if saved[k].shape != own[k].shape
    ]
    if shapes:
        raise ValueError(
            f"{path} does not fit {type(model).__name__}: other shapes (" + "; ".join(shapes) + ")"
        )
    if optimizer is not None and "optimizer" in state:
        groups = state["optimizer"]["param_groups"]
        own_groups = optimizer.state_dict()["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in own_groups]:
            raise ValueError(
                f"{path}: the saved optimizer was built for other parameters "
                f"({[len(g['params']) for g in groups]} per group, this one has "
                f"{[len(g['params']) for g in own_groups]})"
            )


def load_checkpoint(
    path, model, optimizer=None, scheduler=None, map_location="cpu", restore_rng=True
):
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
        raise ValueError(
            f"name must be a short run name such as 'baseline' (no slashes), got {name!r}"
        )
    if not isinstance(key, dict):
        raise TypeError(f"key must be a dict of the run's settings, got {type(key).__name__}")
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    return Path(folder or CHECKPOINT_DIR) / f"{name}-{digest}.pt"


def _complete(history, key):
    """A history worth keeping: every epoch the key asks for, and finite losses."""
    epochs = history.get("epoch", []) if isinstance(history, dict) else []
    return (
        len(epochs) > 0
        and len(epochs) == key.get("epochs", len(epochs))
        and all(math.isfinite(v) for v in history["train_loss"] + history["test_loss"])
    )


def train_or_load(name, key, model, train_fn, folder=None, replay=True):
    """Load the model and history that an identical earlier run saved, or train and save them.

    key: a dict of everything that changes the result (network, seed, epochs, data, QUICK...);
    only a checkpoint saved with an equal key and a complete history is used. train_fn() trains
    `model` and returns its history; an incomplete run (interrupted, or stopped on a nan loss) is
    not saved. Prints one line saying which happened; a loaded run also prints its saved epochs,
    one line each as fit(log="epoch") does, unless replay=False. Returns the history.
    """
    path = cache_path(name, key, folder)
    check_module("model", model)
    check_bool("replay", replay)
    if not callable(train_fn):
        raise TypeError(
            f"train_fn must be a function that trains the model and returns fit's "
            f"history, got {train_fn!r}"
        )
    if path.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("key") == key and _complete(state.get("history"), key):
                _check_fits(path, model, None, state)  # before anything changes
                history = state["history"]
                if replay:  # built before loading: a history it cannot show is not trusted
                    epochs = [epoch_line(history, i) for i in range(len(history["epoch"]))]
                model.load_state_dict(state["model"])
                print(
                    f"{name}: loaded the run saved in {_shown(path)} ({history['epoch'][-1]} "
                    "epochs, same network, seed, data and settings): no training needed."
                    + (" Its saved epochs:" if replay else "")
                )
                if replay:
                    print("\n".join(epochs))
                return history
            print(f"{name}: {_shown(path)} was saved with other settings: training again.")
        except Exception as err:  # a damaged or foreign file: never trust it, train again
            print(
                f"{name}: {_shown(path)} could not be read ({type(err).__name__}): training again."
            )
    history = train_fn()
    check_history("train_fn()'s result", history)
    if not _complete(history, key):
        print(f"{name}: the run is incomplete ({len(history['epoch'])} epochs): not saved.")
        return history
    save_checkpoint(path, model, history=history, key=key)
    print(
        f"{name}: trained {len(history['epoch'])} epochs in {sum(history['seconds']):.0f} s, "
        f"saved to {_shown(path)}."
    )
    return history


def _shown(path):
    """A path relative to the repository when it is inside it (no machine paths in outputs)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return Path(path).name
