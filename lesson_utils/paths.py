"""Where the course keeps things: one place, no torch needed to know it."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"  # downloads; git-ignored
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"  # saved models; git-ignored
NOTEBOOK_DIR = REPO_ROOT / "notebooks"
