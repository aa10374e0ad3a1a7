import pytest
import torch

from torch.utils.data import DataLoader

from lesson_utils.data import TensorLoader, cifar10_transform, make_loaders
from lesson_utils.support.cifar10 import load_cifar10, make_generated_cifar
from lesson_utils.models import ConvNet
from lesson_utils.support import seeds
from lesson_utils import training  # not `import test`: pytest would collect it as a test
from lesson_utils.support.devices import select_device
from lesson_utils.training import fit, seed_everything


def _small_loaders():
    """DataLoaders of 128 training and 64 test images, generated: 2 batches of 64 per epoch."""
    return make_loaders(*load_cifar10("generated", n_generated=(128, 64)))


@pytest.fixture
def small_loaders():
    return _small_loaders()


class Constant(torch.nn.Module):
    """Predicts fixed log-probabilities, so the expected loss can be worked out by hand."""

    def __init__(self, log_probs):
        super().__init__()
        self.log_probs = log_probs

    def forward(self, x):
        return self.log_probs.expand(len(x), -1)


def test_test_averages_over_predictions_not_batches(capsys):
    log_probs = torch.log_softmax(torch.tensor([2.0, 0.0, -1.0]), dim=0)
    targets = torch.tensor([0] * 5 + [1] * 2)  # batches of 3, 3 and 1
    loader = torch.utils.data.DataLoader(list(zip(torch.zeros(7, 1), targets)), batch_size=3)
    loss, accuracy = training.test(Constant(log_probs), "cpu", loader, "Test")
    assert loss == pytest.approx(-(5 * log_probs[0] + 2 * log_probs[1]).item() / 7)
    assert accuracy == pytest.approx(100 * 5 / 7)
    assert "Test set: Average loss: " in capsys.readouterr().out
    loss2, _ = training.test(Constant(log_probs), "cpu", loader, "Test", n_batch=1)
    assert loss2 == pytest.approx(-log_probs[0].item())  # first batch: three class-0 images


def test_one_quick_epoch_learns_far_above_chance():
    seed_everything(0)
    train_set, test_set = load_cifar10("generated", n_generated=(2000, 500), seed=0)
    train_loader, test_loader = make_loaders(train_set, test_set)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(model, train_loader, test_loader, optimizer, 1, torch.device("cpu"))
    # chance is 10%; across seeds 0-3 one epoch reached 58-66%
    assert history["test_acc"][0] > 35
    assert set(history) == {
        "epoch",
        "lr",
        "train_loss",
        "train_acc",
        "val_loss",
        "val_acc",
        "test_loss",
        "test_acc",
        "seconds",
    }


def test_fit_history_continues_and_steps_the_scheduler(small_loaders):
    seed_everything(1)
    train_loader, test_loader = small_loaders
    model = ConvNet()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = fit(model, train_loader, test_loader, optimizer, 2, "cpu", scheduler)
    history = fit(model, train_loader, test_loader, optimizer, 1, "cpu", scheduler, history=history)
    assert history["epoch"] == [1, 2, 3]
    assert history["lr"] == pytest.approx([0.1, 0.05, 0.025])
    assert all(len(values) == 3 for key, values in history.items() if not key.startswith("val_"))


def test_seeded_cpu_runs_repeat_exactly(small_loaders):
    def run():
        seed_everything(3)
        model = ConvNet()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        return fit(model, *small_loaders, optimizer, 1, "cpu")

    first, second = run(), run()
    first.pop("seconds"), second.pop("seconds")
    assert first == second


def test_keyboard_interrupt_keeps_finished_epochs(small_loaders, capsys):
    seed_everything(0)
    train_loader, test_loader = small_loaders
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    calls = {"n": 0}

    def step_then_stop(closure=None, _step=optimizer.step):
        calls["n"] += 1
        if calls["n"] == 3:  # in epoch 2: one epoch has 2 batches
            raise KeyboardInterrupt
        return _step(closure)

    optimizer.step = step_then_stop
    history = fit(model, train_loader, test_loader, optimizer, 5, "cpu")
    assert history["epoch"] == [1]
    assert not model.training
    assert "Interrupted" in capsys.readouterr().out
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


def test_device_choice():
    assert select_device("cpu") == torch.device("cpu")
    assert select_device("auto").type in ("cuda", "mps", "cpu")
    with pytest.raises(ValueError, match="unknown DEVICE 'tpu'"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.warns(UserWarning, match="no CUDA device"):
            assert select_device("cuda") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="no CUDA"):
            select_device("cuda", strict=True)


def _small_run(seed, epochs=2):
    """Two epochs of the ConvNet on 128 generated images, validated on 64 others."""
    train_loader, test_loader = _small_loaders()
    val_loader = DataLoader(make_generated_cifar(64, seed=7, transform=cifar10_transform()), 64)
    seed_everything(seed)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = fit(
        model,
        train_loader,
        test_loader,
        optimizer,
        epochs,
        "cpu",
        log="none",
        val_loader=val_loader,
    )
    return model, history


