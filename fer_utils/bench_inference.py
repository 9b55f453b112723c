"""How fast a model runs outside training: per-face latency of each backend, and the
whole pipeline's frames per second on a 640x480 video with one face.

Latency is the median over many calls of ``predict_proba`` on uint8 faces (input scaling and
softmax included), on one CPU thread, stored with its interquartile range. The pipeline reads a synthetic video (``sample_video.moving_face_video``)
and times decoding, detection or tracking, cropping and classifying, on one thread too.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from .checkpoints import DEFAULT_MODEL, read_checkpoint
from .config import DEFAULT_DETECTOR
from .data import IMAGE_SIZE
from .export import ensure_onnx, file_sha256, onnx_metadata
from .faces import iou
from .inference import OnnxClassifier, TorchClassifier, load_classifier
from .models import INPUT_SHAPE
from .paths import project_relative
from .realtime import EmotionPipeline, open_video
from .runtime import configure_threads, cpu_model
from .sample_video import FRAME, moving_face_video


def timings_ms(fn, repeats: int, warmup: int = 10) -> np.ndarray:
    """Wall times of ``repeats`` calls of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * np.array(times)


def median_ms(fn, repeats: int, warmup: int = 10) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` calls."""
    return float(np.median(timings_ms(fn, repeats, warmup)))


def spread(ms: np.ndarray) -> dict:
    """The median of some timings with their interquartile range: {'median': m, 'quartiles': [q1, q3]}."""
    q1, median, q3 = np.percentile(ms, [25, 50, 75])
    return {"median": float(median), "quartiles": [float(q1), float(q3)]}


def cpu_latency_ms(model: torch.nn.Module, repeats: int = 50) -> float:
    """Median milliseconds for a torch model to classify one image on the CPU (batch 1, fp32, eval mode)."""
    model = model.to("cpu").eval()
    x = torch.zeros(1, *INPUT_SHAPE)
    with torch.no_grad():
        return median_ms(lambda: model(x), repeats, warmup=5)


def latency_per_face(classifiers: dict, repeats: int = 300, batch: int = 64, seed: int = 0) -> dict[str, dict]:
    """{'<name>, batch 1': spread, '<name>, batch <batch>': spread per face} for each named classifier,
    each a ``spread``: the median ms with its interquartile range."""
    faces = np.random.default_rng(seed).integers(0, 256, (batch, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    out = {}
    for name, clf in classifiers.items():
        out[f"{name}, batch 1"] = spread(timings_ms(lambda c=clf: c.predict_proba(faces[:1]), repeats))
        out[f"{name}, batch {batch}"] = spread(timings_ms(lambda c=clf: c.predict_proba(faces), max(5, repeats // 10)) / batch)
    return out


def pipeline_fps(video: str | os.PathLike, pipeline: EmotionPipeline,
                 reference: list | None = None) -> tuple[dict, list]:
    """Frames per second of ``pipeline.frame`` on ``video``, decoding included, with the share of
    frames showing exactly one face and, given ``reference`` boxes (one list per frame), the mean
    IoU of this run's boxes with them. Also returns this run's boxes, one list per frame."""
    capture = open_video(video)
    pipeline.reset()
    boxes, ticks = [], [time.perf_counter()]
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        boxes.append([f.box for f in pipeline.frame(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))])
        ticks.append(time.perf_counter())
    capture.release()
    seconds = ticks[-1] - ticks[0]
    per_frame = spread(1000 * np.diff(ticks))  # the last read (end of video) is not a frame
    result = {"fps": len(boxes) / seconds, "ms_per_frame": 1000 * seconds / len(boxes),
              "ms_per_frame_quartiles": per_frame["quartiles"], "frames": len(boxes),
              "frames_with_one_face": float(np.mean([len(b) == 1 for b in boxes]))}
    if reference is not None:
        pairs = [(b[0], r[0]) for b, r in zip(boxes, reference, strict=True) if len(b) == 1 and len(r) == 1]
        result["box_iou_vs_reference"] = float(np.mean([iou(b, r) for b, r in pairs])) if pairs else 0.0
    return result, boxes


def int8_accuracy(fp32: OnnxClassifier, int8: OnnxClassifier, images: np.ndarray, labels: np.ndarray) -> dict:
    """Test accuracy of the fp32 and int8 ONNX models (no flip TTA), and how often they agree."""
    p32, p8 = fp32.predict_proba(images).argmax(1), int8.predict_proba(images).argmax(1)
    return {"n": len(labels), "accuracy_fp32": float(np.mean(p32 == labels)),
            "accuracy_int8": float(np.mean(p8 == labels)), "agreement": float(np.mean(p32 == p8))}


def run_benchmark(checkpoint: str | os.PathLike | None = None, repeats: int = 300, frames: int = 300,
                  int8: bool = True, data_path=None, threads: int = 1,
                  note: str = "") -> dict:
    """The benchmark record: latency per face (torch fp32, ONNX Runtime fp32, int8 if asked), int8's
    test accuracy beside fp32's, and pipeline fps for several detection settings."""
    checkpoint = Path(checkpoint or DEFAULT_MODEL)
    spec = read_checkpoint(checkpoint)["spec"]
    configure_threads(threads)  # torch (MTCNN), OpenCV (Haar) and, through torch's count, CenterFace
    record = {
        "what": "median ms per face (batch 1, and per face in a batch of 64) on one CPU thread, with its "
                "interquartile range; pipeline fps on a 640x480 video with one face, decoding included, with the "
                "interquartile range of the ms per frame",
        "note": note, "cpu": cpu_model(), "load_average_before": list(os.getloadavg()), "threads": threads,
        "checkpoint": project_relative(checkpoint), "checkpoint_sha256": file_sha256(checkpoint), "model": spec,
        "detector": DEFAULT_DETECTOR,
    }
    onnx = OnnxClassifier(ensure_onnx(checkpoint), threads)
    classifiers = {"torch fp32": TorchClassifier(checkpoint, threads), "ONNX Runtime fp32": onnx}
    with tempfile.TemporaryDirectory() as tmp:
        if int8:
            from .data import load_fer2013

            test = load_fer2013(data_path).test
            classifiers["ONNX Runtime int8"] = load_classifier(checkpoint, "onnxruntime-int8", threads, data_path)
            record["int8"] = {**int8_accuracy(onnx, classifiers["ONNX Runtime int8"], test.images, test.labels),
                              "calibration": onnx_metadata(classifiers["ONNX Runtime int8"].path)["calibration"], "split": "test"}
        latency = latency_per_face(classifiers, repeats)
        record["latency_ms_per_face"] = {name: t["median"] for name, t in latency.items()}
        record["latency_quartiles_ms_per_face"] = {name: t["quartiles"] for name, t in latency.items()}
        video = moving_face_video(Path(tmp) / "moving_face.mp4", frames=frames, shape=FRAME)
        record["video"] = {"frames": frames, "height": FRAME[0], "width": FRAME[1],
                           "source": "sample_video.moving_face_video: scikit-image's astronaut over its coffee photo"}
        settings = {
            "detect every frame, full 640x480": ({"max_side": None}, 1, onnx),
            "detect every frame, 320x240": ({}, 1, onnx),
            "detect every 3rd frame, 320x240, track between": ({}, 3, onnx),
            "same, torch classifier": ({}, 3, classifiers["torch fp32"]),
        }
        record["pipeline"], reference = {}, None
        for name, (detection, every, clf) in settings.items():
            pipeline = EmotionPipeline(clf, detect_every=every, video_detection=detection)
            result, boxes = pipeline_fps(video, pipeline, reference)
            reference = reference or boxes  # boxes from detection on every full frame
            record["pipeline"][name] = {"detect_every": every, "detect_max_side": pipeline.video_detection["max_side"],
                                        "backend": clf.backend, **result}
    record["load_average_after"] = list(os.getloadavg())
    return record
