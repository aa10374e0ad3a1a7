"""Saved runs (support/runs.py): a run is reused only when everything that decides its result is
equal, and the key is computed from the objects, never typed. Each case trains for real, on a few
dozen images, and sees whether fit_or_load trained or loaded."""

import copy
import functools
import json
import os
import random
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.optim as optim

from lesson_utils import training
from lesson_utils.data import ArrayDataset, TensorLoader, augment_batch, cifar10_transform
from lesson_utils.models import BatchNormConvNet, ConvNet, DropoutConvNet
from lesson_utils.support import runs
from lesson_utils.support.runs import fit_or_load, key_digest, run_key

sys.path.insert(0, os.path.dirname(__file__))
import edits  # noqa: E402  (tests/edits.py: the everyday edits)


def tiny_set(n=48, seed=0):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    return ArrayDataset(data, (np.arange(n) % 10).tolist(), cifar10_transform())


TRAIN, VAL, TEST = tiny_set(48, 0), tiny_set(16, 3), tiny_set(32, 1)


def recipe(
    net=ConvNet,
    seed=0,
    lr=1e-3,
    opt=optim.Adam,
    scheduler=None,
    epochs=1,
    batch_size=16,
    shuffle=True,
    augment=None,
    train_set=TRAIN,
    train_eval_batches=2,
    train_eval_loader=None,
    quick=True,
    prepare=None,
    amp=False,
    val_set=VAL,
):
    """The arguments of one small run, built from scratch as a notebook cell builds them."""
    torch.manual_seed(seed)
    model = net()
    if prepare:
        prepare(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = opt(trainable, lr=lr)
    return dict(
        model=model,
        train_loader=TensorLoader(train_set, batch_size, shuffle=shuffle, augment=augment),
        test_loader=TensorLoader(TEST, 16, shuffle=False),
        optimizer=optimizer,
        epochs=epochs,
        device="cpu",
        scheduler=scheduler(optimizer) if scheduler else None,
        train_eval_batches=train_eval_batches,
        train_eval_loader=train_eval_loader,
        quick=quick,
        amp=amp,
        val_loader=TensorLoader(val_set, 16, shuffle=False),
    )


def run(folder, capsys, **changes):
    """Train (or load) one run; 'trained' or 'loaded', and the history."""
    history = fit_or_load(**recipe(**changes), name="run", folder=folder, log="none")
    out = capsys.readouterr().out
    assert out.count("\n") == 1, out  # one line, whichever happened
    return ("loaded" if ": loaded " in out else "trained"), history


def freeze_conv1(model):
    model.conv1.requires_grad_(False)


def zero_fc2(model):
    nn.init.zeros_(model.fc2.weight)


CHANGES = {
    "network class": dict(net=DropoutConvNet),
    "dropout probabilities (repr)": dict(net=functools.partial(DropoutConvNet, 0.1, 0.1, 0.6)),
    "parameter shapes": dict(net=lambda: _wider_head()),
    "seed (initial weights, order)": dict(seed=1),
    "loaded weights": dict(prepare=zero_fc2),
    "which parameters train": dict(prepare=freeze_conv1),
    "optimizer class": dict(opt=optim.AdamW),
    "learning rate": dict(lr=1e-4),
    "scheduler": dict(scheduler=lambda o: optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.1)),
    "scheduler settings": dict(
        scheduler=lambda o: optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.5)
    ),
    "training data": dict(train_set=tiny_set(48, 2)),
    "batch size": dict(batch_size=8),
    "shuffling": dict(shuffle=False),
    "augmentation": dict(augment=functools.partial(augment_batch, flip=True, crop_padding=4)),
    "augmentation settings": dict(
        augment=functools.partial(augment_batch, flip=True, crop_padding=2)
    ),
    "epochs": dict(epochs=2),
    "train-evaluation batches": dict(train_eval_batches=3),
    "train-evaluation loader": dict(train_eval_loader=TensorLoader(TRAIN, 16, shuffle=False)),
    "validation data": dict(val_set=tiny_set(16, 4)),
    "QUICK": dict(quick=False),
    "mixed precision": dict(amp=True),
}


