"""Bad inputs get clear errors that name the argument and the value, and run_all loses nothing.

No real notebook runs here: papermill.execute_notebook is replaced by fakes (and run_all's
`execute` by a module-level fake for the worker processes of --jobs).
"""

import hashlib
import json
import math
import os
import time
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook
from PIL import Image

from lesson_utils.course import benchmark, run_all
from lesson_utils import data as data_module
from lesson_utils.support import cifar10 as cifar10_module
from lesson_utils.data import CLASSES, TensorLoader, augment_batch, make_loaders, select_classes
from lesson_utils.support.cifar10 import (
    DataUnavailableError,
    load_cifar10,
    load_image_folder,
    make_generated_cifar,
)
from lesson_utils.support.demos import make_augmentation
from test_run_all import _write_executed  # the executed-notebook stand-in, written once
from lesson_utils.models import (
    ConvNet,
    DropoutConvNet,
    ModularConvNet,
    conv_output_size,
    count_parameters,
    feature_map_sizes,
    flat_to_modular_state_dict,
    layer_summary,
    trace_shapes,
)
from lesson_utils.support.demos import describe_modular, dropout_demo

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"


def _error(exc_info):
    return str(exc_info.value)


# =============================================================================================
# data.py and support/cifar10.py


@pytest.fixture(scope="module")
def small_set():
    return make_generated_cifar(100, seed=0)


@pytest.mark.parametrize(
    "batch_size, kind",
    [
        (0, ValueError),
        (-3, ValueError),
        (True, TypeError),
        (2.5, TypeError),
        ("64", TypeError),
    ],
)
def test_tensor_loader_batch_size(small_set, batch_size, kind):
    with pytest.raises(kind) as err:
        TensorLoader(small_set, batch_size=batch_size)
    assert "batch_size" in _error(err) and repr(batch_size) in _error(err)
    assert ">= 1" in _error(err)


@pytest.mark.parametrize(
    "dataset, needle",
    [
        ([1, 2, 3], "list"),
        (torch.utils.data.Subset(make_generated_cifar(20), [0, 1]), "select_classes"),
    ],
)
def test_tensor_loader_needs_data_and_targets(dataset, needle):
    with pytest.raises(TypeError) as err:
        TensorLoader(dataset)
    assert "dataset" in _error(err) and ".data" in _error(err) and ".targets" in _error(err)
    assert needle in _error(err)


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(root=5), "root must be a folder (str or Path), got int"),
        (dict(transform="ToTensor"), "transform must be a transform"),
        (dict(test_transform=3), "test_transform must be a transform"),
    ],
)
def test_download_cifar10_checks_before_downloading(tmp_path, kwargs, needle):
    kwargs = {"root": tmp_path, **kwargs}
    with pytest.raises(TypeError) as err:
        data_module.download_cifar10(**kwargs)
    assert needle in _error(err)
    assert list(tmp_path.iterdir()) == []  # nothing downloaded, nothing written


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(shuffle="yes"), "shuffle"),
        (dict(augment="flip"), "augment"),
        (dict(device="gpu0"), "device"),
    ],
)
def test_tensor_loader_other_arguments(small_set, kwargs, needle):
    with pytest.raises((TypeError, ValueError)) as err:
        TensorLoader(small_set, **kwargs)
    assert needle in _error(err) and repr(next(iter(kwargs.values()))) in _error(err)


def test_tensor_loader_empty_dataset():
    empty = select_classes(make_generated_cifar(20), [0], per_class=1)
    empty.data, empty.targets = empty.data[:0], []
    with pytest.raises(ValueError, match="dataset is empty"):
        TensorLoader(empty)


def test_tensor_loader_has_no_channels_last_argument(small_set):
    with pytest.raises(TypeError, match="channels_last"):
        TensorLoader(small_set, channels_last=True)


@pytest.mark.parametrize(
    "kwargs, name, kind",
    [
        (dict(n=-5), "n", ValueError),
        (dict(n=0), "n", ValueError),
        (dict(n=2.5), "n", TypeError),
        (dict(n="10"), "n", TypeError),
        (dict(n=True), "n", TypeError),
        (dict(n=10, seed="0"), "seed", TypeError),
        (dict(n=10, seed=1.5), "seed", TypeError),
        (dict(n=10, seed=-1), "seed", ValueError),
        (dict(n=10, transform=3), "transform", TypeError),
    ],
)
def test_make_generated_cifar(kwargs, name, kind):
    with pytest.raises(kind) as err:
        make_generated_cifar(**kwargs)
    value = kwargs[name]
    assert _error(err).startswith(name) and repr(value) in _error(err)


