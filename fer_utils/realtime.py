"""Emotions of every face in photos, videos and a webcam: detect, crop, classify, draw.

On video the detector (the slow part) runs on a frame shrunk to ``VIDEO_DETECTION["max_side"]`` px
every ``detect_every`` frames; in between, each face's box (and its landmarks) follows the face by template matching
(OpenCV), and every face is classified on every frame.
"""

from __future__ import annotations

import contextlib
import csv
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm.auto import tqdm

from .config import CLASSES
from .data import IMAGE_SIZE
from .faces import (
    DEFAULT_DETECTOR,
    EQUALIZE,
    Face,
    detect_faces,
    face_crop,
    to_gray,
)

# The detector searches photos at up to 960 px on their longer side, video frames at fewer (faster): the
# smallest side whose end-to-end correctness on pasted training faces is not worse than the largest
# side tried beyond noise (McNemar's test; notebook 07, ``fer_utils.course.face_study.choose_video_side``).
PHOTO_DETECTION = {"max_side": 960}
VIDEO_DETECTION = {"max_side": 320}
# One colour per emotion (RGB), for the boxes and labels.
COLOURS = dict(zip(CLASSES, [(230, 25, 75), (60, 180, 75), (145, 30, 180), (255, 200, 0), (160, 160, 160),
                             (0, 130, 200), (245, 130, 48)], strict=True))


class VideoError(OSError):
    """A video or camera that cannot be opened or read."""


@dataclass(frozen=True)
class FacePrediction:
    """One face: its (x, y, w, h) box in the image, the detector's score (None for a whole image),
    its (7,) class probabilities, and the (48, 48) uint8 crop the classifier saw (None where not kept)."""

    box: tuple[int, int, int, int]
    score: float | None
    probabilities: np.ndarray
    crop: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def emotion(self) -> str:
        return CLASSES[int(np.argmax(self.probabilities))]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        order = np.argsort(-self.probabilities)[:k]
        return [(CLASSES[i], float(self.probabilities[i])) for i in order]


