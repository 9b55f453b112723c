"""Faces first: reading photos, finding the faces in them, and cropping each the way FER-2013 did.

Detection is one of ``fer_utils.detectors``' three (CenterFace by default; MTCNN; OpenCV's Haar
cascade, the baseline), each with weights that ship inside a package of the registry. A face with
eye landmarks is cropped *aligned*: turned so that its eyes are level and scaled by the distance
between them, framed as FER-2013's faces are (eye positions measured on its training faces, in
notebook 06). A face without landmarks (Haar) is cut out square with a margin around its box. Both
give a (48, 48) grayscale crop. ``iou`` and ``match_boxes`` compare boxes: a detection with a true face,
a face with the same face in the last video frame.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .config import DEFAULT_DETECTOR, DETECTORS
from .data import IMAGE_SIZE
from .detectors import run_detector, score_cut, to_gray

# Border added on every side of the detector's box, as a fraction of its side, for crops without
# landmarks. FER-2013's crops are about as tight as the Haar cascade's box; this margin classified
# training faces best (notebook 06).
DEFAULT_MARGIN = 0.05
# Where FER-2013's training faces have their eyes, as fractions of the crop's side: the distance
# between the eyes, and the height of the point between them (medians, notebook 06, section 3).
EYE_DISTANCE = 0.37
EYE_HEIGHT = 0.40
# How an aligned face is framed once its eyes are level: by the detector's box ("box", with
# ALIGNED_MARGIN: CenterFace's boxes are looser than Haar's) or by the eyes ("eyes"); chosen on
# upright and tilted training faces (notebook 06, section 3).
DEFAULT_FRAMING = "box"
ALIGNED_MARGIN = 0.0
# Whether crops get their histogram equalised before classification: FER-2013's faces have stretched
# histograms and real crops are flatter. Decided by McNemar's test on the same training faces, each
# classified both ways: equalise only where it holds (better beyond noise) on faces shifted to real
# crops' brightness and contrast and is not reversed on the dataset's own (notebook 06, section 5;
# ``fer_utils.course.face_study.choose_equalize``). On 1,437 training faces it holds on the shifted ones
# (+3.1 points, McNemar p = 0.001) but is reversed on the faces as they are (-1.3 points, p = 0.03): no.
EQUALIZE = False
# Detections scoring below these are dropped, each on its detector's own scale; chosen on training
# faces pasted into photos by one rule for the three detectors, the most faces found less false
# detections, each inside a grid of thresholds that reaches past it on both sides (notebook 06,
# section 4; ``fer_utils.course.face_study.choose_threshold``).
DEFAULT_MIN_SCORE = {"centerface": 0.15, "mtcnn": 0.65, "haar": 3.5}
# A small image (a crop that may already be a face) is taken as a face when it looks like a FER-2013
# crop, a photograph (neighbouring pixels correlate, ``neighbour_correlation`` >= SMALL_FACE_MIN_CORRELATION;
# in noise they do not) with FER-2013's stretched histogram (grey-level std >= SMALL_FACE_MIN_STD); or
# else when CenterFace, run on it enlarged to one of SMALL_FACE_SIDES (with a third of the side as a
# plain border), finds a face scoring at least SMALL_FACE_MIN_SCORE (crops from elsewhere, flatter).
# Both thresholds lie below every one of FER-2013's 28,698 non-blank training faces (correlation >= 0.27,
# std >= 42.6; i.i.d. noise: |correlation| <= 0.06). Chosen on training faces by a rule fixed in advance:
# keep what the detector accepts, refuse all of 90 noise images (uniform and Gaussian, 30-64 px),
# accept >= 99.9% of 1,436 non-blank training faces (a stratified 5%, seed 1), then the fewest of
# 200 random crops of the 20 face-free real photos accepted. CenterFace at 192 then 96 px alone accepts
# 98.6% (refused: faces lying on their side, hands over the face, harsh light, drawings, two non-faces);
# adding 128/256/64 px, equalised or CLAHE copies, turned copies or MTCNN reaches 99.7% at most (all at
# once, accepting 2 noise images); with the statistics it accepts 100%, no noise, and 55 of the 200
# face-free crops (the detector alone: 1), the price of not refusing real crops. Statistics first:
# 0.1 ms a training face instead of 45 ms. On the 7,178 test crops (counted once, after the choice)
# it refuses 1, the test split's one blank crop (the detector alone refused 95).
SMALL_FACE_MIN_CORRELATION = 0.25
SMALL_FACE_MIN_STD = 40.0
SMALL_FACE_SIDES = (192, 96)
SMALL_FACE_MIN_SCORE = 0.3


# A detection "finds" a face when their boxes overlap with IoU >= MATCH_IOU (pasted faces and the
# real photos' hand-drawn ones alike); a detection that finds no face is a false one. Lenient because a
# pasted face's square holds the whole FER-2013 crop, hair and margin included, around the detector's
# tighter box; on the real photos every true match scores IoU >= 0.46 and every false one <= 0.05.
MATCH_IOU = 0.3


class NotAnImageError(ValueError):
    """A file that is missing, empty, truncated, or not an image."""


@dataclass(frozen=True)
class Face:
    """A detected face: ``box`` is (x, y, w, h) in pixels of the image; a higher ``score`` is surer;
    ``landmarks`` is (5, 2) (x, y): eyes, nose tip, mouth corners, or None (Haar gives none)."""

    box: tuple[int, int, int, int]
    score: float
    landmarks: np.ndarray | None = field(default=None, compare=False, repr=False)

    def moved(self, dx: float, dy: float) -> Face:
        """The same face shifted by (dx, dy) pixels (tracking between video frames)."""
        x, y, w, h = self.box
        marks = None if self.landmarks is None else self.landmarks + np.float32([dx, dy])
        return Face((round(x + dx), round(y + dy), w, h), self.score, marks)


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


def detect_faces(image: np.ndarray, detector: str = DEFAULT_DETECTOR, max_side: int | None = 960,
                 min_score: float | None = None, **options) -> list[Face]:
    """Every face in an (H, W) or (H, W, 3) RGB uint8 image, left to right.

    ``detector`` is one of ``fer_utils.detectors.DETECTORS``. The search runs on a copy shrunk so
    that its longer side is at most ``max_side`` (None: full size), which is faster; boxes and
    landmarks are given in the original image's pixels. Detections scoring below ``min_score``
    (default: ``DEFAULT_MIN_SCORE`` of the detector) are dropped; a ``min_score`` below the
    detector's own cut lowers that cut (``fer_utils.detectors.score_cut``), so that it alone decides.
    ``options`` go to the detector (e.g. ``scale_factor`` for Haar, ``threshold`` for CenterFace).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown face detector {detector!r}: choose one of {', '.join(DETECTORS)}")
    min_score = DEFAULT_MIN_SCORE[detector] if min_score is None else min_score
    options = {**score_cut(detector, min_score), **options}
    scale = 1.0
    if max_side and max(image.shape[:2]) > max_side:
        scale = max_side / max(image.shape[:2])
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    faces = [Face(tuple(int(round(v / scale)) for v in d.box), d.score,
                  None if d.landmarks is None else np.asarray(d.landmarks, np.float32) / scale)
             for d in run_detector(detector, image, **options) if d.score >= min_score]
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


