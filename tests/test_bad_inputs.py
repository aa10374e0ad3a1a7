"""Where a person types or brings something, a wrong value gets a clear error that names it:
data folders, the networks' input (through setup's forward pre-hook), the benchmark's flags.

Inside the lesson's own PyTorch torch's messages stand: no checks there, so no tests of them.
The notebooks' parameters are tested in test_lesson_setup.py, run_all's flags in test_run_all.py.
"""

import hashlib
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lesson_utils.course import benchmark
from lesson_utils.data import CLASSES
from lesson_utils.models import ConvNet, DropoutConvNet
from lesson_utils.support import cifar10 as cifar10_module
from lesson_utils.support.checks import check_input
from lesson_utils.support.cifar10 import DataUnavailableError, load_cifar10, load_image_folder
from lesson_utils.support.lesson import setup


def _error(exc_info):
    return str(exc_info.value)


# =============================================================================================
# data folders (support/cifar10.py)


@pytest.mark.parametrize("data", [5, "imagenet", None])
def test_load_cifar10_data_choice(data):
    with pytest.raises(ValueError) as err:
        load_cifar10(data)
    assert repr(data) in _error(err) and "generated" in _error(err)


def _write_folder(root, per_class=1):
    for split in ("train", "test"):
        for label, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                image = Image.new("RGB", (32, 32), (label * 20, 0, 0))
                image.save(root / split / name / f"{i}.png")


def _tree_digest(folder):
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(Path(folder).rglob("*"))
        if p.is_file()
    }