@pytest.mark.parametrize(
    "kwargs, needle, kind",
    [
        (dict(n_generated=(-1, 10)), "n_train must be an integer >= 1, got -1", ValueError),
        (dict(n_generated=(10, 2.5)), "n_test must be an integer >= 1, got 2.5", TypeError),
        (dict(n_generated=100), "n_generated", TypeError),
        (dict(n_generated="ab"), "n_generated", TypeError),
        (dict(n_generated=(1, 2, 3)), "n_generated", TypeError),
        (dict(seed="x"), "seed", TypeError),
        (dict(transform="ToTensor"), "transform", TypeError),
        (dict(root=123), "root", TypeError),
    ],
)
def test_load_cifar10_arguments(kwargs, needle, kind):
    with pytest.raises(kind) as err:
        load_cifar10("generated", **kwargs)
    assert needle in _error(err) and repr(next(iter(kwargs.values()))) in _error(err)


@pytest.mark.parametrize("data", [5, "imagenet", None])
def test_load_cifar10_data_choice(data):
    with pytest.raises(ValueError) as err:
        load_cifar10(data)
    assert repr(data) in _error(err) and "generated" in _error(err)


@pytest.mark.parametrize(
    "classes, kind, needle",
    [
        ([10], ValueError, "unknown class 10"),
        ([-1], ValueError, "unknown class -1"),
        (["cat"], TypeError, "its number is 3"),
        ([], ValueError, "classes is empty"),
        ([1, 1], ValueError, "twice"),
        ("cat", TypeError, "'cat'"),
        ([1.5], TypeError, "1.5"),
    ],
)
def test_select_classes_classes(small_set, classes, kind, needle):
    with pytest.raises(kind) as err:
        select_classes(small_set, classes)
    assert "classes" in _error(err) and needle in _error(err)


@pytest.mark.parametrize("per_class, kind", [(0, ValueError), (-3, ValueError), (1.5, TypeError)])
def test_select_classes_per_class(small_set, per_class, kind):
    with pytest.raises(kind) as err:
        select_classes(small_set, [0, 1], per_class=per_class)
    assert "per_class" in _error(err) and repr(per_class) in _error(err)


@pytest.mark.parametrize(
    "call, needle",
    [
        (lambda s: make_loaders(s, s, batch_size=0), "batch_size"),
        (lambda s: make_loaders(5, s), "train_dataset"),
        (lambda s: augment_batch(np.zeros((2, 3, 32, 32)), True, 4), "x must be a torch.Tensor"),
        (lambda s: augment_batch(torch.zeros(2, 3, 32, 32), True, -1), "crop_padding"),
        (lambda s: make_augmentation("rotation", 2), "strength"),
        (lambda s: data_module.lesson_augmentations(0), "crop_size"),
    ],
)
def test_other_data_functions(small_set, call, needle):
    with pytest.raises((TypeError, ValueError)) as err:
        call(small_set)
    assert needle in _error(err)


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


# =============================================================================================
# models.py and support/demos.py


@pytest.mark.parametrize("model_class", [ConvNet, DropoutConvNet, ModularConvNet])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float64, torch.float16, torch.int64])
def test_wrong_dtype_into_the_networks(model_class, dtype):
    with pytest.raises(TypeError) as err:
        model_class()(torch.zeros(2, 3, 32, 32, dtype=dtype))
    assert f"expected a float32 tensor, got {dtype}" in _error(err)
    assert ".float()" in _error(err) and "ToTensor + Normalize" in _error(err)


@pytest.mark.parametrize("model_class", [ConvNet, ModularConvNet])
def test_empty_batch_into_the_networks(model_class):
    with pytest.raises(ValueError) as err:
        model_class()(torch.zeros(0, 3, 32, 32))
    assert "empty batch" in _error(err) and "[0, 3, 32, 32]" in _error(err)