def eyes(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (x, y) of the eye on the image's left and of the one on its right."""
    first, second = np.asarray(landmarks[:2], np.float64)
    return (first, second) if first[0] <= second[0] else (second, first)


def eye_angle(landmarks: np.ndarray) -> float:
    """The tilt of the line through the eyes, in degrees (0: level; positive: the right eye lower)."""
    left, right = eyes(landmarks)
    return math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))


def level_transform(centre, side: float, angle: float, out_side: int) -> np.ndarray:
    """The (2, 3) affine map from image pixels to an ``out_side`` x ``out_side`` crop of the square
    of ``side`` image pixels centred on ``centre`` and turned by ``angle`` degrees (so that a line
    at that angle comes out level)."""
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), angle, out_side / side)
    matrix[:, 2] += (out_side / 2 - centre[0], out_side / 2 - centre[1])
    return matrix


def aligned_square(face: Face, framing: str = DEFAULT_FRAMING, margin: float = ALIGNED_MARGIN,
                   eye_distance: float = EYE_DISTANCE, eye_height: float = EYE_HEIGHT) -> tuple[np.ndarray, float, float]:
    """(centre, side, angle) of a face's aligned square, in image pixels and degrees: turned so that
    its eyes are level, and framed either by the detector's box (``framing="box"``: the box's centre,
    its longer side plus ``margin`` on each side) or by the eyes (``"eyes"``: ``eye_distance`` x the
    side apart, their midpoint at ``eye_height`` x the side from the top)."""
    angle = eye_angle(face.landmarks)
    if framing == "box":
        x, y, w, h = face.box
        return np.array([x + w / 2, y + h / 2]), max(w, h) * (1 + 2 * margin), angle
    if framing != "eyes":
        raise ValueError(f"framing must be 'box' or 'eyes', got {framing!r}")
    left, right = eyes(face.landmarks)
    distance = max(math.hypot(*(right - left)), 1e-6)
    side = distance / eye_distance
    down = np.array([-(right - left)[1], (right - left)[0]]) / distance  # perpendicular to the eyes, chinwards
    return (left + right) / 2 + down * (0.5 - eye_height) * side, side, angle