def test_damaged_image_folder_copy_is_named_and_not_deleted(tmp_path, monkeypatch):
    _write_folder(tmp_path)
    (tmp_path / "train" / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    before = _tree_digest(tmp_path)
    with pytest.raises(OSError) as err:
        load_cifar10("local", root=tmp_path)
    message = _error(err)
    assert "broken.jpg" in message and "damaged" in message
    assert "copy this file again" in message and "download" in message
    assert "delete" not in message and "retry" not in message
    assert _tree_digest(tmp_path) == before


def test_damaged_torchvision_copy_names_the_file_and_keeps_it(tmp_path, monkeypatch):
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (batches / name).write_bytes(b"pretend this is whole")
    # every file passes its checksum but data_batch_1 (torchvision's own check still fails)
    monkeypatch.setattr(
        cifar10_module, "check_integrity", lambda path, md5: not path.endswith("data_batch_1")
    )
    before = _tree_digest(tmp_path)
    with pytest.raises(DataUnavailableError) as err:
        load_cifar10("local", root=tmp_path)
    message = _error(err)
    assert "data_batch_1: fails its MD5 checksum" in message and "data_batch_2" not in message
    assert "tar -xzf cifar-10-python.tar.gz" in message and "DATA = 'download'" in message
    assert "delete" not in message and "retry" not in message
    assert _tree_digest(tmp_path) == before


def test_missing_local_folder(tmp_path):
    with pytest.raises(DataUnavailableError, match="does not exist"):
        load_cifar10("local", root=tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_image_folder(tmp_path / "nowhere")


def _load_train(root):
    return load_image_folder(root / "train")


def _put(path):
    """A 32x32 PNG at `path` when it ends with .png, else a small text file."""
    path.parent.mkdir(exist_ok=True)
    if path.suffix == ".png":
        Image.new("RGB", (32, 32)).save(path)
    else:
        path.write_text("x")


@pytest.mark.parametrize("extra", ["unicorn/0.png", "notes.txt", "7.png"])
def test_anything_beside_the_ten_class_folders_is_refused_by_name(tmp_path, extra):
    _write_folder(tmp_path)
    _put(tmp_path / "train" / extra)
    with pytest.raises(ValueError) as err:
        _load_train(tmp_path)
    named = tmp_path / "train" / extra.split("/")[0]
    assert str(named) in _error(err) and "airplane" in _error(err)  # the path, and what is accepted


def test_a_class_folder_in_another_spelling_is_named_with_the_missing_one(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "train" / "ship").rename(tmp_path / "train" / "Ship")
    with pytest.raises(FileNotFoundError) as err:
        _load_train(tmp_path)
    assert str(tmp_path / "train" / "ship") in _error(err)
    assert str(tmp_path / "train" / "Ship") in _error(err)


def test_an_empty_class_folder_is_refused_by_name(tmp_path):
    _write_folder(tmp_path)
    (tmp_path / "test" / "ship" / "0.png").unlink()
    (tmp_path / "test" / "ship" / ".DS_Store").write_bytes(b"\0")  # no image either
    with pytest.raises(ValueError) as err:
        load_cifar10("local", root=tmp_path)
    assert str(tmp_path / "test" / "ship") in _error(err) and "no image" in _error(err)


@pytest.mark.parametrize("name", ["notes.txt", "labels", "nested/0.png"])
def test_a_file_or_folder_in_a_class_folder_that_is_not_an_image_is_named(tmp_path, name):
    _write_folder(tmp_path)
    _put(tmp_path / "train" / "cat" / name)
    with pytest.raises(ValueError) as err:
        _load_train(tmp_path)
    assert str(tmp_path / "train" / "cat" / name.split("/")[0]) in _error(err)
    assert "damaged" not in _error(err)


def test_what_an_operating_system_leaves_in_folders_is_skipped(tmp_path):
    _write_folder(tmp_path)
    for path in (
        "train/.DS_Store",
        "train/Thumbs.db",
        "train/cat/._0.png",
        "train/cat/desktop.ini",
    ):
        (tmp_path / path).write_bytes(b"\0\1")
    assert len(_load_train(tmp_path)) == 10


@pytest.mark.parametrize("kind", ["tar", "tar.gz", "zip", "bin"])
def test_cifar10_root_at_a_file_says_what_it_is_and_how_to_unpack_it(tmp_path, kind):
    (tmp_path / "copy" / "cifar-10-batches-py").mkdir(parents=True)
    (tmp_path / "copy" / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
    if kind == "bin":
        path = tmp_path / "copy.bin"
        path.write_bytes(b"not an archive")
    else:
        formats = {"tar": "tar", "tar.gz": "gztar", "zip": "zip"}
        path = Path(shutil.make_archive(str(tmp_path / "copy"), formats[kind], tmp_path / "copy"))
    with pytest.raises(DataUnavailableError) as err:
        load_cifar10("auto", root=path)
    message = _error(err)
    assert str(path) in message and "is a file" in message and "does not exist" not in message
    if kind == "bin":
        assert "cifar-10-batches-py" in message  # what is accepted
    else:
        command = "unzip" if kind == "zip" else "tar -xf"
        assert f"{'a zip' if kind == 'zip' else 'a tar'} archive" in message and command in message


@pytest.mark.parametrize(
    "case, named",
    [
        ("no test folder", "test/"),
        ("the batches folder itself", "{root}"),
        ("a class folder's parent", "{root}"),
        ("a copy one folder down", "{root}/copy"),
        ("an archive not unpacked", "cifar-10-python.tar.gz"),
    ],
)
def test_a_folder_that_is_not_a_copy_says_why_and_where_to_point(tmp_path, case, named):
    root = tmp_path / "root"
    if case == "no test folder":
        _write_folder(root)
        shutil.rmtree(root / "test")
        given = root
    elif case == "the batches folder itself":
        (root / "cifar-10-batches-py").mkdir(parents=True)
        (root / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"x")
        given = root / "cifar-10-batches-py"
    elif case == "a class folder's parent":
        _write_folder(root)
        given = root / "train"
    elif case == "a copy one folder down":
        _write_folder(root / "copy")
        given = root
    else:
        root.mkdir()
        (root / "batch").write_bytes(b"x")
        with tarfile.open(root / "cifar-10-python.tar.gz", "w:gz") as archive:
            archive.add(root / "batch", "cifar-10-batches-py/batch")
        given = root
    with pytest.raises(DataUnavailableError) as err:
        load_cifar10("local", root=given)
    assert named.format(root=root) in _error(err)


def test_a_home_relative_root_is_read_as_a_shell_reads_it(tmp_path, monkeypatch):
    _write_folder(tmp_path / "cifar")
    monkeypatch.setenv("HOME", str(tmp_path))
    train_set, test_set = load_cifar10("local", root="~/cifar")
    assert len(train_set) == len(test_set) == 10


def test_a_missing_relative_root_is_named_with_where_it_was_looked_for(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataUnavailableError) as err:
        load_cifar10("local", root="data/cifar")
    assert str(tmp_path / "data" / "cifar") in _error(err)


@pytest.mark.parametrize("root", ["", "   "])
def test_an_empty_root_is_refused_by_name(root):
    with pytest.raises(ValueError, match="root = '.*' is empty"):
        load_cifar10("auto", root=root)


# =============================================================================================
# the networks' input: torch's own error, and check_input, which explains it when called


@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64, torch.float16, torch.int64])
def test_a_wrong_dtype_is_explained(dtype):
    with pytest.raises(TypeError) as err:
        check_input(torch.zeros(2, 3, 32, 32, dtype=dtype))
    assert f"expected a float32 tensor, got {dtype}" in _error(err)
    assert ".float()" in _error(err) and "ToTensor + Normalize" in _error(err)


def test_an_empty_batch_is_explained():
    with pytest.raises(ValueError) as err:
        check_input(torch.zeros(0, 3, 32, 32))
    assert "empty batch" in _error(err) and "[0, 3, 32, 32]" in _error(err)


@pytest.mark.parametrize(
    "x, needle",
    [
        ([[0.0] * 32] * 3, "torch.stack"),
        (np.zeros((2, 32, 32, 3), dtype=np.float32), "torch.from_numpy"),
        (Image.new("RGB", (32, 32)), "unsqueeze(0)"),
    ],
)
def test_a_non_tensor_is_explained(x, needle):
    with pytest.raises(TypeError) as err:
        check_input(x)
    assert "input x must be a torch.Tensor" in _error(err)
    assert type(x).__name__ in _error(err) and needle in _error(err)


@pytest.mark.parametrize(
    "shape, needle",
    [
        ((2, 3, 28, 28), "7*7*64 = 3136"),
        ((2, 1, 32, 32), "3 colour channels, got 1"),
        ((3, 32, 32), "unsqueeze(0)"),
    ],
)
def test_a_wrong_input_shape_is_explained(shape, needle):
    with pytest.raises(ValueError) as err:
        check_input(torch.zeros(shape))
    assert "[N, 3, 32, 32]" in str(err.value) and str(list(shape)) in str(err.value)
    assert needle in str(err.value)


@pytest.mark.parametrize("model_class", [ConvNet, DropoutConvNet])
def test_after_setup_the_networks_raise_torchs_own_error(model_class):
    """setup installs no hook: the networks stay plain PyTorch, called as model(x)."""
    setup(load_data=False)
    check_input(torch.zeros(2, 3, 32, 32))  # a right input passes
    with pytest.raises(RuntimeError, match="mat1 and mat2 shapes cannot be multiplied"):
        model_class()(torch.zeros(2, 3, 28, 28))


# =============================================================================================
# benchmark.py


@pytest.fixture
def no_data(monkeypatch):
    """Any attempt to build the benchmark's datasets fails the test: checks come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("the benchmark built data before checking its arguments")

    monkeypatch.setattr(benchmark, "make_generated_cifar", refuse)


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--repeats", "0"], "--repeats: expected an integer >= 1, got 0"),
        (["--repeats", "-2"], "--repeats: expected an integer >= 1, got -2"),
        (["--repeats", "three"], "--repeats: expected an integer >= 1, got 'three'"),
        (["--device", "gpu"], "--device must be one of"),
        (["--device", "cuda:x"], "'cuda:x'"),
        (["--compile", "fastest"], "--compile: invalid choice: 'fastest'"),
    ],
)
def test_benchmark_flags_fail_at_parse_time(no_data, capsys, argv, needle):
    start = time.perf_counter()
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(argv)
    assert exit_info.value.code == 2 and time.perf_counter() - start < 5
    assert needle in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--device", "cuda"], "no CUDA device"),
        (["--compile", "reduce-overhead", "--device", "cpu"], "needs a CUDA device"),
    ],
)
def test_benchmark_cuda_flags_without_cuda(no_data, capsys, argv, needle):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(argv)
    assert exit_info.value.code == 2 and needle in capsys.readouterr().err


@pytest.mark.parametrize(
    "kwargs, kind",
    [
        (dict(repeats=0), ValueError),
        (dict(repeats=1.5), TypeError),
        (dict(n_train=0), ValueError),
        (dict(n_test=-1), ValueError),
        (dict(quick="yes"), TypeError),
        (dict(amp=1), TypeError),
        (dict(compile_mode="fast"), ValueError),
        (dict(device="tpu"), ValueError),
    ],
)
def test_benchmark_run_arguments(no_data, kwargs, kind):
    with pytest.raises(kind) as err:
        benchmark.run(**kwargs)
    name, value = next(iter(kwargs.items()))
    assert name in _error(err) and repr(value) in _error(err)


# =============================================================================================
# the command-line tools' --out (run_all's own: tests/test_run_all.py)


@pytest.mark.parametrize("tool", ["site", "figures"])
def test_a_bad_out_folder_exits_2_without_a_traceback(tool, tmp_path, capsys):
    import importlib

    blocker = tmp_path / "a file"
    blocker.write_text("")
    main = importlib.import_module(f"lesson_utils.course.{tool}").main
    argv = (["page"] if tool == "site" else []) + ["--out", str(blocker / "out")]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert f"{blocker / 'out'} cannot hold the output: Not a directory" in err


# =============================================================================================
# fit's arguments: a contradiction between them is refused before training


def test_fit_refuses_a_scheduler_of_another_optimizer_before_training():
    from torch.utils.data import DataLoader, TensorDataset

    from lesson_utils.training import fit

    loader = DataLoader(TensorDataset(torch.zeros(4, 3, 32, 32), torch.zeros(4).long()))
    model = ConvNet()
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    other = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(other, step_size=1)
    with pytest.raises(ValueError, match="scheduler"):
        fit(model, loader, loader, optimizer, 1, "cpu", scheduler, log="none")
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