class EmotionPipeline:
    """Faces -> emotions with a classifier from ``fer_utils.inference.load_classifier``.

    ``detector`` is one of ``fer_utils.detectors.DETECTORS``; ``align`` crops faces with landmarks
    with their eyes level (else the square around the box); ``margin`` None is ``face_crop``'s default. ``photo(image)`` detects every
    time; ``frame(image)`` is for consecutive video frames: it detects every ``detect_every`` frames
    and tracks the faces in between.
    """

    def __init__(self, classifier, detector: str = DEFAULT_DETECTOR, align: bool = True, margin: float | None = None,
                 detect_every: int = 3, photo_detection: dict | None = None, video_detection: dict | None = None,
                 tta: bool = False):
        self.classifier, self.detector, self.align, self.margin = classifier, detector, align, margin
        self.detect_every, self.tta = max(1, detect_every), tta
        self.photo_detection = {**PHOTO_DETECTION, **(photo_detection or {})}
        self.video_detection = {**VIDEO_DETECTION, **(video_detection or {})}
        self.reset()

    def reset(self) -> None:
        """Forget the tracked faces (call between two videos)."""
        self.count, self.faces, self.previous = 0, [], None

    def crops(self, image: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(N, 48, 48) uint8: each face cropped as the classifier expects (equalised if EQUALIZE)."""
        if not faces:
            return np.zeros((0, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
        crops = [face_crop(image, face, self.align, self.margin) for face in faces]
        return np.stack([cv2.equalizeHist(c) for c in crops] if EQUALIZE else crops)

    def classify(self, image: np.ndarray, faces: list[Face], crops: np.ndarray | None = None) -> list[FacePrediction]:
        """Each face with its emotion; ``crops`` (N, 48, 48): the faces already cropped (default: ``crops``)."""
        if not faces:
            return []
        crops = self.crops(image, faces) if crops is None else crops
        probs = self.classifier.predict_proba(crops, tta=self.tta)
        return [FacePrediction(f.box, f.score, p, c) for f, p, c in zip(faces, probs, crops, strict=True)]

    def photo_faces(self, image: np.ndarray) -> list[Face]:
        """Every face of an (H, W[, 3]) RGB uint8 photo, left to right (detected at the photo settings)."""
        return detect_faces(image, self.detector, **self.photo_detection)

    def photo(self, image: np.ndarray) -> list[FacePrediction]:
        """Every face of an (H, W[, 3]) RGB uint8 photo with its emotion, left to right."""
        return self.classify(image, self.photo_faces(image))

    def frame(self, image: np.ndarray) -> list[FacePrediction]:
        """The faces of the next (H, W[, 3]) RGB uint8 video frame."""
        gray = to_gray(image)
        if self.count % self.detect_every == 0:
            self.faces = detect_faces(image, self.detector, **self.video_detection)
        else:
            self.faces = track(self.previous, gray, self.faces)
        self.count += 1
        self.previous = gray
        return self.classify(gray, self.faces)


def track(previous: np.ndarray, gray: np.ndarray, faces: list[Face], min_match: float = 0.5, search: float = 0.25,
          scale: float = 0.5) -> list[Face]:
    """Move each face of ``previous`` to where its patch best matches in ``gray`` (both (H, W)
    uint8), searching ``search`` x the box side around it, at ``scale`` resolution for speed.
    A face whose best match has a normalised correlation below ``min_match`` is dropped."""
    small_prev = cv2.resize(previous, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    small = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    height, width = small.shape
    moved = []
    for face in faces:
        x, y, w, h = face.box
        sx, sy, sw, sh = (round(v * scale) for v in (x, y, w, h))
        pad = max(2, round(search * max(sw, sh)))
        template = small_prev[max(sy, 0) : sy + sh, max(sx, 0) : sx + sw]
        x0, y0 = max(sx - pad, 0), max(sy - pad, 0)
        window = small[y0 : min(sy + sh + pad, height), x0 : min(sx + sw + pad, width)]
        if template.size < 16 or window.shape[0] < template.shape[0] or window.shape[1] < template.shape[1]:
            continue
        result = cv2.matchTemplate(window, template, cv2.TM_CCOEFF_NORMED)
        _, best, _, (bx, by) = cv2.minMaxLoc(result)
        if best >= min_match:
            dx, dy = (x0 + bx - max(sx, 0)) / scale, (y0 + by - max(sy, 0)) / scale
            moved.append(face.moved(dx, dy))
    return moved


def annotate(image: np.ndarray, faces: list[FacePrediction], fps: float | None = None) -> np.ndarray:
    """A copy of an (H, W, 3) RGB uint8 image with each face's box and top emotion drawn (and the fps)."""
    out = np.ascontiguousarray(image.copy())
    thickness = max(1, round(max(out.shape[:2]) / 400))
    for face in faces:
        x, y, w, h = face.box
        colour = COLOURS[face.emotion]
        cv2.rectangle(out, (x, y), (x + w, y + h), colour, thickness + 1)
        emotion, p = face.top(1)[0]
        text = f"{emotion} {p:.0%}"
        size = max(0.4, w / 160)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, size, thickness)
        top = y - th - base - 2 if y - th - base - 2 >= 0 else y
        cv2.rectangle(out, (x, top), (x + tw + 4, top + th + base + 2), colour, cv2.FILLED)
        cv2.putText(out, text, (x + 2, top + th + 1), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thickness, cv2.LINE_AA)
    if fps is not None:
        cv2.putText(out, f"{fps:.0f} fps", (8, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (255, 255, 255), 2, cv2.LINE_AA)
    return out


def open_video(source: str | os.PathLike | int) -> cv2.VideoCapture:
    """An opened ``cv2.VideoCapture`` on a file or a camera index; VideoError with what to do otherwise."""
    # our own message replaces the warnings of OpenCV and of its FFmpeg
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if isinstance(source, int):
        capture = cv2.VideoCapture(source)
        if not capture.isOpened():
            raise VideoError(f"no camera at index {source}: connect a webcam or choose another with --camera N "
                             "(to try the pipeline without one: python -m fer_utils video FILE.mp4)")
        return capture
    if not Path(source).is_file():
        raise VideoError(f"{source}: no such file")
    capture = cv2.VideoCapture(str(source))
    if not capture.isOpened():
        raise VideoError(f"{source}: not a video OpenCV can open (give an MP4, AVI, MOV or MKV file)")
    return capture


def process_video(source: str | os.PathLike, pipeline: EmotionPipeline, out: str | os.PathLike | None = None,
                  csv_path: str | os.PathLike | None = None, progress: bool = True,
                  max_frames: int | None = None) -> dict:
    """Run the pipeline on every frame of a video file; write the annotated video (mp4v) to ``out``
    and one CSV row per face per frame to ``csv_path``. Returns frames, faces, seconds and fps
    (everything included: decoding, the pipeline, drawing, encoding)."""
    capture = open_video(source)
    fps_in = capture.get(cv2.CAP_PROP_FPS) or 30.0
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    total = min(total, max_frames) if max_frames and total > 0 else (total if total > 0 else max_frames)
    writer, frames, faces_seen = None, 0, 0
    pipeline.reset()
    start = time.perf_counter()
    with contextlib.ExitStack() as stack:
        stack.callback(capture.release)
        rows = None
        if csv_path:
            Path(csv_path).parent.mkdir(parents=True, exist_ok=True)
            rows = csv.writer(stack.enter_context(open(csv_path, "w", newline="")))
            rows.writerow(["frame", "time_s", "face", "x", "y", "w", "h", "emotion", *(f"p_{c}" for c in CLASSES)])
        bar = stack.enter_context(tqdm(total=total, unit="frame", disable=not progress))
        while max_frames is None or frames < max_frames:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            faces = pipeline.frame(rgb)
            if out is not None:
                if writer is None:
                    writer = open_writer(out, fps_in, rgb.shape[1::-1])
                    stack.callback(writer.release)
                writer.write(cv2.cvtColor(annotate(rgb, faces), cv2.COLOR_RGB2BGR))
            if rows is not None:
                for i, face in enumerate(faces):
                    rows.writerow([frames, f"{frames / fps_in:.3f}", i, *face.box, face.emotion,
                                   *(f"{p:.4f}" for p in face.probabilities)])
            frames += 1
            faces_seen += len(faces)
            bar.update()
    if frames == 0:
        raise VideoError(f"{source}: no frame could be decoded (an empty or damaged video)")
    seconds = time.perf_counter() - start
    return {"frames": frames, "faces": faces_seen, "seconds": seconds, "fps": frames / seconds}


def open_writer(path: str | os.PathLike, fps: float, size: tuple[int, int]) -> cv2.VideoWriter:
    """An mp4v ``cv2.VideoWriter`` for frames of ``size`` (width, height); VideoError if it cannot write."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, tuple(size))
    if not writer.isOpened():
        raise VideoError(f"{path}: OpenCV cannot write a video there (use a .mp4 name in a writable folder)")
    return writer


def run_webcam(pipeline: EmotionPipeline, camera: int = 0, max_frames: int | None = None) -> dict:
    """Show camera ``camera`` live in a window with boxes, emotions and fps, until the window is
    closed or 'q' is pressed. Returns frames, seconds and fps."""
    import matplotlib.pyplot as plt

    capture = open_video(camera)
    if plt.get_backend().lower() == "agg":
        capture.release()
        raise VideoError("no display for the live window (matplotlib has no GUI backend here); "
                         "run it on a desktop session, or record a video and use `python -m fer_utils video`")
    ok, bgr = capture.read()
    if not ok:
        capture.release()
        raise VideoError(f"camera {camera} opened but gives no frames (in use by another program?)")
    fig, ax = plt.subplots(num="fer_utils webcam - press q to quit")
    ax.axis("off")
    view = ax.imshow(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    state = {"open": True}
    fig.canvas.mpl_connect("close_event", lambda _: state.update(open=False))
    fig.canvas.mpl_connect("key_press_event", lambda e: state.update(open=e.key != "q"))
    plt.show(block=False)
    pipeline.reset()
    frames, fps, start, last = 0, None, time.perf_counter(), time.perf_counter()
    try:
        while ok and state["open"] and (max_frames is None or frames < max_frames):
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            view.set_data(annotate(rgb, pipeline.frame(rgb), fps))
            plt.pause(0.001)
            now = time.perf_counter()
            fps = 1 / (now - last) if fps is None else 0.9 * fps + 0.1 / (now - last)
            last, frames = now, frames + 1
            ok, bgr = capture.read()
    finally:
        capture.release()
        plt.close(fig)
    seconds = time.perf_counter() - start
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds if seconds else 0.0}
