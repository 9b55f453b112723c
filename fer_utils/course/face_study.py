"""Notebooks 06 and 07's measurements of the pipeline in front of the classifier: where FER-2013's faces
have their eyes, which crop matches them, which score threshold each detector needs, whether to
equalise contrast, how the three detectors compare on real photos, pasted test faces and face-free
images (06), and how small the video search may be (07).

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
from ..faces import MATCH_IOU, align_face, crop_face, detect_faces, eyes, match_boxes
from ..real_photos import RealPhoto
from ..realtime import PHOTO_DETECTION, VIDEO_DETECTION, EmotionPipeline
from ..sample_video import FRAME, astronaut_head, cover
from ..stats import accuracy_interval, mcnemar, mcnemar_from_counts
from .scenes import backgrounds, evaluate_scenes
from .targets import PIPELINE
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
    """For each score threshold, the pasted faces found and the false detections on the scenes
    (pasted training faces) and on the face-free photos (the scenes' backgrounds, nothing pasted), as
    counts and as shares per face, per scene and per face-free photo.

    The detector runs once, keeping every detection down to the grid's lowest threshold (its own cut
    lowered there, ``fer_utils.detectors.score_cut``); at each threshold the detections scoring at least
    it are matched to the pasted faces again (IoU >= ``MATCH_IOU``), as a search at that threshold would."""
    lowest = min(thresholds)
    run = evaluate_scenes(classifier, images, labels, detector, seed=seed, min_score=lowest, **PHOTO_DETECTION)
    empty = np.array([d.score for ground in backgrounds() for d in detect_faces(ground, detector, min_score=lowest, **PHOTO_DETECTION)])
    faces, photos, rows = len(run.faces), len(backgrounds()), []
    for t in thresholds:
        found = false = 0
        for boxes, detections in run.scene_detections:
            kept = [d.box for d in detections if d.score >= t]
            matched = len(match_boxes(boxes, kept, MATCH_IOU))
            found, false = found + matched, false + len(kept) - matched
        on_empty = int((empty >= t).sum())
        rows.append({"min_score": t, "faces_found": found, "false_on_scenes": false, "false_on_face_free_photos": on_empty,
                     "found": found / faces, "false_per_scene": false / run.scenes, "false_per_face_free_photo": on_empty / photos})
    return {"detector": detector, "faces": faces, "scenes": run.scenes, "face_free_photos": photos, "trade": rows}


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


CONTRAST_SETS = ("as they are", "shifted like real crops")


def contrast_study(classifier, images: np.ndarray, labels: np.ndarray, real_crops: np.ndarray, seed: int = 0) -> dict:
    """Accuracy on FER-2013 faces as they are and under photometric shifts matched to the
    brightness and contrast of ``real_crops`` (faces cropped from real photos), each classified
    with and without histogram equalisation; and how many real crops change their predicted
    emotion when equalised.

    Both ways classify the same faces, so each set (``CONTRAST_SETS``) stores the faces right each
    way and the discordant counts for McNemar's test: ``discordant["equalised | not equalised"]``
    counts the faces right only when equalised, and the other key those right only when not."""
    rng = np.random.default_rng(seed)
    real = real_crops.reshape(len(real_crops), -1) / 255
    shifted = photometric_shift(images, real.mean(1), real.std(1), rng)
    fer = images.reshape(len(images), -1) / 255
    out = {"faces": len(images), "real_crops": len(real_crops),
           "statistics": {"FER-2013 mean": float(fer.mean(1).mean()), "FER-2013 std": float(fer.std(1).mean()),
                          "real crops mean": float(real.mean(1).mean()), "real crops std": float(real.std(1).mean())}}
    for name, faces in zip(CONTRAST_SETS, (images, shifted), strict=True):
        right = {eq: classifier.predict_proba(equalize(faces) if eq else faces).argmax(1) == labels for eq in (False, True)}
        out[name] = {"not equalised": int(right[False].sum()), "equalised": int(right[True].sum()),
                     "discordant": {"equalised | not equalised": int((right[True] & ~right[False]).sum()),
                                    "not equalised | equalised": int((right[False] & ~right[True]).sum())}}
    flips = classifier.predict_proba(real_crops).argmax(1) != classifier.predict_proba(equalize(real_crops)).argmax(1)
    out["real crops whose emotion changes when equalised"] = int(flips.sum())
    return out


def equalize_tests(record: dict) -> dict[str, dict]:
    """For each set of a ``contrast_study`` record: the accuracy each way, the difference equalised -
    not equalised, McNemar's p on the discordant counts and ``verdicts.verdict``'s verdict."""
    out = {}
    for name in CONTRAST_SETS:
        run, n = record[name], record["faces"]
        gained, lost = run["discordant"]["equalised | not equalised"], run["discordant"]["not equalised | equalised"]
        test = mcnemar_from_counts(gained, lost, n=n)
        out[name] = {"not equalised": run["not equalised"] / n, "equalised": run["equalised"] / n,
                     "right only equalised": gained, "right only not equalised": lost,
                     "difference": test["difference"], "p": test["p_value"],
                     "verdict": verdict(test["difference"], p_value=test["p_value"])}
    return out


def choose_equalize(record: dict) -> bool:
    """Whether the pipeline equalises: only where equalising beats not equalising beyond noise on the
    faces shifted like real crops (verdict 'holds': McNemar's p < 0.05 on the same faces, through
    ``verdicts.verdict``) and is not worse beyond noise on the faces as they are (not 'reversed').
    The shifted faces stand for what the pipeline meets, so a gain must show there; the dataset's own
    faces guard what the model learnt to read, so a loss there beyond noise vetoes it."""
    tests = equalize_tests(record)
    return tests["shifted like real crops"]["verdict"] == "holds" and tests["as they are"]["verdict"] != "reversed"


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


def evaluate_photos(pipeline, photos: list[RealPhoto], min_iou: float = MATCH_IOU) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Run ``pipeline.photo`` (an EmotionPipeline) on every picture. Returns one row per hand-drawn
    face (found: a detection overlaps it with IoU >= ``min_iou``, the course's ``fu.faces.MATCH_IOU``;
    the IoU, predicted emotion, its expression) and one row per picture (faces, detections, false
    faces: detections overlapping no hand-drawn face so, milliseconds)."""
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
    ``SceneEvaluation.summary``'s counts and rates (found, right end to end, false detections...) and
    the 95% intervals of the share found and of the end-to-end accuracy, from the counts."""
    run = evaluate_scenes(classifier, images, labels, detector, seed=seed, **detection, min_score=min_score)
    summary = run.summary()
    n = summary["faces"]
    return {**summary, "end_to_end_interval": list(accuracy_interval(summary["end_to_end_right"], n)),
            "detection_interval": list(accuracy_interval(summary["found"], n))}


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
    """The video setting's trade: for each search side, the pasted faces (``images``: notebook 07
    pastes training faces) found and right end to end, as counts with 95% intervals, the milliseconds
    to search a 640x480 frame (one thread), and McNemar's test of its per-face end-to-end correctness
    against the largest side's (the same faces, paired: ``a_only`` right only at this side, ``b_only``
    only at the largest)."""
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


def video_side_tests(record: dict) -> dict[str, dict]:
    """{side: {'difference', 'p', 'verdict'}}: each side of a ``video_sides`` record against the largest,
    from the discordant counts (difference = end-to-end accuracy at this side - at the largest;
    McNemar's p; ``verdicts.verdict``)."""
    out = {}
    for side, row in record["sides"].items():
        test = mcnemar_from_counts(row["versus_largest"]["a_only"], row["versus_largest"]["b_only"], n=row["faces"])
        out[side] = {"difference": test["difference"], "p": test["p_value"],
                     "verdict": verdict(test["difference"], p_value=test["p_value"])}
    return out


def choose_video_side(record: dict) -> int:
    """The smallest (fastest) search side whose per-face end-to-end correctness is not worse than the
    largest side's on the same pasted faces: McNemar's test of the pair, judged by the course's one
    verdict rule (``verdicts.verdict(difference, p_value=p)``); any verdict but 'reversed' (worse
    beyond noise) qualifies, so the largest side always does.

    The rule is paired and relative because notebook 07 runs it on pasted *training* faces, which the
    shipped model was fit on: an absolute accuracy target means nothing there, a comparison of sides on
    the same faces does. The video target (``targets.VIDEO_END_TO_END``) is judged once, on pasted
    test faces, in ``compare_detectors``' video setting."""
    tests = video_side_tests(record)
    return int(next(side for side in sorted(tests, key=int) if tests[side]["verdict"] != "reversed"))


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
