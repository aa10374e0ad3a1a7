"""Train once, reuse: train_or_load and the baseline that notebooks 02, 03, 05 and 06 share."""

import os
import threading

import pytest
import torch

from lesson_utils import ConvNet, TensorLoader, setup
from lesson_utils.support.lesson import baseline
from lesson_utils.support.checkpoints import (
    cache_path,
    load_checkpoint,
    save_checkpoint,
    train_or_load,
)
from lesson_utils.training import fit


@pytest.fixture
def quick_lesson(monkeypatch):
    monkeypatch.delenv("LESSON_QUICK", raising=False)
    lesson = setup(QUICK=True, DEVICE="cpu", EPOCHS=14)
    lesson.train_set.data = lesson.train_set.data[:256]  # two epochs of 4 batches: fast
    lesson.train_set.targets = lesson.train_set.targets[:256]
    lesson.EPOCHS = 2
    return lesson


def loaders(lesson):
    return (
        TensorLoader(lesson.train_set, batch_size=64),
        TensorLoader(lesson.test_set, batch_size=64),
    )


def without_seconds(history):
    return {k: v for k, v in history.items() if k != "seconds"}


def test_a_loaded_baseline_is_the_retrained_one(quick_lesson, tmp_path, monkeypatch, capsys):
    # read at call time
    monkeypatch.setattr("lesson_utils.support.checkpoints.CHECKPOINT_DIR", tmp_path)
    trained_model, trained = baseline(quick_lesson, *loaders(quick_lesson), 2, log="epoch")
    live_epochs = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch")
    ]
    state_after_training = torch.get_rng_state()
    assert len(live_epochs) == 2
    assert len(list(tmp_path.iterdir())) == 1
    torch.manual_seed(123)  # whatever happened in between
    loaded_model, loaded = baseline(quick_lesson, *loaders(quick_lesson), 2, log="epoch")
    out = capsys.readouterr().out
    assert "loaded the run saved in" in out
    # a loaded run shows its epochs as they were printed while it trained
    assert [line for line in out.splitlines() if line.startswith("epoch")] == live_epochs
    assert loaded == trained
    for a, b in zip(trained_model.state_dict().values(), loaded_model.state_dict().values()):
        assert torch.equal(a, b)
    # what follows baseline() sees the same random state, whether it trained or loaded
    assert torch.equal(torch.get_rng_state(), state_after_training)
    for path in list(tmp_path.iterdir()):  # no saved baseline: train it again
        path.unlink()
    retrained_model, retrained = baseline(quick_lesson, *loaders(quick_lesson), 2, log="none")
    assert without_seconds(retrained) == without_seconds(trained)


def test_another_loader_is_another_baseline(quick_lesson, tmp_path, monkeypatch, capsys):
    from functools import partial

    from lesson_utils import augment_batch

    monkeypatch.setattr("lesson_utils.support.checkpoints.CHECKPOINT_DIR", tmp_path)
    train_loader, test_loader = loaders(quick_lesson)
    baseline(quick_lesson, train_loader, test_loader, 1, log="none")
    flipped = TensorLoader(quick_lesson.train_set, augment=partial(augment_batch, crop_padding=0))
    baseline(quick_lesson, flipped, test_loader, 1, log="none")
    assert capsys.readouterr().out.count("trained 1 epochs") == 2
    assert len(list(tmp_path.iterdir())) == 2


