"""Where things live: the project's folders and the dataset's location."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = PROJECT_ROOT / "data"
FIGURES_DIR = PROJECT_ROOT / "figures"
RESULTS_DIR = PROJECT_ROOT / "results"
RUNS_DIR = PROJECT_ROOT / "runs"
RESULTS_ENV, RUNS_ENV = "FER_RESULTS_DIR", "FER_RUNS_DIR"

DATASET_ENV = "FER2013_PATH"
DEFAULT_DATASET_PATHS = (DATA_DIR / "fer2013.zip", DATA_DIR / "fer2013")
DOWNLOAD_COMMAND = "python -m fer_utils download"


class DatasetNotFoundError(FileNotFoundError):
    """The FER-2013 archive or folder is in none of the places we look."""


def find_dataset(path: str | os.PathLike | None = None) -> Path:
    """Locate FER-2013: ``path``, else ``$FER2013_PATH``, else ``data/fer2013.zip`` or ``data/fer2013/``."""
    if path is not None:
        candidates = [(Path(path), "the path given")]
    elif os.environ.get(DATASET_ENV):
        candidates = [(Path(os.environ[DATASET_ENV]), f"${DATASET_ENV}")]
    else:
        candidates = [(p, "the default") for p in DEFAULT_DATASET_PATHS]
    for candidate, _ in candidates:
        if candidate.exists():
            return candidate.resolve()
    looked = "\n".join(f"  - {p} ({why})" for p, why in candidates)
    raise DatasetNotFoundError(
        f"FER-2013 was not found. Looked in:\n{looked}\n"
        f"Download it with `{DOWNLOAD_COMMAND}` (needs a Kaggle account: see data/README.md), "
        f"or point ${DATASET_ENV} at the Kaggle archive (msambare/fer2013 .zip) or its unpacked folder."
    )


def results_dir() -> Path:
    """Where records go: ``$FER_RESULTS_DIR`` if set (the tests use this), else results/."""
    return Path(os.environ.get(RESULTS_ENV) or RESULTS_DIR)


def runs_dir() -> Path:
    """Where training checkpoints go: ``$FER_RUNS_DIR`` if set, else runs/ (ignored by git); in fast
    mode a fast/ folder inside it, so a smoke run never resumes from (or clobbers) a real run."""
    from .runtime import fast_mode

    root = Path(os.environ.get(RUNS_ENV) or RUNS_DIR)
    return root / "fast" if fast_mode() else root


def project_relative(path: str | os.PathLike) -> str:
    """``path`` relative to the project root where it lies inside it (so records hold no machine's
    own folders), else as given."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT) else str(path)
