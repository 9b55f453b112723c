"""Faces first: reading photos, finding the faces in them, and cropping each the way FER-2013 did.

Detection is OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_default.xml``, shipped
inside ``opencv-python-headless`` below version 5, so nothing is downloaded at run time). Each face
is then cut out square with a margin, converted to grayscale and resized to 48x48.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .data import IMAGE_SIZE

CASCADE = "haarcascade_frontalface_default.xml"
# Border added on every side of the detector's box, as a fraction of its side. FER-2013's crops are
# about as tight as the cascade's box; this margin classified validation faces best (notebook 05).
DEFAULT_MARGIN = 0.05
# Detections scoring below this are dropped: on training faces pasted into photos, it removes most
# false detections and few faces (notebook 05, section 4).
DEFAULT_MIN_SCORE = 2.5


class NotAnImageError(ValueError):
    """A file that is missing, empty, truncated, or not an image."""


@dataclass(frozen=True)
class Face:
    """A detected face: ``box`` is (x, y, w, h) in pixels of the image; a higher ``score`` is surer."""

    box: tuple[int, int, int, int]
    score: float


def read_image(path: str | os.PathLike) -> np.ndarray:
    """A photo as an (H, W, 3) uint8 RGB array, turned upright by its EXIF orientation.

    Raises NotAnImageError with one line on what is wrong: missing, empty, truncated, not an image.
    """
    path = Path(path)
    if not path.exists():
        raise NotAnImageError(f"{path}: no such file")
    if path.is_file() and path.stat().st_size == 0:
        raise NotAnImageError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(ImageOps.exif_transpose(img).convert("RGB"))
    except UnidentifiedImageError:
        raise NotAnImageError(f"{path}: not an image (Pillow cannot read it; give a JPEG, PNG, BMP, WebP or TIFF)") from None
    except Image.DecompressionBombError as err:
        raise NotAnImageError(f"{path}: too large to decode safely ({err})") from None
    except OSError as err:
        raise NotAnImageError(f"{path}: truncated or corrupt image ({err}); save or download it again") from None


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) RGB uint8 -> (H, W) uint8 grayscale."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


@cache
def _cascade() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError(
            f"OpenCV {cv2.__version__} has no Haar cascades (removed in OpenCV 5): "
            "pip install 'opencv-python-headless>=4.9,<5'"
        )
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
    if cascade.empty():
        raise RuntimeError(f"could not load {CASCADE} from {cv2.data.haarcascades}; reinstall opencv-python-headless")
    return cascade


def detect_faces(
    image: np.ndarray,
    max_side: int | None = 960,
    scale_factor: float = 1.1,
    min_neighbors: int = 5,
    min_size: int = 24,
    min_score: float = DEFAULT_MIN_SCORE,
) -> list[Face]:
    """Every frontal face in an (H, W) or (H, W, 3) RGB uint8 image, left to right.

    The search runs on a copy shrunk so that its longer side is at most ``max_side`` (None: full
    size), which is faster; boxes are given in the original image's pixels. ``min_size`` is the
    smallest face side searched, in pixels of the shrunk copy. The score is the cascade's last-stage
    weight: above about 3 is a clear face; detections below ``min_score`` are dropped (0: keep all).
    """
    gray = to_gray(image)
    scale = 1.0
    if max_side and max(gray.shape) > max_side:
        scale = max_side / max(gray.shape)
        gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    boxes, _, weights = _cascade().detectMultiScale3(
        gray, scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size),
        outputRejectLevels=True,
    )
    faces = [Face(tuple(int(round(v / scale)) for v in box), float(w))
             for box, w in zip(boxes, np.ravel(weights), strict=True) if w >= min_score]
    return sorted(faces, key=lambda f: (f.box[0], f.box[1]))


def square_box(box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN) -> tuple[int, int, int, int]:
    """The square (x, y, side, side) centred on ``box`` with ``margin`` x its longer side added on each side."""
    x, y, w, h = box
    side = max(1, round(max(w, h) * (1 + 2 * margin)))
    return round(x + w / 2 - side / 2), round(y + h / 2 - side / 2), side, side


def crop_face(image: np.ndarray, box: tuple[int, int, int, int], margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The face in ``box`` as FER-2013 frames it: square with a margin, grayscale, (48, 48) uint8.

    Parts of the square outside the image repeat the image's edge pixels.
    """
    gray = to_gray(image)
    x, y, side, _ = square_box(box, margin)
    height, width = gray.shape
    pad = max(0, -x, -y, x + side - width, y + side - height)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    square = gray[y + pad : y + pad + side, x + pad : x + pad + side]
    return cv2.resize(square, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


def whole_image(image: np.ndarray) -> np.ndarray:
    """The image itself as one face (for crops that are already faces): centre square, (48, 48) uint8."""
    height, width = image.shape[:2]
    side = min(height, width)
    return crop_face(image, ((width - side) // 2, (height - side) // 2, side, side), margin=0.0)
