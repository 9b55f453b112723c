"""Downloading FER-2013 from Kaggle (``msambare/fer2013``) through kagglehub."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

KAGGLE_DATASET = "msambare/fer2013"


class DownloadError(RuntimeError):
    """The dataset could not be downloaded (no network, no credentials, no kagglehub)."""


def _root_cause(err: BaseException) -> str:
    """The innermost exception of a chain, as one short line (kagglehub wraps socket errors several times)."""
    while err.__cause__ or err.__context__:
        err = err.__cause__ or err.__context__
    return f"{type(err).__name__}: {' '.join(str(err).split())}"[:200]


def download(dest: str | os.PathLike) -> Path:
    """Download the dataset and place its train/ and test/ folders in ``dest`` (atomically).

    Needs Kaggle credentials (``~/.kaggle/kaggle.json`` or ``$KAGGLE_USERNAME``/``$KAGGLE_KEY``).
    """
    dest = Path(dest)
    if (dest / "train").is_dir() and (dest / "test").is_dir():
        return dest
    try:
        import kagglehub
    except ImportError:
        raise DownloadError("kagglehub is not installed: pip install kagglehub") from None
    try:
        source = Path(kagglehub.dataset_download(KAGGLE_DATASET))
    except Exception as err:  # kagglehub raises many types: network, auth, HTTP
        raise DownloadError(
            f"could not download {KAGGLE_DATASET} from Kaggle ({_root_cause(err)}). Check your network and Kaggle "
            "credentials (https://www.kaggle.com/docs/api), or download the archive by hand and set "
            "FER2013_PATH to it."
        ) from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    for split in ("train", "test"):
        shutil.copytree(source / split, tmp / split)
    tmp.replace(dest)
    return dest