def _runs(seed_list):
    """A recipe trained once per seed, in a plain loop as the notebooks do."""
    runs = [_small_run(seed) for seed in seed_list]
    return [m for m, _ in runs], [h for _, h in runs]


def test_one_run_per_seed_and_equal_seeds_repeat(capsys):
    models, histories = _runs([0, 1, 0])
    assert len(models) == len(histories) == 3
    assert histories[0] == {**histories[2], "seconds": histories[0]["seconds"]}
    assert histories[0]["train_loss"] != histories[1]["train_loss"]
    summaries = seeds.seed_table({"small": histories}, [0, 1, 0])
    s = summaries["small"]
    finals = [h["test_acc"][-1] for h in histories]
    assert s["runs"] == 3 and s["test_acc"]["values"] == pytest.approx(finals, abs=0.005)
    assert s["test_acc"]["min"] <= s["test_acc"]["mean"] <= s["test_acc"]["max"]
    chosen = [max(range(2), key=lambda i: (h["val_acc"][i], -i)) for h in histories]
    assert s["best_epoch"] == [i + 1 for i in chosen]
    at_best = [h["test_acc"][i] for h, i in zip(histories, chosen)]
    assert s["test_acc_at_best"]["values"] == pytest.approx(at_best, abs=0.005)
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("3 seeds (0, 1, 0)") and table[-1].startswith("small")
    assert f"{s['test_loss']['mean']:.3f} ({s['test_loss']['min']:.3f}-" in table[-1]
    validation = table[table.index("Validation (chooses):") + 2]
    assert validation.startswith("small") and validation.endswith(
        ", ".join(map(str, s["best_epoch"]))
    )
    assert table.index("Validation (chooses):") < table.index(
        "Test (read after the choice, to report it):"
    )


def test_fit_reads_the_test_set_only_at_the_reported_epochs():
    """The last epoch and the best validation epoch: their numbers are those of reading the test
    set right after that epoch (the best weights are kept until the end); the others are nan, and
    the model ends with the last epoch's weights."""
    train_set, test_set = load_cifar10("generated", n_generated=(256, 64), seed=0)
    val_set = make_generated_cifar(64, seed=5)
    loaders = [
        TensorLoader(d, batch_size=64, shuffle=s)
        for d, s in ((train_set, True), (test_set, False), (val_set, False))
    ]
    train_loader, test_loader, val_loader = loaders

    torch.manual_seed(0)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = fit(
        model, train_loader, test_loader, optimizer, 5, "cpu", log="none", val_loader=val_loader
    )
    # the same run, reading the test set after every epoch by hand
    again, readings = _by_hand(train_loader, val_loader, test_loader, 3e-3, 5)
    every_epoch = [test for _, test in readings]
    best = training.best_epoch(history)
    read = [i for i, acc in enumerate(history["test_acc"]) if acc == acc]
    assert read == sorted({best, 4})
    for i in read:
        assert (history["test_loss"][i], history["test_acc"][i]) == every_epoch[i]
    for a, b in zip(model.parameters(), again.parameters()):
        assert torch.equal(a, b)  # the last weights came back after the best ones were read


def test_without_validation_fit_reads_the_test_set_once():
    train_set, test_set = load_cifar10("generated", n_generated=(128, 64), seed=0)
    torch.manual_seed(0)
    model = ConvNet()
    history = fit(
        model,
        TensorLoader(train_set, batch_size=64),
        TensorLoader(test_set, batch_size=64, shuffle=False),
        torch.optim.Adam(model.parameters()),
        3,
        "cpu",
        log="none",
    )
    assert [acc == acc for acc in history["test_acc"]] == [False, False, True]


def test_the_verdict_is_a_tie_when_the_ranges_overlap():
    a = seeds._stats([70.0, 71.0, 72.0])
    assert seeds.verdict(a, seeds._stats([71.5, 72.5, 73.5])) == "a tie"
    assert seeds.verdict(a, seeds._stats([72.1, 73.0, 74.0])) == "higher"
    assert seeds.verdict(a, seeds._stats([68.0, 69.0, 69.9])) == "lower"


def test_seed_table_says_one_seed_settles_nothing(capsys):
    _, histories = _runs([3])
    seeds.seed_table({"one": histories}, [3])
    assert "One seed: a difference of a point or two can be luck" in capsys.readouterr().out


def test_seed_table_rejects_bad_arguments():
    with pytest.raises(ValueError, match="'x' has 1 runs for 2 seeds"):
        seeds.seed_table({"x": [{"epoch": [1]}]}, [0, 1])
    with pytest.raises(TypeError, match="non-empty list"):
        seeds.seed_summary([])
    without_validation = {k: v for k, v in _runs([0])[1][0].items()}
    without_validation["val_acc"] = []
    with pytest.raises(ValueError, match="validation metrics"):
        seeds.seed_summary([without_validation])


