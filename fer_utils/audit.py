"""Duplicate and leakage audit of FER-2013: exact copies, label conflicts, blank images,
near-duplicates by perceptual hash, and the test images with no twin in the training set."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from PIL import Image

from .config import CLASSES
from .data import FER2013


def _group_by_key(keys: list) -> list[np.ndarray]:
    """Index arrays of the positions that share a key, for keys that occur more than once."""
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    return [np.asarray(g) for g in groups.values() if len(g) > 1]


def pixel_hashes(images: np.ndarray) -> list[str]:
    """A digest of each image's exact pixels: equal digests mean identical images. (N, 48, 48) -> N."""
    return [hashlib.blake2b(img.tobytes(), digest_size=16).hexdigest() for img in images]


def perceptual_hashes(images: np.ndarray) -> list[str]:
    """imagehash's pHash of each image: equal hashes mean near-identical images."""
    import imagehash  # imported here: only the data audit needs it (GPU hosts may not have it)

    return [str(imagehash.phash(Image.fromarray(img))) for img in images]


def near_constant(images: np.ndarray, max_std: float = 3.0) -> np.ndarray:
    """Boolean mask of blank or near-constant images (pixel standard deviation below ``max_std``)."""
    return images.reshape(len(images), -1).std(axis=1) < max_std


def combined(data: FER2013) -> pd.DataFrame:
    """One row per image of both splits: split ('train'/'test'), source, label and path."""
    return pd.DataFrame({
        "split": ["train"] * len(data.train) + ["test"] * len(data.test),
        "source": np.concatenate([data.train.sources, data.test.sources]),
        "label": np.concatenate([data.train.labels, data.test.labels]),
        "path": np.concatenate([data.train.paths, data.test.paths]),
    })


def duplicate_groups(data: FER2013, keys: list[str]) -> pd.DataFrame:
    """One row per group of images that share a key, across both splits.

    Columns: size, n_train, n_test, kind ('within train', 'within test' or 'train and test'),
    conflicting_labels (copies labelled differently), labels (class names) and rows (indices
    into ``combined(data)``: train images first, then test).
    """
    frame = combined(data)
    rows = []
    for idx in _group_by_key(keys):
        split = frame["split"].to_numpy()[idx]
        labels = frame["label"].to_numpy()[idx]
        n_train, n_test = int((split == "train").sum()), int((split == "test").sum())
        kind = "train and test" if n_train and n_test else ("within train" if n_train else "within test")
        rows.append({
            "size": len(idx), "n_train": n_train, "n_test": n_test, "kind": kind,
            "conflicting_labels": len(set(labels)) > 1,
            "labels": sorted({CLASSES[label] for label in labels}), "rows": idx.tolist(),
        })
    return pd.DataFrame(rows, columns=["size", "n_train", "n_test", "kind", "conflicting_labels", "labels", "rows"])


def audit_summary(groups: pd.DataFrame) -> pd.DataFrame:
    """Per kind of group: how many groups, how many images in them, how many with conflicting labels."""
    if groups.empty:
        return pd.DataFrame(columns=["groups", "images", "conflicting groups"])
    return groups.groupby("kind").agg(
        groups=("size", "size"), images=("size", "sum"), **{"conflicting groups": ("conflicting_labels", "sum")}
    )


def has_exact_twin(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Boolean mask over ``images`` (N, 48, 48): True where ``reference`` holds the same pixels."""
    seen = set(pixel_hashes(reference))
    return np.asarray([h in seen for h in pixel_hashes(images)], dtype=bool)


def deduplicated_test_mask(data: FER2013) -> np.ndarray:
    """Boolean mask over ``data.test``: True for test images with no exact pixel twin in the training set."""
    return ~has_exact_twin(data.test.images, data.train.images)


def near_duplicate_groups(data: FER2013, exact: pd.DataFrame, blank: np.ndarray) -> pd.DataFrame:
    """Groups of equal perceptual hash that are not already one exact-copy group and are not all
    blank images (pHash gives every blank image the same hash). Columns as ``duplicate_groups``."""
    images = np.concatenate([data.train.images, data.test.images])
    near = duplicate_groups(data, perceptual_hashes(images))
    exact_sets = {frozenset(r) for r in exact["rows"]}
    keep = np.asarray([frozenset(r) not in exact_sets and not blank[r].all() for r in near["rows"]], dtype=bool)
    return near[keep].reset_index(drop=True) if len(near) else near


def audit_flags(images: np.ndarray, labels: np.ndarray, train_images: np.ndarray, pool_images: np.ndarray,
                pool_labels: np.ndarray) -> pd.DataFrame:
    """Notebook 01's audit, per image of ``images`` (N, 48, 48) with ``labels``: ``twin`` (an exact copy
    is in ``train_images``), ``conflict`` (an exact copy in the pool, e.g. train and test together,
    carries another label) and ``blank`` (near-constant). One boolean column each, N rows."""
    labels_of: dict[str, set[int]] = {}
    for h, label in zip(pixel_hashes(pool_images), pool_labels, strict=True):
        labels_of.setdefault(h, set()).add(int(label))
    own = pixel_hashes(images)
    return pd.DataFrame({
        "twin": has_exact_twin(images, train_images),
        "conflict": np.asarray([bool(labels_of.get(h, set()) - {int(label)}) for h, label in zip(own, labels, strict=True)],
                               dtype=bool),
        "blank": near_constant(images),
    })