@pytest.mark.parametrize(
    "x, needle",
    [
        ([[0.0] * 32] * 3, "torch.stack"),
        (np.zeros((2, 32, 32, 3), dtype=np.float32), "torch.from_numpy"),
        (Image.new("RGB", (32, 32)), "unsqueeze(0)"),
    ],
)
def test_non_tensor_into_the_network(x, needle):
    with pytest.raises(TypeError) as err:
        ConvNet()(x)
    assert "input x must be a torch.Tensor" in _error(err)
    assert type(x).__name__ in _error(err) and needle in _error(err)


@pytest.mark.parametrize(
    "call, kind, needle",
    [
        (lambda: conv_output_size(-1, 3), ValueError, "size must be an integer >= 0, got -1"),
        (lambda: conv_output_size(32, 0), ValueError, "kernel_size must be an integer >= 1, got 0"),
        (
            lambda: conv_output_size(32, 3, padding=-1),
            ValueError,
            "padding must be an integer >= 0",
        ),
        (lambda: conv_output_size(32, 3, stride=0), ValueError, "stride must be an integer >= 1"),
        (
            lambda: conv_output_size(32, 2.5),
            TypeError,
            "kernel_size must be an integer >= 1, got 2.5",
        ),
        (lambda: feature_map_sizes(channels=()), ValueError, "channels must be a non-empty"),
        (lambda: feature_map_sizes(pool=0), ValueError, "pool must be an integer >= 1, got 0"),
        (lambda: dropout_demo(p=1.5), ValueError, "p must be a probability from 0 to 1, got 1.5"),
        (lambda: count_parameters("ConvNet"), TypeError, "model must be a torch.nn.Module"),
        (lambda: layer_summary(ConvNet(), (3, 32, 32)), ValueError, "input_shape must be a batch"),
        (lambda: flat_to_modular_state_dict({"conv3.weight": 0}), ValueError, "'conv3.weight'"),
        (
            lambda: trace_shapes(ModularConvNet(), torch.zeros(1, 3, 32, 32)),
            TypeError,
            "got ModularConvNet",
        ),
        (
            lambda: describe_modular(n_blocks=0),
            ValueError,
            "n_blocks must be an integer >= 1, got 0",
        ),
    ],
)
def test_other_model_functions(call, kind, needle):
    with pytest.raises(kind) as err:
        call()
    assert needle in _error(err)


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
# run_all.py: the command line


def _notebook(path, params="QUICK = False\nEPOCHS = 2", *sources):
    cells = [new_code_cell(params)] + [new_code_cell(src) for src in sources]
    cells[0].metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture
def course(tmp_path):
    """A fake course folder: 01..07 notebooks with a parameters cell."""
    src = tmp_path / "nbs"
    src.mkdir()
    for name in ["01_a", "02_b", "03_c", "04_d", "05_e", "06_f", "07_g"]:
        _notebook(
            src / f"{name}.ipynb",
            "QUICK = False\nEPOCHS = 2\nSEED = 0",
            "metrics = {'acc': 1.0}\nmetrics",
        )
    return src