def _wider_head():
    model = ConvNet()
    model.fc2 = nn.Linear(128, 12)  # other shapes, labels 0-9 still fit
    return model


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One run of the base recipe, saved once for all the cases of this file."""
    folder = tmp_path_factory.mktemp("runs")
    fit_or_load(**recipe(), name="run", folder=folder, log="none")
    return folder


def test_the_same_run_is_loaded_with_its_model_and_random_state(saved, capsys):
    trained = recipe()
    fit_or_load(**trained, name="run", folder=saved / "fresh", log="none")
    after_training = torch.rand(3)
    capsys.readouterr()
    loaded = recipe()
    history = fit_or_load(**loaded, name="run", folder=saved / "fresh", log="none")
    assert ": loaded " in capsys.readouterr().out
    assert torch.equal(torch.rand(3), after_training)  # what follows is the same either way
    for a, b in zip(trained["model"].state_dict().values(), loaded["model"].state_dict().values()):
        assert torch.equal(a, b)
    assert history["epoch"] == [1]
    assert trained["optimizer"].state_dict()["state"].keys() == (
        loaded["optimizer"].state_dict()["state"].keys()
    )


@pytest.mark.parametrize("what", list(CHANGES))
def test_changing_one_setting_trains_again(saved, capsys, what):
    assert run(saved, capsys)[0] == "loaded"
    assert run(saved, capsys, **CHANGES[what])[0] == "trained", what


def test_an_edited_train_function_trains_again(saved, capsys, monkeypatch):
    original = training.train

    def train(model, device, train_loader, optimizer, epoch, log_interval=350, amp=False):
        return original(model, device, train_loader, optimizer, epoch, log_interval, amp)

    monkeypatch.setattr(training, "train", train)
    assert run(saved, capsys)[0] == "trained"


def test_a_network_class_edited_in_a_cell_trains_again(saved, capsys):
    namespace = {}
    for body in ("x = self.conv1(x)", "x = self.conv1(x) * 2"):
        code = f"""
        import torch.nn.functional as F
        from lesson_utils.models import ConvNet
        class MyNet(ConvNet):
            def forward(self, x):
                {body}
                x = F.max_pool2d(F.relu(x), 2)
                x = F.max_pool2d(F.relu(self.conv2(x)), 2)
                return F.log_softmax(self.fc2(F.relu(self.fc1(x.flatten(1)))), dim=1)
        """
        exec(compile(textwrap.dedent(code), f"<cell {body}>", "exec"), namespace)
        assert run(saved, capsys, net=namespace["MyNet"])[0] == "trained"


def test_nothing_irrelevant_changes_the_key():
    """The order of keyword arguments, how much fit prints, and a new process."""
    a = run_key(**recipe())
    b = recipe()
    b = run_key(**{k: b[k] for k in reversed(list(b))})
    assert key_digest(a) == key_digest(b)
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, sys.argv[1])
        from test_runs import recipe
        from lesson_utils.support.runs import key_digest, run_key
        print(key_digest(run_key(**recipe())))
        """
    )
    here = os.path.dirname(__file__)
    out = subprocess.run(
        [sys.executable, "-c", script, here], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [key_digest(a)]


def test_an_incomplete_run_is_not_saved(tmp_path, capsys):
    args = recipe(lr=1e9)  # diverges: fit stops on the nan loss
    args["epochs"] = 3
    history = fit_or_load(**args, name="run", folder=tmp_path, log="none")
    assert len(history["epoch"]) < 3
    assert "not saved" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_a_failed_save_keeps_the_trained_work(tmp_path, capsys):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    args = recipe()
    with pytest.warns(UserWarning, match="could not be saved"):
        history = fit_or_load(**args, name="run", folder=blocker / "runs", log="none")
    assert history["epoch"] == [1]
    assert "not saved" in capsys.readouterr().out
    assert blocker.read_text() == "not a folder"


def test_a_damaged_file_is_said_and_the_run_trained_again(tmp_path, capsys):
    digest = key_digest(run_key(**recipe()))
    damaged = tmp_path / f"run-{digest}.pt"
    damaged.write_bytes(b"not a checkpoint")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    out = capsys.readouterr().out
    assert "could not be read" in out and "replacing" in out and "trained" in out


def test_the_same_run_saved_meanwhile_by_another_kernel_is_said_as_such(
    tmp_path, capsys, monkeypatch
):
    """Two notebooks that train the same run at once (03 and 02 in two lanes): the second to
    finish finds the first one's file, which it can read; it says so, not "could not be read"."""
    keys, behaviours = [], []
    real_run_key, real_fingerprint, real_fit = runs.run_key, runs.fingerprint, training.fit

    def run_key_kept(*args, **kwargs):
        keys.append(real_run_key(*args, **kwargs))
        return keys[-1]

    def fingerprint_kept(*args, **kwargs):
        behaviours.append(real_fingerprint(*args, **kwargs))
        return behaviours[-1]

    def fit_while_another_kernel_saves(model, *args, **kwargs):
        history = real_fit(model, *args, **kwargs)
        path = tmp_path / f"run-{key_digest(keys[-1])}.pt"
        cpu = torch.device("cpu")
        runs.save_run(path, keys[-1], behaviours[-1], model, args[2], None, history, cpu)
        return history

    monkeypatch.setattr(runs, "run_key", run_key_kept)
    monkeypatch.setattr(runs, "fingerprint", fingerprint_kept)
    monkeypatch.setattr(training, "fit", fit_while_another_kernel_saves)
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    out = capsys.readouterr().out
    assert "was saved meanwhile by another run of the same training" in out
    assert "could not be read" not in out


def test_a_checkpoint_file_cannot_run_code(tmp_path, capsys):
    digest = key_digest(run_key(**recipe()))
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"key": Evil()}, tmp_path / f"run-{digest}.pt")
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    assert not marker.exists()
    assert "could not be read" in capsys.readouterr().out


