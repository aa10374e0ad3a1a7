import json

import pytest

from lesson_utils.course import benchmark


def test_benchmark_prints_a_table_and_a_json_line(capsys):
    result = benchmark.run(quick=True, repeats=1, device="cpu", n_train=640, n_test=128)
    lines = capsys.readouterr().out.strip().splitlines()
    assert json.loads(lines[-1]) == result
    for key in (
        "device",
        "threads",
        "train_speedup",
        "train_aug_speedup",
        "eval_speedup",
        "fast_vs_compute",
        "train_lesson_s",
        "train_fast_s",
        "train_compute_s",
        "dropout_ratio",
        "lesson_dropout_ratio",
    ):
        assert key in result
    for case in ("train", "train_aug", "eval"):  # each speedup is lesson time / fast time
        expected = result[f"{case}_lesson_s"] / result[f"{case}_fast_s"]
        assert result[f"{case}_speedup"] == pytest.approx(expected, rel=0.05), case
    assert any(line.startswith("train_aug") for line in lines)
    # the dropout ratios compare the best training step of each network (of 10 here)
    for name, ratio in (("dropout", "dropout_ratio"), ("dropout_lesson", "lesson_dropout_ratio")):
        expected = result[f"{name}_step_ms"] / result["train_step_ms"]
        assert result[ratio] == pytest.approx(expected, rel=0.01), name
        assert result[f"{name}_step_ms"] <= 1e3 * result[f"{name}_compute_s"] / 10, name
    assert any(line.startswith("best of 10 training steps of batch 64") for line in lines)
    assert any(line.startswith("dropout network / ConvNet, per step") for line in lines)


def test_benchmark_amp_flag_runs_in_bfloat16(capsys):
    result = benchmark.run(quick=True, repeats=1, device="cpu", n_train=640, n_test=128, amp=True)
    assert result["amp"] is True and result["compile"] is None
    assert "amp bf16" in capsys.readouterr().out


def test_cuda_graphs_need_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        benchmark.run(
            quick=True,
            repeats=1,
            device="cpu",
            n_train=640,
            n_test=128,
            compile_mode="reduce-overhead",
        )


def test_freed_memory_is_kept_where_the_c_library_is_glibc(monkeypatch):
    from lesson_utils.support import memory

    if memory.sys.platform.startswith("linux") and memory.ctypes.util.find_library("c"):
        assert memory.keep_freed_memory() is True  # this machine: Linux with glibc
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory.keep_freed_memory() is False
    monkeypatch.setattr(memory.sys, "platform", "linux")

    def no_glibc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(memory.ctypes, "CDLL", no_glibc)
    assert memory.keep_freed_memory() is False
