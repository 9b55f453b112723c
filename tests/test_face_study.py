"""Notebook 06's measurements: intervals and paired tests against their definitions, the record
cache, the photometric shift, and the package's choices against the records notebook 06 made."""


import numpy as np
import pytest

import fer_utils as fu
from fer_utils.course import face_study, records, targets

RESULTS = fu.RESULTS_DIR


def test_cached_computes_once_and_again_when_the_settings_change(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path))
    monkeypatch.delenv(fu.storage.RETRAIN_ENV, raising=False)
    calls = []

    def compute(**settings):
        calls.append(settings)
        return {"value": len(calls)}

    first = records.cached("probe", compute, faces=10)
    assert first["value"] == 1 and first["settings"] == {"faces": 10}
    assert records.cached("probe", compute, faces=10)["value"] == 1 and len(calls) == 1  # loaded, not recomputed
    assert records.cached("probe", compute, faces=20)["value"] == 2  # other settings: computed again
    monkeypatch.setenv(fu.storage.RETRAIN_ENV, "1")
    assert records.cached("probe", compute, faces=20)["value"] == 3


def test_photometric_shift_moves_each_face_to_a_real_crops_brightness_and_contrast():
    rng = np.random.default_rng(0)
    faces = rng.integers(60, 200, (200, 48, 48)).astype(np.uint8)
    shifted = face_study.photometric_shift(faces, np.array([0.3]), np.array([0.1]), rng)
    assert shifted.shape == faces.shape and shifted.dtype == np.uint8
    assert shifted.reshape(200, -1).mean(1) / 255 == pytest.approx(np.full(200, 0.3), abs=0.01)
    assert shifted.reshape(200, -1).std(1) / 255 == pytest.approx(np.full(200, 0.1), abs=0.01)


def test_the_threshold_weighs_a_false_detection_like_a_missed_face():
    trade = [{"min_score": 0.3, "found": 0.90, "false_per_scene": 0.30},  # 0.90 - 0.10
             {"min_score": 0.5, "found": 0.85, "false_per_scene": 0.03},  # 0.85 - 0.01: best
             {"min_score": 0.7, "found": 0.60, "false_per_scene": 0.00}]
    assert face_study.choose_threshold(trade) == 0.5
    assert face_study.choose_threshold([{**row, "false_per_scene": 0.0} for row in trade]) == 0.3


def test_equalising_flattens_the_histogram():
    face = np.random.default_rng(0).integers(100, 140, (1, 48, 48)).astype(np.uint8)
    equalised = face_study.equalize(face)
    assert equalised.min() < 20 and equalised.max() > 235  # stretched over the whole range


@pytest.mark.parametrize("name", ["face_framing_eyes", "face_framing", "face_contrast", "detector_comparison", "face_video_sides",
                                  *(f"face_thresholds_{d}" for d in fu.detectors.DETECTORS)])
def test_notebook_06_made_its_records(name):
    assert (RESULTS / f"{name}.json").is_file(), f"results/{name}.json is missing: run notebook 06 (make report)"


def test_the_packages_crop_and_thresholds_are_the_ones_notebook_06_chose():
    eyes = fu.load_json(RESULTS / "face_framing_eyes.json")
    assert (fu.faces.EYE_DISTANCE, fu.faces.EYE_HEIGHT) == (round(eyes["eye_distance"]["median"], 2),
                                                           round(eyes["eye_height"]["median"], 2))
    best = face_study.choose_framing(fu.load_json(RESULTS / "face_framing.json"))
    package = (f"eyes level, box margin {fu.faces.ALIGNED_MARGIN}" if fu.faces.DEFAULT_FRAMING == "box"
               else "eyes level, framed by the eyes")
    assert best == package
    for detector in ("centerface", "mtcnn"):  # Haar's threshold was set earlier, by eye; it is the baseline
        trade = fu.load_json(RESULTS / f"face_thresholds_{detector}.json")["trade"]
        assert fu.faces.DEFAULT_MIN_SCORE[detector] == face_study.choose_threshold(trade)
    assert fu.faces.EQUALIZE == face_study.choose_equalize(fu.load_json(RESULTS / "face_contrast.json"))
    sides = fu.load_json(RESULTS / "face_video_sides.json")
    assert fu.realtime.VIDEO_DETECTION["max_side"] == face_study.choose_video_side(sides)


