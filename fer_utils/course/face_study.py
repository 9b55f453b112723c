"""Notebook 06's measurements of the pipeline in front of the classifier: where FER-2013's faces
have their eyes, which crop matches them, which score threshold each detector needs, whether to
equalise contrast, and how the three detectors compare on real photos, pasted test faces and
face-free images.

Each function returns a JSON-ready dict; ``records.cached`` stores it under results/ with the settings
it was computed with and loads it back while they are unchanged, so the notebook reruns in minutes
(``$FER_RETRAIN=1`` computes everything again).
"""

from __future__ import annotations

import functools
import time

import cv2
import numpy as np
import pandas as pd

from ..config import DEFAULT_DETECTOR, DETECTORS
from ..detectors import centerface
from ..faces import align_face, crop_face, detect_faces, eyes, match_boxes
from ..real_photos import RealPhoto
from ..realtime import PHOTO_DETECTION, VIDEO_DETECTION, EmotionPipeline
from ..sample_video import FRAME, astronaut_head, cover
from ..stats import accuracy_interval, mcnemar
from .scenes import backgrounds, evaluate_scenes
from .targets import PIPELINE, VIDEO_END_TO_END, Target
from .verdicts import verdict

# The video setting's search sides tried (longer side of the shrunk frame, pixels).
VIDEO_SIDES = (160, 192, 256, 320, 384)


def fer_eye_positions(images: np.ndarray, enlarge: int = 4, threshold: float = 0.3) -> dict:
    """Where CenterFace puts the eyes of (N, 48, 48) FER-2013 faces, as fractions of the crop's side.

    Each face is enlarged ``enlarge`` times and set on a plain border (the detector needs context).
    Returns the share of faces found and the medians and quartiles of the eye distance, the eyes'
    midpoint (x, y) and their tilt in degrees."""
    side, pad = 48 * enlarge, 32 * enlarge
    rows = []
    for face in images:
        canvas = cv2.copyMakeBorder(cv2.resize(face, (side, side), interpolation=cv2.INTER_LINEAR),
                                    pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=int(face.mean()))
        found = centerface(canvas, threshold=threshold)
        if not found:
            continue
        best = max(found, key=lambda d: d.score)
        left, right = ((p - pad) / side for p in eyes(best.landmarks))
        rows.append([np.hypot(*(right - left)), (left[0] + right[0]) / 2, (left[1] + right[1]) / 2,
                     np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0]))])
    rows = np.array(rows)
    names = ["eye_distance", "eye_centre_x", "eye_height", "eye_angle_degrees"]
    return {"faces": len(images), "found": len(rows), "found_share": len(rows) / len(images),
            **{name: {"median": float(np.median(rows[:, i])), "q25": float(np.quantile(rows[:, i], 0.25)),
                      "q75": float(np.quantile(rows[:, i], 0.75))} for i, name in enumerate(names)}}


def framings(margins=(0.0, 0.05, 0.1)) -> dict:
    """The crops compared in notebook 06: the square around the box, the same turned so that the
    eyes are level, and the square framed by the eyes."""
    out = {}
    for m in margins:
        out[f"box, margin {m}"] = functools.partial(lambda s, f, m: crop_face(s, f.box, m), m=m)
        out[f"eyes level, box margin {m}"] = functools.partial(lambda s, f, m: align_face(s, f, framing="box", margin=m), m=m)
    out["eyes level, framed by the eyes"] = lambda s, f: align_face(s, f, framing="eyes")
    return out


def compare_framings(classifier, images: np.ndarray, labels: np.ndarray, tilts: list[float], seed: int = 0) -> dict:
    """Accuracy on the detected faces (CenterFace) of each framing, for faces pasted upright and
    tilted by up to each of ``tilts`` degrees. Every framing classifies the same detected faces, so
    ``discordant["a | b"]`` counts the faces framing a gets right and b wrong (for McNemar's test)."""
    out, names = {}, list(framings())
    for tilt in tilts:
        run = evaluate_scenes(classifier, images, labels, "centerface", framings=framings(), max_tilt=tilt, seed=seed)
        f = run.faces[run.faces["detected"]]
        right = {name: (f[f"pred@{name}"] == f["label"]).to_numpy() for name in names}
        out[str(tilt)] = {"detected": int(len(f)), "faces": int(len(run.faces)),
                          "correct": {name: int(right[name].sum()) for name in names},
                          "discordant": {f"{a} | {b}": int((right[a] & ~right[b]).sum()) for a in names for b in names if a != b}}
    return {"tilts": out}


