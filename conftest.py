"""Test settings shared by the unit tests, the papermill tests and nbval (which runs notebooks/)."""

import os
import tempfile

# Notebook kernels started by the tests inherit these.
os.environ["LESSON_QUICK"] = "1"  # every notebook in QUICK mode: generated data, a few batches
# OpenMP spin-waits make small kernels slow on 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("CIFAR10_ROOT", None)  # tests never use a local copy of CIFAR-10
# nor weights that this machine's torch cache may hold: an empty cache of their own (a test that
# needs weights writes stand-ins into a TORCH_HOME of its own)
os.environ["TORCH_HOME"] = tempfile.mkdtemp(prefix="lesson-tests-torch-home-")
