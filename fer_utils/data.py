"""Loading FER-2013 (Kaggle ``msambare/fer2013`` layout) into memory, and splitting it.

The archive (or the same tree unpacked) holds ``train/<class>/Training_<id>.jpg`` and
``test/<class>/{PublicTest,PrivateTest}_<id>.jpg``: 48x48 grayscale JPEGs.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.model_selection import train_test_split

from .config import CLASSES
from .paths import find_dataset

SPLIT_FOLDERS = ("train", "test")
SOURCES = ("Training", "PublicTest", "PrivateTest")
IMAGE_SIZE = 48
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class DatasetFormatError(ValueError):
    """The dataset exists but does not have the expected layout or content."""


@dataclass(frozen=True)
class Split:
    """A set of images in memory.

    images: (N, 48, 48) uint8; labels: (N,) int64 class indices;
    sources: (N,) str, one of SOURCES; paths: (N,) str, the path inside the archive.
    """

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    paths: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> Split:
        """The images selected by an index array or boolean mask."""
        return Split(self.images[index], self.labels[index], self.sources[index], self.paths[index])

    def class_counts(self, classes=CLASSES) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(classes))
        return dict(zip(classes, counts.tolist(), strict=True))


@dataclass(frozen=True)
class FER2013:
    """The whole dataset: the training set, the test set (PublicTest + PrivateTest) and the class names."""

    train: Split
    test: Split
    classes: tuple[str, ...]
    location: Path

    def subset(self, fraction: float, seed: int = 0) -> FER2013:
        """A stratified ``fraction`` of both splits (fast mode uses this)."""
        return FER2013(stratified_subset(self.train, fraction, seed), stratified_subset(self.test, fraction, seed),
                       self.classes, self.location)


def _members(location: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (path inside the dataset, file bytes) for every image file, from a zip or a folder."""
    if location.is_file():
        try:
            archive = zipfile.ZipFile(location)
        except zipfile.BadZipFile as err:
            raise DatasetFormatError(
                f"{location} is not a zip archive. Point FER2013_PATH at the Kaggle "
                "msambare/fer2013 .zip or at the folder holding train/ and test/."
            ) from err
        with archive:
            for info in archive.infolist():
                if not info.is_dir() and info.filename.lower().endswith(IMAGE_SUFFIXES):
                    yield info.filename, archive.read(info)
    else:
        root = _tree_root(location)
        for dirpath, _, filenames in os.walk(root):
            for name in sorted(filenames):
                if name.lower().endswith(IMAGE_SUFFIXES):
                    full = Path(dirpath) / name
                    yield full.relative_to(root).as_posix(), full.read_bytes()


def _tree_root(folder: Path) -> Path:
    """The folder that holds train/ and test/: the folder itself or its single subfolder."""
    if any((folder / s).is_dir() for s in SPLIT_FOLDERS):
        return folder
    subfolders = [p for p in folder.iterdir() if p.is_dir()]
    if len(subfolders) == 1:
        return _tree_root(subfolders[0])
    return folder


def _parse_path(member: str, location: Path) -> tuple[str, int, str]:
    """Split 'train/happy/Training_1.jpg' into (split folder, class index, source)."""
    parts = member.split("/")
    if len(parts) < 3:
        raise DatasetFormatError(
            f"{location}: unexpected file {member!r}; expected <split>/<class>/<name>.jpg"
        )
    split, cls, name = parts[-3:]
    if split not in SPLIT_FOLDERS:
        raise DatasetFormatError(
            f"{location}: {member!r} is in an unknown split folder {split!r}; expected one of {SPLIT_FOLDERS}"
        )
    if cls not in CLASSES:
        raise DatasetFormatError(
            f"{location}: {member!r} is in an unknown class folder {cls!r}; expected one of {CLASSES}"
        )
    source = name.split("_", 1)[0]
    if source not in SOURCES:
        raise DatasetFormatError(
            f"{location}: cannot tell the source of {member!r} from its name; expected a name "
            f"starting with one of {SOURCES} and '_'"
        )
    return split, CLASSES.index(cls), source


def _decode(data: bytes, member: str, location: Path) -> np.ndarray:
    """Decode one image, which must be 48x48 grayscale, into a (48, 48) uint8 array."""
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as err:  # PIL raises several types for corrupt files
        raise DatasetFormatError(f"{location}: {member!r} does not decode as an image ({err})") from err
    if img.mode != "L" or img.size != (IMAGE_SIZE, IMAGE_SIZE):
        raise DatasetFormatError(
            f"{location}: {member!r} is {img.size[0]}x{img.size[1]} mode {img.mode!r}; "
            f"FER-2013 images are {IMAGE_SIZE}x{IMAGE_SIZE} grayscale (mode 'L')"
        )
    return np.asarray(img, dtype=np.uint8)


def load_fer2013(path: str | os.PathLike | None = None) -> FER2013:
    """Load FER-2013 into memory, from ``path`` or the configured location (see ``find_dataset``)."""
    location = find_dataset(path)
    members, blobs = [], []
    for member, data in _members(location):
        members.append(member)
        blobs.append(data)
    parsed = [_parse_path(m, location) for m in members]
    images = [_decode(b, m, location) for b, m in zip(blobs, members, strict=True)]
    splits = {}
    for split in SPLIT_FOLDERS:
        # Sorted by path: a fixed order, whatever the archive's.
        idx = sorted((i for i, p in enumerate(parsed) if p[0] == split), key=members.__getitem__)
        if not idx:
            raise DatasetFormatError(
                f"{location}: the {split!r} split is missing or empty; expected {split}/<class>/*.jpg"
            )
        splits[split] = Split(
            images=np.stack([images[i] for i in idx]),
            labels=np.asarray([parsed[i][1] for i in idx], dtype=np.int64),
            sources=np.asarray([parsed[i][2] for i in idx]),
            paths=np.asarray([members[i] for i in idx]),
        )
    return FER2013(train=splits["train"], test=splits["test"], classes=CLASSES, location=location)


def train_val_split(split: Split, val_fraction: float = 0.3, seed: int = 0) -> tuple[Split, Split]:
    """A seeded split stratified by class (70/30 by default, as in the original report)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    train_idx, val_idx = train_test_split(
        np.arange(len(split)), test_size=val_fraction, stratify=split.labels, random_state=seed
    )
    return split.subset(np.sort(train_idx)), split.subset(np.sort(val_idx))


def stratified_subset(split: Split, fraction: float, seed: int = 0) -> Split:
    """A seeded, class-stratified fraction of ``split`` (every class keeps at least one image)."""
    if fraction >= 1:
        return split
    rng = np.random.default_rng(seed)
    keep = []
    for label in np.unique(split.labels):
        idx = np.flatnonzero(split.labels == label)
        n = max(1, round(len(idx) * fraction))
        keep.append(rng.choice(idx, size=n, replace=False))
    return split.subset(np.sort(np.concatenate(keep)))