def test_the_best_epoch_is_chosen_on_validation_never_on_test():
    history = {
        "epoch": [1, 2, 3, 4],
        "train_acc": [50.0, 60, 70, 80],
        "val_acc": [40.0, 55, 55, 50],  # best at epoch 2 (the first of two equal ones)
        "test_acc": [41.0, 52, 60, 61],  # best at epoch 4: not the one chosen
        "test_loss": [1.0, 0.9, 0.8, 0.7],
    }
    assert training.best_epoch(history) == 1
    m = training.final_metrics(history)
    assert (m["best_epoch"], m["best_val_acc"], m["test_acc_at_best"]) == (2, 55, 52)
    assert m["test_acc"] == 61 and "best_test_acc" not in m


def test_fit_records_validation_metrics_that_test_computes(small_loaders):
    model, history = _small_run(0, epochs=2)
    assert len(history["val_acc"]) == len(history["val_loss"]) == len(history["epoch"]) == 2
    val_loader = DataLoader(make_generated_cifar(64, seed=7, transform=cifar10_transform()), 64)
    assert training.test(model, "cpu", val_loader, "Validation", verbose=False) == pytest.approx(
        (history["val_loss"][-1], history["val_acc"][-1])
    )
    train_loader, test_loader = small_loaders
    net = ConvNet()
    plain = fit(net, train_loader, test_loader, torch.optim.Adam(net.parameters()), 1, "cpu")
    assert plain["val_acc"] == [] and "best_epoch" not in training.final_metrics(plain)


def test_an_optimizer_of_another_model_is_refused_before_training(small_loaders):
    train_loader, test_loader = small_loaders
    model = ConvNet()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="holds none of the model's parameters"):
        fit(model, train_loader, test_loader, torch.optim.Adam(ConvNet().parameters()), 1, "cpu")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_an_error_in_an_epoch_keeps_the_finished_epochs(small_loaders):
    train_loader, test_loader = small_loaders

    class Breaks:  # a loader whose second epoch fails, as a damaged file would
        def __init__(self):
            self.epochs, self.dataset = 0, train_loader.dataset

        def __len__(self):
            return len(train_loader)

        def __iter__(self):
            self.epochs += 1
            if self.epochs == 3:  # epoch 1: train + the train evaluation; epoch 2: train
                raise OSError("a damaged image")
            return iter(train_loader)

    model = ConvNet()
    with pytest.raises(OSError) as err:
        fit(
            model, Breaks(), test_loader, torch.optim.Adam(model.parameters()), 3, "cpu", log="none"
        )
    assert err.value.history["epoch"] == [1]


def _by_hand(train_loader, val_loader, test_loader, lr, epochs):
    """fit's epochs written out from seed 0 (train, 20 training batches, validation), reading the
    test set after every epoch when test_loader is given: [(validation, test or None), ...]."""
    torch.manual_seed(0)
    model = ConvNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    readings = []
    for epoch in range(1, epochs + 1):
        training.train(model, "cpu", train_loader, optimizer, epoch, log_interval=0)
        training.test(model, "cpu", train_loader, "Train", n_batch=20, verbose=False)
        val = training.test(model, "cpu", val_loader, "Validation", verbose=False)
        test = test_loader and training.test(model, "cpu", test_loader, "Test", verbose=False)
        readings.append((val, test))
    return model, readings


def test_early_stopping_written_out_is_fits_run_cut_short():
    """Notebook 02's claim: its early-stopping loop (train, 20 shuffled training batches, the
    validation set) is fit's run with the same seed, so the weights it keeps are those of fit's
    best validation epoch. It holds because evaluating a TensorLoader that does not shuffle draws no
    random number: a shuffling validation loader would change the next epoch's batches."""
    train_set, test_set = load_cifar10("generated", n_generated=(256, 64), seed=0)
    val_set = make_generated_cifar(64, seed=5)
    train_loader = TensorLoader(train_set, batch_size=64)
    val_loader = TensorLoader(val_set, batch_size=64, shuffle=False)

    test_loader = TensorLoader(test_set, batch_size=64, shuffle=False)

    def run(val_loader):
        torch.manual_seed(0)
        model = ConvNet()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        return fit(
            model, train_loader, test_loader, optimizer, 3, "cpu", log="none", val_loader=val_loader
        )

    history = run(val_loader)
    _, readings = _by_hand(train_loader, val_loader, None, 1e-3, 3)
    assert [val[1] for val, _ in readings] == history["val_acc"]
    shuffled_val = run(TensorLoader(val_set, batch_size=64, shuffle=True))
    assert shuffled_val["val_acc"][1:] != history["val_acc"][1:]  # why it must not shuffle