def test_an_incomplete_run_is_not_saved(tmp_path, capsys):
    calls = []
    model = ConvNet()

    def interrupted():
        calls.append(1)
        return {
            "epoch": [1],
            "lr": [1e-3],
            "train_loss": [1.0],
            "train_acc": [50.0],
            "test_loss": [1.1],
            "test_acc": [45.0],
            "seconds": [0.1],
        }

    train_or_load("baseline", {"epochs": 14}, model, interrupted, folder=tmp_path)
    assert "incomplete" in capsys.readouterr().out and list(tmp_path.iterdir()) == []
    nan = {
        "epoch": [1],
        "lr": [1e-3],
        "train_loss": [float("nan")],
        "train_acc": [10.0],
        "test_loss": [float("nan")],
        "test_acc": [10.0],
        "seconds": [0.1],
    }
    train_or_load("baseline", {"epochs": 1}, model, lambda: nan, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def run(tmp_path, key, calls):
    model = ConvNet()

    def train_fn():  # a complete run of key["epochs"] epochs, without the training
        calls.append(key)
        n = key["epochs"]
        return {
            "epoch": list(range(1, n + 1)),
            "lr": [1e-3] * n,
            "train_loss": [1.0] * n,
            "train_acc": [50.0] * n,
            "test_loss": [1.1] * n,
            "test_acc": [45.0] * n,
            "seconds": [0.1] * n,
        }

    return train_or_load("baseline", key, model, train_fn, folder=tmp_path), model


def test_another_key_trains_again(tmp_path, capsys):
    calls = []
    run(tmp_path, {"epochs": 14, "quick": False}, calls)
    run(tmp_path, {"epochs": 14, "quick": False}, calls)
    run(tmp_path, {"epochs": 3, "quick": False}, calls)
    assert calls == [{"epochs": 14, "quick": False}, {"epochs": 3, "quick": False}]


def test_quick_never_reads_a_full_run(tmp_path):
    calls = []
    run(tmp_path, {"epochs": 3, "quick": False}, calls)
    run(tmp_path, {"epochs": 3, "quick": True}, calls)
    assert len(calls) == 2
    assert cache_path("b", {"quick": True}) != cache_path("b", {"quick": False})


def test_a_key_that_does_not_match_the_file_trains_again(tmp_path, capsys):
    calls = []
    key = {"epochs": 14}
    run(tmp_path, key, calls)
    # a file under the right name but saved with another key (renamed by hand, say)
    save_checkpoint(cache_path("baseline", key, tmp_path), ConvNet(), history={}, key={"x": 1})
    run(tmp_path, key, calls)
    assert len(calls) == 2
    assert "other settings" in capsys.readouterr().out


def test_a_corrupt_cache_file_trains_again_with_a_message(tmp_path, capsys):
    calls = []
    key = {"epochs": 14}
    run(tmp_path, key, calls)
    path = cache_path("baseline", key, tmp_path)
    path.write_bytes(path.read_bytes()[:100])  # cut short
    history, _ = run(tmp_path, key, calls)
    assert len(calls) == 2 and len(history["epoch"]) == 14
    assert "could not be read" in capsys.readouterr().out
    run(tmp_path, key, calls)  # the retrained file is good again
    assert len(calls) == 2


def test_a_failed_load_changes_nothing(tmp_path):
    small = torch.nn.Sequential(torch.nn.Linear(4, 2))
    save_checkpoint(tmp_path / "small.pt", small)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="does not fit ConvNet"):
        load_checkpoint(tmp_path / "small.pt", model, optimizer)
    wide = ConvNet()
    wide.fc1 = torch.nn.Linear(4096, 256)
    wide.fc2 = torch.nn.Linear(256, 10)
    save_checkpoint(tmp_path / "wide.pt", wide)
    with pytest.raises(ValueError, match="other shapes"):
        load_checkpoint(tmp_path / "wide.pt", model, optimizer)
    other = ConvNet()
    other_optimizer = torch.optim.Adam(list(other.parameters())[:2], lr=0.5)  # fewer parameters
    other(torch.zeros(2, 3, 32, 32)).sum().backward()
    other_optimizer.step()  # so that it has a state to (wrongly) load
    save_checkpoint(tmp_path / "opt.pt", other, other_optimizer)
    with pytest.raises(ValueError, match="optimizer"):
        load_checkpoint(tmp_path / "opt.pt", model, optimizer)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert optimizer.state_dict()["state"] == {}
    assert optimizer.param_groups[0]["lr"] == 1e-3


def test_saves_from_two_threads_leave_a_readable_file_and_no_temporary(tmp_path):
    path = tmp_path / "shared.pt"
    errors = []

    def save(i):
        try:
            save_checkpoint(path, ConvNet(), history={"i": i})
        except Exception as err:  # pragma: no cover - a failure is what the test looks for
            errors.append(err)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert load_checkpoint(path, ConvNet()) in [{"i": i} for i in range(8)]
    assert sorted(os.listdir(tmp_path)) == ["shared.pt"]


def test_a_failed_save_leaves_no_temporary_file(tmp_path, monkeypatch):
    def broken_save(obj, file):
        file.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "x.pt", ConvNet())
    assert os.listdir(tmp_path) == []


