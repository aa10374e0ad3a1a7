"""Notebook 07's ImageNet path, tested offline without mocks of the loading itself: torchvision
reads a weights file from $TORCH_HOME/hub/checkpoints/<the file name of the weights' URL> without
downloading it, so stand-in weights of the right shapes there run the pretrained cells for real.
(Without them, nbval runs the notebook's skip path: those cells' outputs are checked.)"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from torchvision import models

from lesson_utils.transfer import BACKBONES, cached_weights_file

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "07_transfer_learning.ipynb"


def test_07_trains_a_head_on_a_pretrained_network_from_cached_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    build, weights, _ = BACKBONES["resnet18"]
    path = cached_weights_file(weights)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(models.resnet18().state_dict(), path)  # stand-in weights: the shapes, not the values
    out = tmp_path / "07.ipynb"
    env = {**os.environ, "LESSON_QUICK": "1"}
    # the papermill command line, no --execution-timeout, on a notebook with a live() widget: a
    # lost kernel reply (what an ipywidgets Output once caused) would hang it; the guard fails it
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(NOTEBOOK),
            str(out),
            "-p",
            "BACKBONE",
            "resnet18",
            "--cwd",
            str(NOTEBOOK.parent),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = "\n".join(
        "".join(o.get("text", ""))
        for c in json.loads(out.read_text())["cells"]
        for o in c.get("outputs", [])
    )
    assert "resnet18 with ImageNet weights (IMAGENET1K_V1)" in text
    assert "resnet18 at 32x32: the features of" in text
    assert "frozen + new head, 20 per class" in text and "frozen + new head, 40 per class" in text
    assert "fine-tune the last block, 20 per class" in text
    assert "epochs chosen on validation" in text
    assert "the frozen network's weights are unchanged: True" in text
    assert "Skipped" not in text