def framing_accuracy(record: dict) -> dict[str, dict[str, float]]:
    """{tilt: {framing: accuracy on the detected faces}} from a ``compare_framings`` record."""
    return {tilt: {name: n / run["detected"] for name, n in run["correct"].items()} for tilt, run in record["tilts"].items()}


def choose_framing(record: dict) -> str:
    """The framing with the best accuracy averaged over the tilts of a ``compare_framings`` record."""
    accuracy = framing_accuracy(record)
    return max(framings(), key=lambda name: np.mean([by_name[name] for by_name in accuracy.values()]))


def threshold_trade(classifier, images: np.ndarray, labels: np.ndarray, detector: str, thresholds: list[float],
                    seed: int = 0) -> dict:
    """For each score threshold, the share of pasted faces found and the false detections per scene
    (pasted training faces) and per face-free photo (the scenes' backgrounds, nothing pasted)."""
    run = evaluate_scenes(classifier, images, labels, detector, seed=seed, min_score=0, **PHOTO_DETECTION)
    empty = [d.score for ground in backgrounds() for d in detect_faces(ground, detector, min_score=0, **PHOTO_DETECTION)]
    false, empty = np.array(run.false_positive_scores), np.array(empty)
    return {"detector": detector, "faces": len(run.faces), "scenes": run.scenes, "face_free_photos": len(backgrounds()),
            "trade": [{"min_score": t, "found": float((run.faces["score"] >= t).mean()),
                       "false_per_scene": float((false >= t).sum() / run.scenes),
                       "false_per_face_free_photo": float((empty >= t).sum() / len(backgrounds()))} for t in thresholds]}


def choose_threshold(trade: list[dict]) -> float:
    """The threshold with the most faces found less false detections, both per pasted face (a false
    detection costs as much as a missed face); the lowest such threshold on a tie."""
    faces_per_scene = 3
    return max(trade, key=lambda row: (row["found"] - row["false_per_scene"] / faces_per_scene, -row["min_score"]))["min_score"]