def test_the_key_names_parameters_of_another_model():
    args = recipe()
    args["optimizer"] = optim.Adam(ConvNet().parameters())
    groups = run_key(**args)["optimizer"]["groups"]
    assert all(name.startswith("not in the model") for name in groups[0]["params"])


def test_source_of_a_function_without_source_is_its_code():
    f = eval("lambda x: x + 1")
    assert runs.source_of(f) != runs.source_of(eval("lambda x: x + 2"))


def test_a_checkpoint_that_does_not_fit_changes_nothing_before_it_is_refused():
    args = recipe(scheduler=lambda o: optim.lr_scheduler.StepLR(o, step_size=7, gamma=0.1))
    trained = ConvNet()
    state = {
        "model": trained.state_dict(),
        # an optimizer of two parameter groups: load_state_dict refuses it, after the model
        "optimizer": optim.Adam(
            [{"params": trained.fc1.parameters()}, {"params": trained.fc2.parameters()}]
        ).state_dict(),
        "scheduler": args["scheduler"].state_dict(),
        "history": training.new_history(),
        "random_state_after": {"cpu": torch.get_rng_state()},
    }
    before = copy.deepcopy(args["model"].state_dict())
    with pytest.raises(ValueError, match="parameter groups"):
        runs._restore(
            state, args["model"], args["optimizer"], args["scheduler"], torch.device("cpu")
        )
    for name, tensor in args["model"].state_dict().items():
        assert torch.equal(tensor, before[name]), name


def _edits(folder, *versions):
    """tests/edits.py in a new process: for each version, {case: "trained" | "loaded"}."""
    script = os.path.join(os.path.dirname(__file__), "edits.py")
    out = subprocess.run(
        [sys.executable, script, str(folder), *versions], capture_output=True, text=True, check=True
    ).stdout
    return [json.loads(line) for line in out.splitlines()[-len(versions) :]]


def test_edits_that_change_what_training_computes_train_anew_in_new_processes(tmp_path):
    """Each everyday edit of tests/edits.py (an activation passed as an argument, a helper
    function, a module-level constant, an attribute, a hook, a custom optimizer, a scheduler's
    lambda, an augmentation's helper...) changes no description of the run: version a trains,
    loads in a new process, and version b trains anew."""
    assert _edits(tmp_path, "a") == [dict.fromkeys(edits.CASES, "trained")]
    same, edited = _edits(tmp_path, "a", "b")  # a new process, as a new kernel
    assert same == dict.fromkeys(edits.CASES, "loaded")
    assert edited == dict.fromkeys(edits.CASES, "trained")


def test_the_fingerprint_changes_nothing_the_run_uses():
    args = recipe(net=DropoutConvNet, augment=augment_batch)
    args["scheduler"] = optim.lr_scheduler.StepLR(args["optimizer"], 1, 0.5)
    args["optimizer"].step()  # some optimizer state
    weights = copy.deepcopy(args["model"].state_dict())
    optimizer_state = copy.deepcopy(args["optimizer"].state_dict())
    states = torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()
    runs.fingerprint(
        args["model"], args["train_loader"], args["optimizer"], 3, "cpu", args["scheduler"]
    )
    assert torch.equal(torch.get_rng_state(), states[0])
    assert np.array_equal(np.random.get_state()[1], states[1]) and random.getstate() == states[2]
    for name, tensor in args["model"].state_dict().items():
        assert torch.equal(tensor, weights[name]), name
    assert args["optimizer"].param_groups[0]["lr"] == optimizer_state["param_groups"][0]["lr"]
    assert all(p.grad is None for p in args["model"].parameters())
    assert args["scheduler"].last_epoch == 0 and args["model"].training


