"""Predicting the emotion of any image file: converted to 48x48 grayscale first."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError
from torch import nn

from .data import CLASSES, IMAGE_SIZE
from .evaluate import predict_proba


class NotAnImageError(ValueError):
    """A file that does not decode as an image."""


def load_face(path: str | os.PathLike) -> np.ndarray:
    """Read an image of any size or colour as a (48, 48) uint8 grayscale array.

    The image is centre-cropped to a square first, so a face in the middle keeps its proportions.
    """
    try:
        with Image.open(path) as img:
            gray = img.convert("L")
    except (UnidentifiedImageError, OSError) as err:
        raise NotAnImageError(f"{path} is not an image that Pillow can read ({err})") from err
    side = min(gray.size)
    left, top = (gray.width - side) // 2, (gray.height - side) // 2
    square = gray.crop((left, top, left + side, top + side))
    return np.asarray(square.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR), dtype=np.uint8)


@dataclass
class Prediction:
    path: str
    probabilities: dict[str, float]  # class -> probability, most likely first

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return list(self.probabilities.items())[:k]


def predict_files(model: nn.Module, paths, tta: bool = True) -> tuple[list[Prediction], dict[str, str]]:
    """Predict every readable image in ``paths``; files that are not images are returned as errors."""
    faces, ok, errors = [], [], {}
    for path in paths:
        try:
            faces.append(load_face(path))
            ok.append(str(path))
        except (NotAnImageError, FileNotFoundError) as err:
            errors[str(path)] = str(err)
    predictions = []
    if faces:
        probs = predict_proba(model, np.stack(faces), tta=tta)
        for path, p in zip(ok, probs, strict=True):
            order = np.argsort(-p)
            predictions.append(Prediction(path, {CLASSES[i]: float(p[i]) for i in order}))
    return predictions, errors