def _main_exit(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_all.main(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("spelling", ["same", "dotdot", "symlink"])
def test_out_that_is_the_notebook_folder_is_refused(course, capsys, spelling):
    out = {
        "same": course,
        "dotdot": course / ".." / course.name,
        "symlink": course.parent / "link",
    }[spelling]
    if spelling == "symlink":
        out.symlink_to(course, target_is_directory=True)
    before = _tree_digest(course)
    err = _main_exit(["--dir", str(course), "--out", str(out), "--quick"], capsys)
    assert f"--out {out}" in err and "overwrite" in err
    assert _tree_digest(course) == before


def test_out_notebooks_of_the_course_is_refused(monkeypatch, capsys):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a notebook ran")

    monkeypatch.setattr(papermill, "execute_notebook", must_not_run)
    monkeypatch.chdir(REPO)
    before = _tree_digest(NOTEBOOK_DIR)
    err = _main_exit(["--out", "notebooks", "--quick", "--only", "01"], capsys)
    assert "--out notebooks is the course's notebook folder" in err
    assert _tree_digest(NOTEBOOK_DIR) == before


def test_out_holding_the_notebooks_is_refused(course, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    os.link(course / "02_b.ipynb", other / "02_b.ipynb")  # the same file under another folder
    before = _tree_digest(course)
    err = _main_exit(["--dir", str(course), "--out", str(other)], capsys)
    assert "holds the course's notebook 02_b.ipynb" in err
    assert _tree_digest(course) == before


def test_out_that_is_a_file_is_refused(course, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    err = _main_exit(["--dir", str(course), "--out", str(tmp_path / "file")], capsys)
    assert "is a file" in err


def test_only_with_an_unknown_prefix(course, tmp_path, capsys):
    err = _main_exit(
        ["--dir", str(course), "--out", str(tmp_path / "o"), "--only", "02", "99"], capsys
    )
    assert "--only 99" in err and "01, 02, 03, 04, 05, 06, 07" in err
    assert not (tmp_path / "o").exists()


def test_parameter_no_notebook_declares(course, tmp_path, capsys):
    err = _main_exit(
        ["--dir", str(course), "--out", str(tmp_path / "o"), "--only", "02", "-p", "EPOCHZ", "3"],
        capsys,
    )
    assert "-p EPOCHZ" in err and "did you mean EPOCHS?" in err
    assert "02_b.ipynb: EPOCHS, QUICK, SEED" in err


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--timeout", "0"),
        ("--timeout", "-5"),
        ("--timeout", "soon"),
        ("--jobs", "0"),
        ("--jobs", "-1"),
        ("--jobs", "two"),
    ],
)
def test_timeout_and_jobs_must_be_positive(course, tmp_path, capsys, flag, value):
    err = _main_exit(["--dir", str(course), "--out", str(tmp_path / "o"), flag, value], capsys)
    assert flag in err and value in err and ">= 1" in err


def test_unknown_kernel(course, tmp_path, capsys):
    err = _main_exit(
        ["--dir", str(course), "--out", str(tmp_path / "o"), "--kernel", "julia"], capsys
    )
    assert "--kernel julia" in err and "python3" in err


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(notebooks=[]), "notebooks is empty"),
        (dict(notebooks=["nowhere.ipynb"]), "no such file: nowhere.ipynb"),
        (dict(timeout=0), "timeout must be a whole number of seconds >= 1, got 0"),
        (dict(timeout=2.5), "got 2.5"),
        (dict(jobs=0), "jobs must be an integer >= 1, got 0"),
        (dict(jobs=True), "got True"),
        (dict(parameters=["EPOCHS", 3]), "parameters must be a dict"),
        (dict(execute=lambda *a: None, jobs=2), "module-level function"),
    ],
)
def test_run_all_function_arguments(course, tmp_path, kwargs, needle):
    args = dict(notebooks=[course / "01_a.ipynb"], out_dir=tmp_path / "o")
    args.update(kwargs)
    with pytest.raises((TypeError, ValueError)) as err:
        run_all.run_all(**args)
    assert needle in _error(err)
    assert not (tmp_path / "o").exists()


def test_run_all_function_refuses_the_notebook_folder(course):
    before = _tree_digest(course)
    with pytest.raises(ValueError, match="out_dir: .* is the course's notebook folder"):
        run_all.run_all([course / "01_a.ipynb"], course)
    assert _tree_digest(course) == before


# =============================================================================================
# run_all.py: one notebook's trouble is recorded, and the summary is always written


def _fake_papermill(behaviour):
    """A stand-in for papermill.execute_notebook: behaviour maps a notebook prefix to what
    happens (an exception to raise, or the metrics text its output shows)."""
    calls = []

    def execute_notebook(input_path, output_path, parameters=None, **kwargs):
        calls.append(Path(input_path).name[:2])
        what = behaviour.get(Path(input_path).name[:2], "{'acc': 1.0}")
        if isinstance(what, BaseException):
            raise what
        _write_executed(output_path, what)

    execute_notebook.calls = calls
    return execute_notebook


def _summary(out):
    text = (out / "summary.json").read_text()
    return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in summary.json"))


def test_ctrl_c_in_the_second_notebook_writes_the_summary(course, tmp_path, monkeypatch):
    fake = _fake_papermill({"02": KeyboardInterrupt()})
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    out = tmp_path / "out"
    code = run_all.main(["--dir", str(course), "--out", str(out), "--only", "01", "02", "03"])
    assert code == 130 and fake.calls == ["01", "02"]
    rows = _summary(out)["notebooks"]
    assert [(r["notebook"], r["status"]) for r in rows] == [
        ("01_a.ipynb", "ok"),
        ("02_b.ipynb", "interrupted"),
        ("03_c.ipynb", "not run"),
    ]
    assert rows[0]["metrics"] == {"acc": 1.0} and _summary(out)["interrupted"] is True
    markdown = (out / "summary.md").read_text()
    assert "02_b.ipynb | interrupted" in markdown and "03_c.ipynb | not run" in markdown