def test_the_video_side_is_the_smallest_that_keeps_the_target():
    def record(accuracy):  # side -> end-to-end accuracy on 100 faces
        return {"sides": {str(s): {"faces": 100, "end_to_end": round(100 * a)} for s, a in accuracy.items()}}

    assert face_study.choose_video_side(record({160: 0.40, 256: 0.54, 320: 0.58, 384: 0.60})) == 320
    assert face_study.choose_video_side(record({160: 0.56, 320: 0.58})) == 160
    assert face_study.choose_video_side(record({160: 0.40, 320: 0.50})) == 320  # none reaches it: the largest


def test_pipeline_findings_check_every_target_in_its_direction():
    comparison = {"detectors": {"centerface": {
        "real_photos": {"faces": 20, "found": 19, "false_faces_on_face_free_photos": 1, "face_free_photos": 20},
        "photo": {"detection_rate": 0.92, "end_to_end_accuracy": 0.633}, "video": {"detection_rate": 0.86, "end_to_end_accuracy": 0.54}}}}
    bench = {"pipeline": {
        "full": {"backend": "onnxruntime", "detect_max_side": None, "detect_every": 1, "fps": 11.0},
        "every": {"backend": "onnxruntime", "detect_max_side": 320, "detect_every": 1, "fps": 35.0},
        "tracked": {"backend": "onnxruntime", "detect_max_side": 320, "detect_every": 3, "fps": 86.0},
        "torch": {"backend": "torch", "detect_max_side": 320, "detect_every": 3, "fps": 20.0}}}
    found = face_study.pipeline_findings(comparison, bench, "centerface")
    assert set(found) == set(targets.PIPELINE)
    assert found["real photos: faces found"] == {"value": 0.95, "target": 0.95, "verdict": "met"}  # at the target is met
    assert found["real photos: false faces per face-free photo"]["verdict"] == "met"  # 1 in 20: at most the target
    assert found["pasted faces: end to end, video setting"]["verdict"] == "missed"  # 54% < 55%
    assert found["fps, detecting every frame (video setting)"]["value"] == 35.0
    assert found["fps, detecting every third frame and tracking"]["value"] == 86.0  # ONNX Runtime, not torch
    comparison["detectors"]["centerface"]["real_photos"]["false_faces_on_face_free_photos"] = 2
    assert face_study.pipeline_findings(comparison, bench, "centerface")["real photos: false faces per face-free photo"]["verdict"] == "missed"


class AlwaysClass:
    """A stub classifier: every face is class ``cls``, sure of it."""

    def __init__(self, cls: int):
        self.cls = cls

    def predict_proba(self, images):
        return np.eye(7, dtype=np.float32)[np.full(len(images), self.cls)]


def test_the_pasted_face_benchmark_counts_faces_found_right_and_false(monkeypatch):
    """evaluate_scenes and scene_summary on scenes whose detector is a stub: it finds every pasted face but the
    first of each scene, and adds one false face per scene; the classifier always answers 'happy' (3)."""
    from fer_utils.course import scenes

    pasted = []

    def paste(background, faces, rng, **kwargs):
        scene, boxes = scenes_paste(background, faces, rng, **kwargs)
        pasted.append(boxes)
        return scene, boxes

    def detect(scene, detector, **kwargs):
        boxes = pasted[-1][1:] + [(0, 0, 30, 30)]  # miss the first face; one false face in a corner
        return [fu.faces.Face(box, 0.9) for box in boxes]

    scenes_paste = scenes.paste_faces
    monkeypatch.setattr(scenes, "paste_faces", paste)
    monkeypatch.setattr(scenes, "detect_faces", detect)
    labels = np.array([3, 3, 0, 3, 1, 3, 3, 2, 3])  # three scenes of three faces
    images = np.full((len(labels), 48, 48), 128, np.uint8)
    summary = face_study.scene_summary(AlwaysClass(3), images, labels, "stub", {"max_side": None}, min_score=0.5)
    found = np.array([i % 3 != 0 for i in range(len(labels))])  # the first face of each scene is missed
    right = found & (labels == 3)
    assert summary["faces"] == 9 and summary["scenes"] == 3
    assert summary["detection_rate"] == pytest.approx(found.mean())  # 6 of 9
    assert summary["end_to_end_accuracy"] == pytest.approx(right.mean())  # a missed face counts as wrong
    assert summary["direct_accuracy"] == pytest.approx((labels == 3).mean())
    assert summary["false_positives_per_scene"] == 1.0
    assert summary["end_to_end_interval"] == pytest.approx(list(fu.stats.accuracy_interval(int(right.sum()), 9)))
    assert summary["detection_interval"] == pytest.approx(list(fu.stats.accuracy_interval(int(found.sum()), 9)))