def photometric_shift(images: np.ndarray, means: np.ndarray, stds: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N, 48, 48) faces with each one's brightness and contrast moved to a (mean, std) drawn from
    ``means``/``stds`` (real crops' statistics), through a random gamma in [0.67, 1.5] first."""
    out = np.empty_like(images)
    pick = rng.integers(0, len(means), len(images))
    gammas = np.exp(rng.uniform(np.log(0.67), np.log(1.5), len(images)))
    for i, face in enumerate(images.astype(np.float64) / 255):
        face = face ** gammas[i]
        face = (face - face.mean()) / max(face.std(), 1e-3) * stds[pick[i]] + means[pick[i]]
        out[i] = np.clip(face * 255, 0, 255).round()
    return out


def equalize(images: np.ndarray) -> np.ndarray:
    """Each (48, 48) face with its histogram equalised (OpenCV)."""
    return np.stack([cv2.equalizeHist(face) for face in images])


def contrast_study(classifier, images: np.ndarray, labels: np.ndarray, real_crops: np.ndarray, seed: int = 0) -> dict:
    """Accuracy on FER-2013 faces as they are and under photometric shifts matched to the
    brightness and contrast of ``real_crops`` (faces cropped from real photos), each classified
    with and without histogram equalisation; and how many real crops change their predicted
    emotion when equalised."""
    rng = np.random.default_rng(seed)
    real = real_crops.reshape(len(real_crops), -1) / 255
    shifted = photometric_shift(images, real.mean(1), real.std(1), rng)
    fer = images.reshape(len(images), -1) / 255
    out = {"faces": len(images), "real_crops": len(real_crops),
           "statistics": {"FER-2013 mean": float(fer.mean(1).mean()), "FER-2013 std": float(fer.std(1).mean()),
                          "real crops mean": float(real.mean(1).mean()), "real crops std": float(real.std(1).mean())}}
    for name, faces in {"as they are": images, "shifted like real crops": shifted}.items():
        for eq in (False, True):
            predicted = classifier.predict_proba(equalize(faces) if eq else faces).argmax(1)
            out[f"{name}, {'equalised' if eq else 'not equalised'}"] = int((predicted == labels).sum())
    flips = classifier.predict_proba(real_crops).argmax(1) != classifier.predict_proba(equalize(real_crops)).argmax(1)
    out["real crops whose emotion changes when equalised"] = int(flips.sum())
    return out


def choose_equalize(record: dict) -> bool:
    """Whether equalising pays: higher accuracy averaged over the faces as they are and the shifted ones."""
    def mean(eq: str) -> float:
        return (record[f"as they are, {eq}"] + record[f"shifted like real crops, {eq}"]) / 2

    return mean("equalised") > mean("not equalised")


def frame_ms(detector: str, max_side: int | None, repeats: int = 20) -> float:
    """Median milliseconds for ``detector`` to search one 640x480 video frame (the astronaut over
    the coffee photo) shrunk to ``max_side``."""
    from skimage import data as samples

    frame = cover(samples.coffee(), FRAME).copy()
    frame[100:360, 200:440] = cv2.resize(astronaut_head(), (240, 260))
    detect_faces(frame, detector, max_side=max_side)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        detect_faces(frame, detector, max_side=max_side)
        times.append(time.perf_counter() - began)
    return 1000 * float(np.median(times))


def evaluate_photos(pipeline, photos: list[RealPhoto], min_iou: float = 0.4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``pipeline.photo`` (an EmotionPipeline) on every picture. Returns one row per hand-drawn
    face (found, IoU, predicted emotion, its expression) and one row per picture (faces, false
    faces: detections overlapping no hand-drawn face with IoU >= ``min_iou``, milliseconds)."""
    faces, pictures = [], []
    for photo in photos:
        began = time.perf_counter()
        found = pipeline.photo(photo.image)
        seconds = time.perf_counter() - began
        match = match_boxes(photo.boxes, [f.box for f in found], min_iou)
        for i, (expression, note) in enumerate(zip(photo.expressions, photo.notes, strict=True)):
            j, overlap = match.get(i, (None, 0.0))
            faces.append({"photo": photo.name, "face": i + 1, "note": note, "expression": expression,
                          "found": j is not None, "iou": overlap,
                          "predicted": found[j].emotion if j is not None else None})
        pictures.append({"photo": photo.name, "faces": len(photo.boxes), "detections": len(found),
                         "false_faces": len(found) - len(match), "ms": 1000 * seconds})
    return pd.DataFrame(faces), pd.DataFrame(pictures)


def real_photo_summary(pipeline, photos: list) -> dict:
    """``pipeline`` on the real-photo set: faces found, false faces, clear expressions named right,
    and the per-face table."""
    faces, pictures = evaluate_photos(pipeline, photos)
    clear = faces[faces["expression"].notna()]
    return {
        "faces": int(len(faces)), "found": int(faces["found"].sum()),
        "false_faces_on_photos_with_faces": int(pictures.loc[pictures["faces"] > 0, "false_faces"].sum()),
        "face_free_photos": int((pictures["faces"] == 0).sum()),
        "false_faces_on_face_free_photos": int(pictures.loc[pictures["faces"] == 0, "false_faces"].sum()),
        "clear_expressions": int(len(clear)), "clear_found": int(clear["found"].sum()),
        "clear_named_right": int((clear["predicted"] == clear["expression"]).sum()),
        "faces_table": faces.to_dict(orient="records")}


def scene_summary(classifier, images: np.ndarray, labels: np.ndarray, detector: str, detection: dict,
                  min_score: float, seed: int = 0) -> dict:
    """Test faces pasted into photos, searched at ``detection`` (``PHOTO_DETECTION`` or ``VIDEO_DETECTION``):
    found and end-to-end accuracy with their 95% intervals, and false detections per scene."""
    run = evaluate_scenes(classifier, images, labels, detector, seed=seed, **detection, min_score=min_score)
    summary = run.summary()
    n, right = len(run.faces), int(round(summary["end_to_end_accuracy"] * len(run.faces)))
    found = int(run.faces["detected"].sum())
    return {**summary, "end_to_end_interval": list(accuracy_interval(right, n)),
            "detection_interval": list(accuracy_interval(found, n))}


def compare_detectors(classifier, test_images: np.ndarray, test_labels: np.ndarray, photos: list,
                      min_scores: dict[str, float], seed: int = 0, repeats: int = 20) -> dict:
    """Every detector, with its score threshold from ``min_scores`` and the shipped pipeline's crop:
    real photos (``real_photo_summary``), test faces pasted into photos at the photo and the video
    setting (``scene_summary``), and the milliseconds to search a 640x480 frame at each setting (one thread)."""
    out = {}
    for detector in DETECTORS:
        pipeline = EmotionPipeline(classifier, detector, photo_detection={"min_score": min_scores[detector]})
        result = {"real_photos": real_photo_summary(pipeline, photos)}
        for setting, detection in {"photo": PHOTO_DETECTION, "video": VIDEO_DETECTION}.items():
            result[setting] = {**scene_summary(classifier, test_images, test_labels, detector, detection,
                                               min_scores[detector], seed),
                               "ms_per_640x480_frame": frame_ms(detector, detection["max_side"], repeats)}
        out[detector] = result
    return {"detectors": out}


def photo_setting(classifier, test_images: np.ndarray, test_labels: np.ndarray, photos: list, min_score: float,
                  detector: str = DEFAULT_DETECTOR, seed: int = 0) -> dict:
    """``classifier`` where ``predict`` uses it, on photos: the real-photo set and the pasted test faces
    at the photo setting, with one detector (e.g. notebook 04's ensemble beside the single model)."""
    pipeline = EmotionPipeline(classifier, detector, photo_detection={"min_score": min_score})
    return {"real_photos": real_photo_summary(pipeline, photos),
            "photo": scene_summary(classifier, test_images, test_labels, detector, PHOTO_DETECTION, min_score, seed)}


def video_sides(classifier, images: np.ndarray, labels: np.ndarray, sides=VIDEO_SIDES, detector: str | None = None,
                seed: int = 0, repeats: int = 20) -> dict:
    """The video setting's trade: for each search side, the share of pasted test faces found and the
    end-to-end accuracy (95% intervals), the milliseconds to search a 640x480 frame (one thread), and
    McNemar's test of its per-face correctness against the largest side's (the same faces, paired)."""
    detector = detector or DEFAULT_DETECTOR
    right = {}
    out = {}
    for side in sides:
        run = evaluate_scenes(classifier, images, labels, detector, seed=seed, max_side=side)
        right[side] = (run.faces["pred@pipeline"] == run.faces["label"]).to_numpy()
        n, found = len(run.faces), int(run.faces["detected"].sum())
        out[side] = {"faces": n, "found": found, "detection_interval": list(accuracy_interval(found, n)),
                     "end_to_end": int(right[side].sum()),
                     "end_to_end_interval": list(accuracy_interval(int(right[side].sum()), n)),
                     "ms_per_640x480_frame": frame_ms(detector, side, repeats)}
    largest = max(sides)
    for side in sides:
        out[side]["versus_largest"] = mcnemar(right[side], right[largest])
    return {"detector": detector, "sides": {str(side): row for side, row in out.items()}}


def choose_video_side(record: dict, target: Target = VIDEO_END_TO_END) -> int:
    """The smallest (fastest) search side whose end-to-end accuracy meets ``target`` (else the largest)."""
    sides = sorted(record["sides"], key=int)
    meets = [s for s in sides
             if verdict(record["sides"][s]["end_to_end"] / record["sides"][s]["faces"], target=target) == "met"]
    return int(meets[0] if meets else sides[-1])


def pipeline_findings(comparison: dict, bench: dict, detector: str | None = None) -> dict:
    """Each of ``targets.PIPELINE`` for ``detector`` (default: the package's), from ``compare_detectors``'
    record and ``bench_inference``'s: {target: {'value', 'target', 'verdict'}} by ``verdicts.verdict``.
    The fps are the video setting's, through ONNX Runtime (one face, one thread)."""
    result = comparison["detectors"][detector or DEFAULT_DETECTOR]
    real, photo, video = result["real_photos"], result["photo"], result["video"]
    runs = [r for r in bench["pipeline"].values() if r["backend"] == "onnxruntime" and r["detect_max_side"] is not None]
    every = next(r for r in runs if r["detect_every"] == 1)
    tracked = next(r for r in runs if r["detect_every"] > 1)
    values = {
        "real photos: faces found": real["found"] / real["faces"],
        "real photos: false faces per face-free photo": real["false_faces_on_face_free_photos"] / real["face_free_photos"],
        "pasted faces: found, photo setting": photo["detection_rate"],
        "pasted faces: end to end, photo setting": photo["end_to_end_accuracy"],
        "pasted faces: end to end, video setting": video["end_to_end_accuracy"],
        "fps, detecting every frame (video setting)": every["fps"],
        "fps, detecting every third frame and tracking": tracked["fps"],
    }
    return {name: {"value": float(value), "target": PIPELINE[name].value, "verdict": verdict(value, target=PIPELINE[name])}
            for name, value in values.items()}