def test_ctrl_c_from_the_function_is_raised_again_after_the_summary(course, tmp_path, monkeypatch):
    monkeypatch.setattr(papermill, "execute_notebook", _fake_papermill({"01": KeyboardInterrupt()}))
    with pytest.raises(KeyboardInterrupt):
        run_all.run_all([course / "01_a.ipynb", course / "02_b.ipynb"], tmp_path / "out")
    statuses = [r["status"] for r in _summary(tmp_path / "out")["notebooks"]]
    assert statuses == ["interrupted", "not run"]


def test_nan_metrics_do_not_stop_the_run(course, tmp_path, monkeypatch):
    fake = _fake_papermill(
        {
            "01": "{'test_acc': nan, 'loss': inf, 'low': -inf}",
            "02": "{'test_acc': np.float64(71.5), 'n': np.int64(3)}",
        }
    )
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    out = tmp_path / "out"
    code = run_all.main(["--dir", str(course), "--out", str(out), "--only", "01", "02", "03"])
    assert code == 0 and fake.calls == ["01", "02", "03"]
    rows = _summary(out)["notebooks"]  # strict JSON: nan and inf are null
    assert rows[0]["metrics"] == {"test_acc": None, "loss": None, "low": None}
    assert rows[1]["metrics"] == {"test_acc": 71.5, "n": 3}
    markdown = (out / "summary.md").read_text()
    assert "test_acc=nan, loss=inf, low=-inf" in markdown


@pytest.mark.parametrize(
    "text", ["{'acc': 1.0", "__import__('os').getcwd()", "[1, 2]", "{'acc': open('x')}"]
)
def test_unreadable_metrics_are_reported_not_run(text):
    with pytest.raises(ValueError):
        run_all.parse_metrics(text)


def test_unreadable_metrics_keep_the_notebook_ok(course, tmp_path, monkeypatch):
    monkeypatch.setattr(papermill, "execute_notebook", _fake_papermill({"01": "{'acc': 1.0"}))
    out = tmp_path / "out"
    assert run_all.main(["--dir", str(course), "--out", str(out), "--only", "01"]) == 0
    row = _summary(out)["notebooks"][0]
    assert row["status"] == "ok" and row["error"].startswith("metrics not readable")


def test_multi_line_error_keeps_name_first_and_last_line(course, tmp_path, monkeypatch):
    evalue = "CIFAR-10 is not available: no network.\n" + "detail\n" * 50 + "  3. use QUICK."
    error = papermill.PapermillExecutionError(5, 7, "load()", "DataUnavailableError", evalue, [])
    fake = _fake_papermill({"02": error, "03": RuntimeError("Kernel died\nwhile running")})
    monkeypatch.setattr(papermill, "execute_notebook", fake)
    out = tmp_path / "out"
    code = run_all.main(["--dir", str(course), "--out", str(out), "--only", "02", "03", "04"])
    assert code == 1 and fake.calls == ["02", "03", "04"]
    rows = _summary(out)["notebooks"]
    assert rows[0]["error"] == (
        "cell In [7] of the executed copy: DataUnavailableError: "
        "CIFAR-10 is not available: no network. ... 3. use QUICK."
    )
    assert rows[1]["status"] == "failed"
    assert rows[1]["error"] == "RuntimeError: Kernel died ... while running"
    assert rows[2]["status"] == "ok"
    long_error = papermill.PapermillExecutionError(1, 1, "f()", "ValueError", "x" * 1000, [])
    assert len(run_all.error_text(long_error)) <= run_all.ERROR_CHARS


def test_summary_json_is_strict_even_with_odd_values(tmp_path):
    summary = {
        "parameters": {"LR": math.inf},
        "jobs": 1,
        "seconds": 1.0,
        "notebooks": [
            {
                "notebook": "a",
                "status": "ok",
                "seconds": 1.0,
                "error": "",
                "metrics": {"x": math.nan, "t": (1, 2), "obj": object},
            }
        ],
    }
    run_all.write_summary(tmp_path, summary)
    loaded = _summary(tmp_path)
    assert loaded["parameters"] == {"LR": None}
    assert loaded["notebooks"][0]["metrics"]["t"] == [1, 2]