def test_last_bit_differences_still_match_and_an_edit_does_not():
    """Another thread count changes the last bits of the fingerprint, within the tolerance."""
    args = recipe(net=BatchNormConvNet)
    fingerprint = functools.partial(
        runs.fingerprint, args["model"], args["train_loader"], args["optimizer"], 1, "cpu"
    )
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = fingerprint()
        torch.set_num_threads(2)
        two = fingerprint()
    finally:
        torch.set_num_threads(threads)
    assert runs.same_behaviour(one, two)
    args["model"].bn1.momentum = 0.5  # in the repr too, but here only the behaviour is compared
    assert not runs.same_behaviour(one, fingerprint())


def test_reuse_false_and_lesson_retrain_train_again_and_replace_the_same_run(
    tmp_path, capsys, monkeypatch
):
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    capsys.readouterr()
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none", reuse=False)
    assert ": trained " in capsys.readouterr().out
    monkeypatch.setenv("LESSON_RETRAIN", "1")
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    assert ": trained " in capsys.readouterr().out
    assert len(list(tmp_path.iterdir())) == 1  # the same run, replaced, not a second file
    monkeypatch.setenv("LESSON_RETRAIN", "0")
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    assert ": loaded " in capsys.readouterr().out
    monkeypatch.setenv("LESSON_RETRAIN", "sometimes")
    with pytest.raises(ValueError, match="LESSON_RETRAIN"):
        fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")


def test_the_loaded_line_says_what_was_reused_and_how_to_train_again(saved, capsys):
    """Here the message is the feature: the name, the seed, the epochs, the final numbers, and
    the two ways to train again; no file hash."""
    history = fit_or_load(**recipe(seed=0), name="run", folder=saved, log="none")
    line = capsys.readouterr().out
    assert line.startswith("run, seed 0: loaded") and "1 epochs" in line
    assert f"{history['test_acc'][-1]:.1f}%" in line
    assert "reuse=False" in line and "LESSON_RETRAIN=1" in line
    assert key_digest(run_key(**recipe())) not in line


def test_a_saved_run_with_flipped_bytes_is_never_loaded(tmp_path, capsys):
    trained = recipe()
    fit_or_load(**trained, name="run", folder=tmp_path, log="none")
    (path,) = tmp_path.iterdir()
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    capsys.readouterr()
    fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    out = capsys.readouterr().out
    assert "could not be read" in out and ": trained " in out and ": loaded " not in out


@pytest.mark.parametrize("name", ["x" * 300, "../../outside/run", "seed 1: baseline / flip"])
def test_any_name_is_saved_in_the_folder_and_loads_back(tmp_path, capsys, name):
    folder = tmp_path / "runs"
    fit_or_load(**recipe(), name=name, folder=folder, log="none")
    assert "saved to" in capsys.readouterr().out
    assert [p.parent for p in tmp_path.rglob("*.pt")] == [folder]
    fit_or_load(**recipe(), name=name, folder=folder, log="none")
    assert capsys.readouterr().out.startswith(f"{name}, seed {torch.initial_seed()}: loaded")


def test_every_way_a_save_can_fail_returns_the_trained_work(tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError(36, "File name too long")

    monkeypatch.setattr(runs, "_free_path", fail)
    with pytest.warns(UserWarning, match="could not be saved"):
        history = fit_or_load(**recipe(), name="run", folder=tmp_path, log="none")
    assert history["epoch"] == [1] and "not saved" in capsys.readouterr().out


def test_a_numpy_step_size_run_loads_back(tmp_path, capsys):
    schedule = lambda o: optim.lr_scheduler.StepLR(o, step_size=np.int64(1), gamma=0.5)  # noqa: E731
    fit_or_load(**recipe(scheduler=schedule), name="run", folder=tmp_path, log="none")
    capsys.readouterr()
    args = recipe(scheduler=schedule)
    fit_or_load(**args, name="run", folder=tmp_path, log="none")
    assert ": loaded " in capsys.readouterr().out
    assert args["optimizer"].param_groups[0]["lr"] == pytest.approx(5e-4)
    # a Python 1 computes the same: the same run
    fit_or_load(
        **recipe(scheduler=lambda o: optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5)),
        name="run",
        folder=tmp_path,
        log="none",
    )
    assert ": loaded " in capsys.readouterr().out


@pytest.mark.parametrize("argument", ["history", "verbose", "lr"])
def test_an_argument_fit_does_not_take_is_refused_by_name(tmp_path, argument):
    with pytest.raises(TypeError, match=argument):
        fit_or_load(**recipe(), name="run", folder=tmp_path, **{argument: None})
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []
