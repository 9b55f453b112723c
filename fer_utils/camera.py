"""Try it on your own face, in the notebook: a webcam widget that runs in the browser.

``python -m fer_utils webcam`` opens a camera of the machine that runs Python; on JupyterHub, a lab
server or a cloud notebook that machine has none: the camera is in the browser. ``CameraWidget``
(built on anywidget) asks the browser for the camera (``getUserMedia``), sends downscaled JPEG
frames to the kernel, at most ``max_fps`` a second and only one at a time (a frame taken while the
kernel is busy is dropped, never queued), runs them through the same ``EmotionPipeline`` as
``predict`` and ``video`` (detection every few frames, tracking in between), and draws each face's
box, top emotion and smoothed probabilities (a bar per emotion, labelled with its percentage) over the
live image, with the frame rate and round-trip time. Stopping, or closing the widget, releases the
camera and blanks the view. Snapshots go to ``snapshots/`` in the project (ignored by git), or to the
``snapshot_dir`` given.

Collect mode (``CameraWidget(collect_dir="my_faces")``) labels your own faces: a button per emotion
(or its key, 1-7, while the widget has focus) saves the face of the last frame the kernel processed,
the aligned 48x48 grayscale crop the classifier saw, as ``my_faces/<emotion>/<time>.png``, and the
whole frame as ``my_faces/.frames/<emotion>/<time>.jpg``; only with exactly one face in view. Each
button shows how many crops its folder holds, counted from disk (a resumed session goes on counting).

The kernel's side of the conversation is ``FrameProtocol``, plain Python, tested without a browser:

* browser -> kernel ``{"type": "frame", "id": n}`` with the JPEG bytes as the message's buffer;
  the reply is ``{"type": "result", "id": n, "faces": [...], "kernel_ms": t, "fps": f, "rate": text}``
  (``fps``: the frames answered a second over the last ten, 0 before two; ``rate`` says it, or
  "starting…" before it is measured), or
  ``{"type": "dropped", "id": n}`` when it arrives sooner than ``1 / max_fps`` after the last frame
  processed, or ``{"type": "bad frame", "id": n}`` when the bytes do not decode (counted, ignored);
* browser -> kernel ``{"type": "snapshot"}`` with a PNG of the annotated view: saved, and answered
  ``{"type": "saved", "path": ...}`` (relative to the project when it lies inside it);
* browser -> kernel ``{"type": "collect", "emotion": e}`` (collect mode): the last frame's face saved
  as an example of ``e``, answered ``{"type": "collected", "emotion": e, "path": ..., "counts": {...}}``
  (the crop's path; the crops in each emotion's folder), or ``{"type": "not collected", "reason": why}``
  without exactly one face in view; an emotion not in ``CLASSES``, or no ``collect_dir``, is an ``error``;
* browser -> kernel ``{"type": "reset"}`` when the camera starts: no reply;
* anything else is answered ``{"type": "error", "message": ...}``.
"""

from __future__ import annotations

import collections
import datetime
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import anywidget
import cv2
import numpy as np
import traitlets

from .config import CLASSES
from .faces import iou
from .paths import PROJECT_ROOT, project_relative
from .storage import atomic_write

MAX_FPS = 10.0
FRAME_WIDTH = 320  # the browser shrinks each frame to this width before sending it
SMOOTHING = 0.6  # weight of the previous smoothed probabilities of the same face (0: no smoothing)
MATCH_IOU = 0.3  # a face is the same face as in the last frame when their boxes overlap this much
SNAPSHOTS_DIR = PROJECT_ROOT / "snapshots"  # where snapshots go by default (.gitignore lists it)
COLLECTED_FRAMES = ".frames"  # the frames of collected faces, hidden beside the emotion folders


def timestamp() -> str:
    """Now, to the microsecond, as a file name's stem (sorted names are in time order)."""
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def decode_jpeg(data: bytes | memoryview) -> np.ndarray | None:
    """An (H, W, 3) RGB uint8 image from JPEG (or PNG) bytes; None when they are not an image."""
    array = np.frombuffer(bytes(data), np.uint8)
    if array.size == 0:
        return None
    bgr = cv2.imdecode(array, cv2.IMREAD_COLOR)
    return None if bgr is None else cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


@dataclass
class Smoother:
    """Exponential smoothing of each face's probabilities across frames, faces matched by box overlap."""

    weight: float = SMOOTHING
    previous: list[tuple[tuple[int, int, int, int], np.ndarray]] = field(default_factory=list)

    def __call__(self, faces) -> list[np.ndarray]:
        """The smoothed (7,) probabilities of each of ``faces`` (``FacePrediction``s of one frame)."""
        out = []
        for face in faces:
            overlaps = [iou(face.box, box) for box, _ in self.previous]
            best = int(np.argmax(overlaps)) if overlaps else -1
            if best >= 0 and overlaps[best] >= MATCH_IOU:
                out.append(self.weight * self.previous[best][1] + (1 - self.weight) * face.probabilities)
            else:
                out.append(np.asarray(face.probabilities, float))
        self.previous = [(face.box, p) for face, p in zip(faces, out, strict=True)]
        return out


class FrameProtocol:
    """The kernel's half of the camera widget: messages in, replies out (see the module docstring)."""

    def __init__(self, pipeline, max_fps: float = MAX_FPS, snapshot_dir: str | Path = SNAPSHOTS_DIR,
                 collect_dir: str | Path | None = None, clock=time.monotonic):
        self.pipeline, self.max_fps, self.snapshot_dir, self.clock = pipeline, max_fps, Path(snapshot_dir), clock
        self.collect_dir = None if collect_dir is None else Path(collect_dir)
        self.smoother = Smoother()
        self.processed = self.dropped = self.bad = 0
        self.last = None
        self.last_jpeg, self.last_faces = b"", []  # the last frame processed and its faces (with their crops)
        self.answered = collections.deque(maxlen=10)  # when the last frames were answered: the frame rate

    def reset(self) -> None:
        """Forget the faces and the frame rate of the last frames (a new camera session)."""
        self.pipeline.reset()
        self.smoother = Smoother()
        self.last = None
        self.last_jpeg, self.last_faces = b"", []
        self.answered.clear()

    def fps(self) -> float:
        """Frames answered a second, over the last ten; 0 before two."""
        span = self.answered[-1] - self.answered[0] if self.answered else 0
        return (len(self.answered) - 1) / span if span > 0 else 0.0

    def handle(self, content: dict, buffers: list) -> dict | None:
        kind = content.get("type")
        if kind == "frame":
            return self.frame(content.get("id"), buffers[0] if buffers else b"")
        if kind == "snapshot":
            return self.snapshot(buffers[0] if buffers else b"")
        if kind == "collect":
            return self.collect(content.get("emotion"))
        if kind == "reset":
            self.reset()
            return None
        return {"type": "error", "message": f"unknown message type {kind!r}"}

    def frame(self, frame_id, data) -> dict:
        now = self.clock()
        if self.last is not None and now - self.last < 1 / self.max_fps:
            self.dropped += 1
            return {"type": "dropped", "id": frame_id}
        image = decode_jpeg(data)
        if image is None:
            self.bad += 1
            return {"type": "bad frame", "id": frame_id, "bad_frames": self.bad}
        self.last = now
        began = time.perf_counter()
        faces = self.pipeline.frame(image)
        self.last_jpeg, self.last_faces = bytes(data), faces
        smoothed = self.smoother(faces)
        self.processed += 1
        self.answered.append(now)
        fps = self.fps()
        return {"type": "result", "id": frame_id, "width": int(image.shape[1]), "height": int(image.shape[0]),
                "kernel_ms": 1000 * (time.perf_counter() - began), "bad_frames": self.bad,
                "fps": fps, "rate": f"{fps:.1f} fps" if fps else "starting…",
                "faces": [{"box": [int(v) for v in face.box], "emotion": CLASSES[int(np.argmax(p))],
                           "probabilities": {c: round(float(v), 4) for c, v in zip(CLASSES, p, strict=True)}}
                          for face, p in zip(faces, smoothed, strict=True)]}

    def snapshot(self, data) -> dict:
        if decode_jpeg(data) is None:
            return {"type": "error", "message": "the snapshot is not an image"}
        path = atomic_write(self.snapshot_dir / f"camera-snapshot-{timestamp()}.png", lambda f: f.write(bytes(data)))
        return {"type": "saved", "path": project_relative(path)}

    def counts(self) -> dict[str, int]:
        """The face crops in each emotion's folder of ``collect_dir``."""
        return {c: sum(1 for _ in (self.collect_dir / c).glob("*.png")) for c in CLASSES}

    def collect(self, emotion) -> dict:
        """Save the last frame's one face as an example of ``emotion``: its crop and the whole frame."""
        if self.collect_dir is None:
            return {"type": "error", "message": "not in collect mode: give CameraWidget a collect_dir"}
        if emotion not in CLASSES:
            return {"type": "error", "message": f"unknown emotion {emotion!r}: one of {', '.join(CLASSES)}"}
        if len(self.last_faces) != 1:
            reason = (f"{len(self.last_faces)} faces in view: collect needs exactly one" if self.last_faces
                      else "no face in view")
            return {"type": "not collected", "reason": reason}
        stem, (_, crop) = timestamp(), cv2.imencode(".png", self.last_faces[0].crop)
        # the frame first: every crop counted has its frame
        atomic_write(self.collect_dir / COLLECTED_FRAMES / emotion / f"{stem}.jpg", lambda f: f.write(self.last_jpeg))
        path = atomic_write(self.collect_dir / emotion / f"{stem}.png", lambda f: f.write(crop.tobytes()))
        return {"type": "collected", "emotion": emotion, "path": project_relative(path), "counts": self.counts()}


