"""Synthetic scenes to measure the pipeline (notebook 06): FER-2013 faces pasted into photos.

The photos are scikit-image's bundled samples (no download); the backgrounds below have no face.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import cv2
import numpy as np
import pandas as pd
from skimage import data as samples

from ..config import DEFAULT_DETECTOR
from ..faces import EQUALIZE, MATCH_IOU, detect_faces, face_crop, iou, match_boxes, to_gray
from ..sample_video import FRAME, cover

BACKGROUNDS = ("coffee", "chelsea", "rocket", "brick", "grass", "gravel", "coins", "moon", "page", "hubble_deep_field")


def backgrounds(shape: tuple[int, int] = FRAME) -> list[np.ndarray]:
    """Face-free scikit-image photos as (height, width) uint8 grayscale backgrounds."""
    return [cover(to_gray(getattr(samples, name)()), shape) for name in BACKGROUNDS]


def tilt(face: np.ndarray, degrees: float) -> np.ndarray:
    """A (48, 48) face turned by ``degrees`` (anticlockwise) about its centre, edges repeated."""
    side = face.shape[0]
    matrix = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), degrees, 1.0)
    return cv2.warpAffine(face, matrix, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def paste_faces(background: np.ndarray, faces: np.ndarray, rng: np.random.Generator,
                sizes: tuple[int, int] = (64, 192), max_tilt: float = 0.0) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Paste (K, 48, 48) uint8 faces into a copy of a (H, W) background at random places, each
    resized to a random side in ``sizes`` and turned by a random angle within ``max_tilt`` degrees,
    without overlaps. Returns the scene and the K boxes."""
    scene, boxes = background.copy(), []
    for face in faces:
        for _ in range(200):
            side = int(rng.integers(sizes[0], sizes[1] + 1))
            x, y = int(rng.integers(0, scene.shape[1] - side)), int(rng.integers(0, scene.shape[0] - side))
            box = (x, y, side, side)
            if all(iou(box, other) == 0 for other in boxes):
                break
        else:
            raise ValueError(f"no room for {len(faces)} faces of {sizes} px in a {scene.shape} scene")
        if max_tilt:
            face = tilt(face, rng.uniform(-max_tilt, max_tilt))
        scene[y : y + side, x : x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR)
        boxes.append(box)
    return scene, boxes


@dataclass
class SceneEvaluation:
    """One row per pasted face (label, side, whether it was detected, IoU, a prediction per
    framing); the detections that matched no face count as false positives."""

    faces: pd.DataFrame
    scenes: int
    false_positive_scores: list[float]  # the detector's score of each detection that matched no face
    seconds_per_scene: float  # detection only, median
    # per scene: the pasted boxes and the detections, to match them again at other score thresholds
    scene_detections: list[tuple[list, list]] = field(default_factory=list, repr=False)

    @property
    def false_positives(self) -> int:
        return len(self.false_positive_scores)

    def summary(self, framing: str = "pipeline") -> dict[str, float]:
        """Counts (faces found, right end to end, right on FER-2013's own crops, false detections) and
        the rates made from them."""
        f = self.faces
        right = f["detected"] & (f[f"pred@{framing}"] == f["label"])
        direct = f["direct"] == f["label"]
        return {
            "faces": len(f), "scenes": self.scenes, "framing": framing,
            "found": int(f["detected"].sum()), "end_to_end_right": int(right.sum()),
            "direct_right": int(direct.sum()), "direct_right_on_detected": int(direct[f["detected"]].sum()),
            "false_positives": self.false_positives,
            "detection_rate": float(f["detected"].mean()),
            "end_to_end_accuracy": float(right.mean()),  # a missed face counts as wrong
            "accuracy_on_detected": float(right[f["detected"]].mean()),
            "direct_accuracy": float(direct.mean()),  # the 48x48 crops classified as they are
            "direct_accuracy_on_detected": float(direct[f["detected"]].mean()),
            "false_positives_per_scene": self.false_positives / self.scenes,
            "ms_per_scene": 1000 * self.seconds_per_scene,
        }


def pipeline_crop(scene: np.ndarray, face) -> np.ndarray:
    """The pipeline's own crop of a detected face (aligned on its eyes where it has landmarks), its
    histogram equalised when ``fu.faces.EQUALIZE`` says so, as ``EmotionPipeline.crops`` does."""
    crop = face_crop(scene, face)
    return cv2.equalizeHist(crop) if EQUALIZE else crop


def evaluate_scenes(classifier, images: np.ndarray, labels: np.ndarray, detector: str = DEFAULT_DETECTOR,
                    faces_per_scene: int = 3, framings: dict | None = None, max_tilt: float = 0.0,
                    min_iou: float = MATCH_IOU, seed: int = 0, **detect_kwargs) -> SceneEvaluation:
    """Paste (N, 48, 48) faces ``faces_per_scene`` at a time into the backgrounds (tilted by up to
    ``max_tilt`` degrees), detect them with ``detector``, crop each detected face with every one of
    ``framings`` (name -> function(scene, Face) -> (48, 48); default: the pipeline's crop) and
    classify; also classify the faces directly.

    A face counts as detected (found) when a detection overlaps its pasted square with IoU >= ``min_iou``
    (the course's one criterion, ``fu.faces.MATCH_IOU``; each detection matches one face at most, best
    overlap first); the other detections are false ones.
    """
    framings = framings or {"pipeline": pipeline_crop}
    rng = np.random.default_rng(seed)
    grounds = backgrounds()
    rows, crops, false_positive_scores, seconds, scene_detections = [], {name: [] for name in framings}, [], [], []
    for start in range(0, len(images), faces_per_scene):
        index = np.arange(start, min(start + faces_per_scene, len(images)))
        scene, boxes = paste_faces(grounds[len(seconds) % len(grounds)], images[index], rng, max_tilt=max_tilt)
        began = time.perf_counter()
        detections = detect_faces(scene, detector, **detect_kwargs)
        seconds.append(time.perf_counter() - began)
        scene_detections.append((boxes, detections))
        match = match_boxes(boxes, [d.box for d in detections], min_iou)
        used = {j for j, _ in match.values()}
        false_positive_scores += [d.score for j, d in enumerate(detections) if j not in used]
        for i, k in enumerate(index):
            j, overlap = match.get(i, (None, 0.0))
            rows.append({"index": int(k), "label": int(labels[k]), "side": boxes[i][2], "detected": j is not None,
                         "iou": overlap, "score": detections[j].score if j is not None else float("nan")})
            for name, crop in framings.items():  # a missed face gets a blank crop, only to keep arrays aligned
                crops[name].append(crop(scene, detections[j]) if j is not None else np.zeros((48, 48), np.uint8))
    faces = pd.DataFrame(rows)
    faces["direct"] = classifier.predict_proba(images).argmax(1)
    for name in framings:
        predicted = classifier.predict_proba(np.stack(crops[name])).argmax(1)
        faces[f"pred@{name}"] = np.where(faces["detected"], predicted, -1)
    return SceneEvaluation(faces, len(seconds), false_positive_scores, float(np.median(seconds)), scene_detections)