# =============================================================================================
# analysis.py, transfer.py, training.py and support/ (plots, widgets, lesson, checkpoints, seeds):
# one bad argument (at least) per public function; the message names the argument.

from lesson_utils import analysis, training, transfer  # noqa: E402
from lesson_utils.support import checkpoints, plots, seeds  # noqa: E402
from lesson_utils.support import lesson as lesson_module  # noqa: E402
from lesson_utils.support.widgets import live  # noqa: E402

_BATCH = [(torch.zeros(2, 3, 32, 32), torch.zeros(2, dtype=torch.long))]
_HISTORY = {
    "epoch": [1],
    "train_loss": [1.0],
    "train_acc": [50.0],
    "test_loss": [1.2],
    "test_acc": [40.0],
    "lr": [1e-3],
    "seconds": [1.0],
}


def _vgg16():
    with torch.device("meta"):  # the layers without 138 million real weights: milliseconds
        return transfer.models.vgg16(weights=None)


@pytest.mark.parametrize(
    "call, kind, needle",
    [
        # analysis
        (
            lambda: analysis.predict(None, _BATCH, "cpu"),
            TypeError,
            "model must be a torch.nn.Module",
        ),
        (lambda: analysis.predict(ConvNet(), None, "cpu"), TypeError, "loader must be a loader"),
        (lambda: analysis.predict(ConvNet(), [], "cpu"), ValueError, "loader yields no batches"),
        (
            lambda: analysis.misclassified(ConvNet(), _BATCH, "cpu", n=0),
            ValueError,
            "n must be an integer >= 1, got 0",
        ),
        (
            lambda: analysis.misclassified(ConvNet(), _BATCH, "cpu", per_class=-1),
            ValueError,
            "per_class must be an integer >= 1, got -1",
        ),
        (
            lambda: analysis.confusion_matrix([1, 2], torch.tensor([1, 2])),
            TypeError,
            "predictions must be a torch tensor",
        ),
        (
            lambda: analysis.confusion_matrix(torch.tensor([1, 2]), torch.tensor([1])),
            ValueError,
            "predictions (2) and targets (1)",
        ),
        (
            lambda: analysis.confusion_matrix(torch.tensor([0]), torch.tensor([10])),
            ValueError,
            "targets must hold class indices 0 to 9, got values from 10 to 10",
        ),
        (
            lambda: analysis.confusion_matrix(torch.tensor([0]), torch.tensor([0]), n_classes=0),
            ValueError,
            "n_classes must be an integer >= 1, got 0",
        ),
        (
            lambda: analysis.per_class_accuracy(torch.tensor([1, 2])),
            ValueError,
            "matrix must have 2 dimensions",
        ),
        (
            lambda: analysis.most_confused_pairs(torch.ones(10, 10), ["a"]),
            ValueError,
            "classes must give a name to each of the 10 classes",
        ),
        (
            lambda: analysis.most_confused_pairs(torch.ones(10, 10), CLASSES, k=0),
            ValueError,
            "k must be an integer >= 1",
        ),
        (
            lambda: analysis.most_confused_pairs(torch.ones(2, 3), CLASSES),
            ValueError,
            "matrix must be a non-empty square matrix, got shape [2, 3]",
        ),
        (
            lambda: analysis.first_layer_filters(torch.nn.Linear(2, 2)),
            ValueError,
            "model must have conv1",
        ),
        (
            lambda: analysis.feature_maps(ConvNet(), torch.zeros(32, 32)),
            ValueError,
            "image must have 3 dimensions",
        ),
        (
            lambda: analysis.convnet_layers(ConvNet(), image_size=0),
            ValueError,
            "image_size must be an integer >= 1, got 0",
        ),
        (lambda: analysis.receptive_field([]), ValueError, "layers is empty"),
        (
            lambda: analysis.input_window((8, 0), analysis.convnet_layers(ConvNet())),
            ValueError,
            "position must be (row, column) of the last 8x8 map, each 0 to 7, got (8, 0)",
        ),
        # plots
        (lambda: plots.plot_loss_curves(None), TypeError, "histories must be a history from fit"),
        (
            lambda: plots.plot_loss_curves({"x": {"epoch": [1]}}),
            ValueError,
            "histories['x'] lacks train_loss",
        ),
        (lambda: plots.plot_loss_curves({"x": []}), ValueError, "histories['x'] is an empty list"),
        (
            lambda: plots.plot_loss_curves({"x": [_HISTORY, dict(_HISTORY, epoch=[2])]}),
            ValueError,
            "histories['x']: the runs of one label must cover the same epochs",
        ),
        (
            lambda: plots.show_images(torch.zeros(2, 3, 32, 32), ncols=0),
            ValueError,
            "ncols must be an integer >= 1, got 0",
        ),
        (
            lambda: plots.show_images(torch.zeros(2, 3, 32, 32), labels=[1]),
            ValueError,
            "labels must give one label per image: 1 labels for 2 images",
        ),
        (
            lambda: plots.show_images(torch.zeros(2, 3, 32, 32), [0, 5], ["a", "b"]),
            ValueError,
            "classes must give a name to each of the 6 classes",
        ),
        (
            lambda: plots.show_images(torch.zeros(32, 32)),
            ValueError,
            "images must have 4 dimensions",
        ),
        (lambda: plots.plot_lr_schedules([1e-3]), TypeError, "schedules must be a non-empty dict"),
        (
            lambda: plots.plot_lr_schedules({"x": [1e-3, 0]}),
            ValueError,
            "schedules['x'] must be a non-empty list of positive learning rates",
        ),
        (
            lambda: plots.augmentation_grid(None, {"flip": lambda im: im}, cols=0),
            ValueError,
            "cols must be an integer >= 1, got 0",
        ),
        (
            lambda: plots.augmentation_grid(None, {}),
            TypeError,
            "augmentations must be a non-empty dict",
        ),
        (lambda: plots.draw_vgg16(frozen_blocks=6), ValueError, "frozen_blocks must be 0 to 5"),
        (lambda: plots.draw_vgg16(new_head=0), ValueError, "new_head must be an integer >= 1"),
        (lambda: plots.draw_shape_flow(steps=5), TypeError, "steps must be (name, shape) pairs"),
        (
            lambda: plots.plot_confusion_matrix(torch.eye(3), ["a"]),
            ValueError,
            "classes must name the 3 rows of matrix, got 1 names",
        ),
        (
            lambda: plots.plot_confusion_matrix(torch.eye(3), "abc", normalize="yes"),
            TypeError,
            "normalize must be True or False",
        ),
        (
            lambda: plots.plot_per_class_accuracy({"x": torch.ones(10)}, ["a"]),
            ValueError,
            "accuracies['x'] has 10 values for 1 classes",
        ),
        (
            lambda: plots.show_misclassified(None, CLASSES),
            TypeError,
            "result must be the dict that analysis.misclassified returns",
        ),
        (
            lambda: plots.plot_filters(torch.zeros(3, 3, 3)),
            ValueError,
            "filters must have 4 dimensions",
        ),
        (lambda: plots.plot_feature_maps(None), TypeError, "maps must be the dict"),
        (
            lambda: plots.plot_feature_maps({"conv1": torch.zeros(4, 4)}),
            ValueError,
            "maps['conv1'] must have 3 dimensions",
        ),
        (
            lambda: plots.plot_feature_maps({"conv1": torch.zeros(2, 4, 4)}, n=0),
            ValueError,
            "n must be an integer >= 1, got 0",
        ),
        # transfer
        (
            lambda: transfer.load_vgg16(pretrained="yes"),
            TypeError,
            "pretrained must be True or False, got 'yes'",
        ),
        (
            lambda: transfer.set_trainable(None, False),
            TypeError,
            "module must be a torch.nn.Module",
        ),
        (
            lambda: transfer.vgg16_conv_blocks(ConvNet()),
            ValueError,
            "model must have features (a VGG16 from load_vgg16)",
        ),
        (
            lambda: transfer.prepare_vgg16((_vgg16(), "note")),
            TypeError,
            "load_vgg16 returns (model, note)",
        ),
        (
            lambda: transfer.prepare_vgg16(_vgg16(), n_classes=0),
            ValueError,
            "n_classes must be an integer >= 1, got 0",
        ),
        (lambda: transfer.parameter_counts("VGG16"), TypeError, "model must be a torch.nn.Module"),
        (lambda: transfer.trainable_layers(None), TypeError, "model must be a torch.nn.Module"),
        # widgets
        (lambda: live(None), TypeError, "function must be the function to show, got NoneType"),
        (lambda: live(lambda p=0.5: p, q=3), TypeError, "has no parameter q; its parameters: p"),
        # training
        (lambda: training.seed_everything("0"), TypeError, "seed must be an integer >= 0, got '0'"),
        (lambda: training.seed_everything(2**32), ValueError, "seed must be below 2**32"),
        (lambda: training.make_scheduler(None), TypeError, "optimizer must be a torch optimizer"),
        (
            lambda: training.lr_per_epoch(epochs=0),
            ValueError,
            "epochs must be an integer >= 1, got 0",
        ),
        (
            lambda: training.lr_per_epoch(step_size=0),
            ValueError,
            "step_size must be an integer >= 1, got 0",
        ),
        (lambda: training.lr_per_epoch(gamma=0), ValueError, "gamma must be a number > 0"),
        (
            lambda: checkpoints.save_checkpoint("x.pt", None),
            TypeError,
            "model must be a torch.nn.Module",
        ),
        (
            lambda: checkpoints.save_checkpoint(None, ConvNet()),
            TypeError,
            "path must be a file path",
        ),
        (
            lambda: checkpoints.cache_path("runs/baseline", {}),
            ValueError,
            "name must be a short run name",
        ),
        (lambda: checkpoints.cache_path("baseline", None), TypeError, "key must be a dict"),
        (
            lambda: checkpoints.train_or_load("b", {"epochs": 1}, ConvNet(), None, folder="unused"),
            TypeError,
            "train_fn must be a function that trains the model",
        ),
        (
            lambda: checkpoints.train_or_load(
                "b", {"epochs": 1}, None, lambda: _HISTORY, folder="unused"
            ),
            TypeError,
            "model must be a torch.nn.Module",
        ),
        (
            lambda: checkpoints.train_or_load(
                "b", {"epochs": 1}, ConvNet(), lambda: _HISTORY, folder="unused", replay="no"
            ),
            TypeError,
            "replay must be True or False",
        ),
        (lambda: training.epoch_line({}), ValueError, "history lacks epoch"),
        (lambda: training.final_metrics({}), ValueError, "history lacks epoch"),
        (
            lambda: training.final_metrics(training.new_history()),
            ValueError,
            "history holds no epoch",
        ),
        (
            lambda: seeds.seed_summary([_HISTORY], last=0),
            ValueError,
            "last must be an integer >= 1, got 0",
        ),
        # lesson
        (
            lambda: lesson_module.loader_key(_BATCH),
            TypeError,
            "loader must be a TensorLoader or a DataLoader",
        ),
    ],
)
def test_more_public_functions(call, kind, needle):
    with pytest.raises(kind) as err:
        call()
    assert needle in _error(err)