def test_fit_stops_on_a_nan_loss_and_keeps_the_epoch(capsys):
    lesson_data = setup(QUICK=True, DEVICE="cpu")
    train_loader, test_loader = loaders(lesson_data)
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e6)  # diverges at once
    history = fit(model, train_loader, test_loader, optimizer, 5, "cpu", log="none")
    assert len(history["epoch"]) == 1
    assert "try a smaller learning rate" in capsys.readouterr().out


def test_an_interrupt_in_the_scheduler_keeps_the_finished_epoch(capsys):
    lesson_data = setup(QUICK=True, DEVICE="cpu")
    lesson_data.train_set.data = lesson_data.train_set.data[:128]
    lesson_data.train_set.targets = lesson_data.train_set.targets[:128]
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters())

    class InterruptingScheduler:
        def step(self):
            raise KeyboardInterrupt

    history = fit(
        model, *loaders(lesson_data), optimizer, 3, "cpu", InterruptingScheduler(), log="none"
    )
    assert history["epoch"] == [1]
    assert "kept the 1 finished epochs" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad, name",
    [
        (dict(epochs=0), "epochs"),
        (dict(epochs=-2), "epochs"),
        (dict(epochs=2.5), "epochs"),
        (dict(log="loud"), "log"),
        (dict(train_eval_batches=0), "train_eval_batches"),
    ],
)
def test_fit_names_a_bad_argument(bad, name):
    lesson_data = setup(QUICK=True, DEVICE="cpu")
    arguments = dict(epochs=1, log="none") | bad
    model = ConvNet()
    with pytest.raises((ValueError, TypeError), match=name):
        fit(
            model,
            *loaders(lesson_data),
            torch.optim.Adam(model.parameters()),
            device="cpu",
            **arguments,
        )


def test_fit_names_an_empty_loader():
    model = ConvNet()
    empty = torch.utils.data.DataLoader([], batch_size=4)
    with pytest.raises(ValueError, match="train_loader yields no batches"):
        fit(model, empty, empty, torch.optim.Adam(model.parameters()), 1, "cpu")


def test_each_seed_is_its_own_baseline(quick_lesson, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("lesson_utils.support.checkpoints.CHECKPOINT_DIR", tmp_path)
    _, first = baseline(quick_lesson, *loaders(quick_lesson), 1, log="none")
    _, same = baseline(quick_lesson, *loaders(quick_lesson), 1, log="none", seed=quick_lesson.seed)
    _, other = baseline(quick_lesson, *loaders(quick_lesson), 1, log="none", seed=5)
    out = capsys.readouterr().out
    assert out.count("trained 1 epochs") == 2 and out.count("loaded the run") == 1
    assert same == first and without_seconds(other) != without_seconds(first)
    assert len(list(tmp_path.iterdir())) == 2
    # the seed of the notebook is the key's default: the checkpoints of earlier sessions still load
    assert quick_lesson.key(a=1) == quick_lesson.key(seed=quick_lesson.seed, a=1)
    assert quick_lesson.key(seed=5, a=1)["seed"] == 5


def test_setup_lists_the_seeds(monkeypatch):
    monkeypatch.delenv("LESSON_QUICK", raising=False)
    assert setup(QUICK=True, load_data=False, SEED=4, SEEDS=3).seeds == [4, 5, 6]
    assert setup(QUICK=True, load_data=False, SEED=4).seeds == [4]
    with pytest.raises(ValueError, match="SEEDS must be an integer >= 1, got 0"):
        setup(QUICK=True, load_data=False, SEEDS=0)


def test_a_loaded_run_replays_its_epochs_unless_asked_not_to(tmp_path, capsys):
    from lesson_utils.training import new_history

    def two_epochs():
        history = new_history()
        for epoch in (1, 2):
            row = dict(epoch=epoch, lr=1e-3, train_loss=0.5, train_acc=80.0, test_loss=0.7)
            for k, v in dict(row, test_acc=70.0 + epoch, seconds=3.0).items():
                history[k].append(v)
        return history

    key = {"epochs": 2}
    train_or_load("run", key, ConvNet(), two_epochs, folder=tmp_path)
    capsys.readouterr()
    train_or_load("run", key, ConvNet(), two_epochs, folder=tmp_path)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("Its saved epochs:") and len(lines) == 3
    assert lines[2] == "epoch  2: train loss 0.500 acc  80.0% | test loss 0.700 acc  72.0% | 3 s"
    train_or_load("run", key, ConvNet(), two_epochs, folder=tmp_path, replay=False)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and lines[0].endswith("no training needed.")