def align_face(image: np.ndarray, face: Face, **framing) -> np.ndarray:
    """A face with landmarks, turned so that its eyes are level and framed as ``aligned_square``
    says (``framing`` goes there): grayscale, (48, 48) uint8; outside the image, edges repeat.

    It is cut at the face's own resolution first and only then shrunk (with pixel-area averaging),
    so a large face does not alias."""
    centre, side, angle = aligned_square(face, **framing)
    out = max(IMAGE_SIZE, round(side))
    square = cv2.warpAffine(to_gray(image), level_transform(centre, side, angle, out), (out, out),
                            flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(square, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)


def face_crop(image: np.ndarray, face: Face, align: bool = True, margin: float | None = None) -> np.ndarray:
    """The (48, 48) crop of a detected face: aligned (``align_face``) when it has landmarks and
    ``align`` is true, else the square around its box; ``margin`` None takes ALIGNED_MARGIN for
    the first and DEFAULT_MARGIN for the second."""
    if align and face.landmarks is not None:
        return align_face(image, face, margin=ALIGNED_MARGIN if margin is None else margin)
    return crop_face(image, face.box, DEFAULT_MARGIN if margin is None else margin)


def neighbour_correlation(gray: np.ndarray) -> float:
    """The correlation of a grayscale image's pixels with their right and lower neighbours (mean of
    the two): near 1 in photographs, near 0 in noise; 0 where a shifted copy has a single grey level."""
    pairs = ((gray[:, 1:], gray[:, :-1]), (gray[1:], gray[:-1]))
    with np.errstate(invalid="ignore", divide="ignore"):  # a single grey level: no correlation (nan, taken as 0)
        values = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in pairs]
    return float(np.mean(np.nan_to_num(values)))


def small_image_problem(image: np.ndarray) -> str | None:
    """Why a small (H, W[, 3]) uint8 image that would be classified whole does not look like a face
    (blank, or neither a FER-2013-like crop nor a face found in it enlarged), or None when it does."""
    gray = to_gray(image)
    height, width = gray.shape
    if gray.std() < 2:
        return f"a blank {width}x{height} image (a single grey level), not a face"
    if gray.std() >= SMALL_FACE_MIN_STD and neighbour_correlation(gray) >= SMALL_FACE_MIN_CORRELATION:
        return None
    for side in SMALL_FACE_SIDES:
        scale, pad = side / max(height, width), side // 3
        enlarged = cv2.resize(gray, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_LINEAR)
        canvas = cv2.copyMakeBorder(enlarged, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(gray.mean()))
        if detect_faces(canvas, "centerface", max_side=None, min_score=SMALL_FACE_MIN_SCORE):
            return None
    return f"no face in this {width}x{height} image (taken whole, it does not look like a face)"


def whole_image(image: np.ndarray) -> np.ndarray:
    """The image itself as one face (for crops that are already faces): centre square, (48, 48) uint8."""
    height, width = image.shape[:2]
    side = min(height, width)
    return crop_face(image, ((width - side) // 2, (height - side) // 2, side, side), margin=0.0)


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0, w) * max(0, h)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def match_boxes(truth: list[tuple[int, int, int, int]], found: list[tuple[int, int, int, int]],
                min_iou: float) -> dict[int, tuple[int, float]]:
    """{index in ``truth``: (index in ``found``, IoU)} for the pairs overlapping with IoU >= ``min_iou``,
    best overlap first, each box of either list used once at most."""
    pairs = sorted(((iou(t, f), i, j) for i, t in enumerate(truth) for j, f in enumerate(found)), reverse=True)
    match, used = {}, set()
    for overlap, i, j in pairs:
        if overlap >= min_iou and i not in match and j not in used:
            match[i] = (j, overlap)
            used.add(j)
    return match