def test_train_fn_that_returns_no_history_saves_nothing(tmp_path):
    with pytest.raises(TypeError, match=r"train_fn\(\)'s result must be the history dict"):
        checkpoints.train_or_load("b", {"epochs": 1}, ConvNet(), lambda: None, folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_failed_prepare_vgg16_and_set_trainable_change_nothing():
    model = _vgg16()
    before = [p.requires_grad for p in model.parameters()]
    head = model.classifier[6]
    with pytest.raises(ValueError, match="unfreeze_blocks must be 0 to 5"):
        transfer.prepare_vgg16(model, unfreeze_blocks=6)
    with pytest.raises(TypeError, match="trainable must be True or False"):
        transfer.set_trainable(model, 0)
    assert [p.requires_grad for p in model.parameters()] == before
    assert model.classifier[6] is head


def test_a_model_with_fewer_outputs_than_classes_is_named():
    from lesson_utils.training import fit

    train_set = make_generated_cifar(64)
    loader = TensorLoader(train_set, batch_size=32)
    model = ConvNet()
    model.fc2 = torch.nn.Linear(128, 5)  # 5 outputs, labels 0..9
    with pytest.raises(ValueError) as err:
        fit(
            model,
            loader,
            loader,
            torch.optim.SGD(model.parameters(), lr=0.01),
            1,
            "cpu",
            log="none",
        )
    assert "a label of the loaders is past the model's outputs" in _error(err)
    assert "nn.Linear(128, 10)" in _error(err)