class CameraWidget(anywidget.AnyWidget):
    """The camera widget (see the module docstring). Traits: ``max_fps`` (frames sent a second, at
    most), ``frame_width`` (pixels, the width frames are shrunk to), ``running`` and ``status`` (the
    browser's one-line state: camera on, off, or why there is none); in collect mode ``collect_dir``
    (the folder, as given; empty otherwise) and ``counts`` (the crops in each emotion's folder).
    Snapshots go to ``snapshot_dir`` (default ``snapshots/`` in the project, which git ignores). The
    default pipeline runs the shipped model, or ``checkpoint``'s."""

    _esm = Path(__file__).with_name("camera.js")
    _css = """
    .fer-camera { font-family: sans-serif; font-size: 13px; }
    .fer-camera-bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 6px; }
    .fer-camera-note, .fer-camera-hint { color: #666; }
    .fer-camera-hint { margin-bottom: 6px; }
    .fer-camera-collecting:focus-within { outline: 2px solid #4363d8; outline-offset: 2px; }
    .fer-camera-view { max-width: 100%; background: #222; }
    """
    max_fps = traitlets.Float(MAX_FPS).tag(sync=True)
    frame_width = traitlets.Int(FRAME_WIDTH).tag(sync=True)
    running = traitlets.Bool(False).tag(sync=True)
    status = traitlets.Unicode("camera off").tag(sync=True)
    collect_dir = traitlets.Unicode("").tag(sync=True)
    counts = traitlets.Dict().tag(sync=True)

    def __init__(self, pipeline=None, snapshot_dir: str | Path = SNAPSHOTS_DIR, collect_dir: str | Path | None = None,
                 checkpoint: str | os.PathLike | None = None, **kwargs):
        super().__init__(collect_dir=str(collect_dir or ""), **kwargs)
        if pipeline is None:
            from .inference import load_classifier
            from .realtime import EmotionPipeline

            pipeline = EmotionPipeline(load_classifier(checkpoint), detect_every=3)
        elif checkpoint is not None:
            raise ValueError("give CameraWidget a pipeline or a checkpoint, not both")
        self.protocol = FrameProtocol(pipeline, self.max_fps, snapshot_dir, collect_dir or None)
        if collect_dir:
            self.counts = self.protocol.counts()
        self.observe(lambda change: setattr(self.protocol, "max_fps", change["new"]), names="max_fps")
        self.on_msg(self._on_message)

    def _on_message(self, _widget, content, buffers) -> None:
        reply = self.protocol.handle(content, buffers)
        if reply is None:
            return
        if reply["type"] == "collected":
            self.counts = reply["counts"]  # what a view shown later starts from
        self.send(reply)
