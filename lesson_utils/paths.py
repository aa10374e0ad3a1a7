"""Where the course keeps its data and saved runs: one place, no torch needed to know it.

In a checkout (an editable install, or the notebooks run from the repository) that is the
repository root. Installed any other way (pip install lesson_utils from a wheel), it is the folder
named by $LESSON_HOME, else the current working directory: never inside site-packages.
"""

import os
from pathlib import Path

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent
_IN_CHECKOUT = (_PACKAGE_PARENT / "pyproject.toml").is_file() and (
    _PACKAGE_PARENT / "notebooks"
).is_dir()

if os.environ.get("LESSON_HOME"):
    REPO_ROOT = Path(os.environ["LESSON_HOME"]).expanduser().resolve()
elif _IN_CHECKOUT:
    REPO_ROOT = _PACKAGE_PARENT
else:
    REPO_ROOT = Path.cwd()
DATA_DIR = REPO_ROOT / "data"  # downloads; git-ignored
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"  # saved runs; git-ignored
NOTEBOOK_DIR = _PACKAGE_PARENT / "notebooks"


def shown(path):
    """A path relative to REPO_ROOT when it is inside it (no machine paths in outputs)."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return Path(path).name
