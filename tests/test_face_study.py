"""Notebook 06's measurements: intervals and paired tests against their definitions, the record
cache, the photometric shift, and the package's choices against the records notebook 06 made."""


from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

import fer_utils as fu
from fer_utils.course import face_study, records, scenes, targets

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
    for detector in fu.detectors.DETECTORS:  # the same rule for all three, Haar included
        trade = fu.load_json(RESULTS / f"face_thresholds_{detector}.json")["trade"]
        assert fu.faces.DEFAULT_MIN_SCORE[detector] == face_study.choose_threshold(trade)
    assert fu.faces.EQUALIZE == face_study.choose_equalize(fu.load_json(RESULTS / "face_contrast.json"))
    sides = fu.load_json(RESULTS / "face_video_sides.json")
    assert fu.realtime.VIDEO_DETECTION["max_side"] == face_study.choose_video_side(sides)


@pytest.mark.parametrize("detector", fu.detectors.DETECTORS)
def test_each_chosen_threshold_lies_strictly_inside_its_grid(detector):
    """A threshold chosen at the end of its grid may be better still beyond it: each has a value tried on either side."""
    record = fu.load_json(RESULTS / f"face_thresholds_{detector}.json")
    grid, chosen = record["settings"]["thresholds"], face_study.choose_threshold(record["trade"])
    assert [row["min_score"] for row in record["trade"]] == grid
    assert min(grid) < chosen < max(grid), f"{detector}: {chosen} is at the end of the grid {grid}"


def test_the_video_record_was_made_on_training_faces():
    settings = fu.load_json(RESULTS / "face_video_sides.json")["settings"]
    assert settings["faces_from"] == "train" and settings["faces"] > 1000


def sides_record(pairs: dict[int, tuple[int, int]], faces: int = 100) -> dict:
    """A video_sides record from {side: (right only at this side, right only at the largest)}."""
    return {"sides": {str(side): {"faces": faces, "versus_largest": {"a_only": a, "b_only": b}}
                      for side, (a, b) in pairs.items()}}


def test_the_video_side_is_the_smallest_not_worse_than_the_largest_beyond_noise():
    # 160: 0 gained, 20 lost (p ~ 2e-6: reversed); 256: 4 gained, 9 lost (p = 0.27: a tie); 384: the largest
    record = sides_record({160: (0, 20), 256: (4, 9), 320: (5, 5), 384: (0, 0)})
    assert face_study.choose_video_side(record) == 256
    tests = face_study.video_side_tests(record)
    assert tests["160"]["verdict"] == "reversed" and tests["160"]["difference"] == pytest.approx(-0.20)
    assert tests["256"]["p"] == pytest.approx(fu.stats.mcnemar_from_counts(4, 9)["p_value"])
    assert face_study.choose_video_side(sides_record({160: (0, 20), 256: (1, 12), 384: (0, 0)})) == 384  # only the largest
    assert face_study.choose_video_side(sides_record({160: (9, 0), 384: (0, 0)})) == 160  # better is not worse


def contrast_record(as_they_are: tuple[int, int], shifted: tuple[int, int], faces: int = 200) -> dict:
    """A contrast_study record from (right only equalised, right only not equalised) of each set (100 right both ways)."""
    def run(gained, lost):
        return {"not equalised": 100 + lost, "equalised": 100 + gained,
                "discordant": {"equalised | not equalised": gained, "not equalised | equalised": lost}}

    return {"faces": faces, "as they are": run(*as_they_are), "shifted like real crops": run(*shifted)}


def test_equalising_is_chosen_by_mcnemar_on_the_shifted_faces_with_a_veto_on_the_faces_as_they_are():
    assert face_study.choose_equalize(contrast_record(as_they_are=(10, 14), shifted=(30, 10)))  # holds; a tie
    assert not face_study.choose_equalize(contrast_record(as_they_are=(5, 25), shifted=(30, 10)))  # reversed: vetoed
    assert not face_study.choose_equalize(contrast_record(as_they_are=(20, 5), shifted=(14, 10)))  # shifted: a tie
    tests = face_study.equalize_tests(contrast_record(as_they_are=(10, 14), shifted=(30, 10)))
    assert tests["shifted like real crops"]["difference"] == pytest.approx(20 / 200)
    assert tests["shifted like real crops"]["equalised"] == pytest.approx(130 / 200)
    assert tests["as they are"]["p"] == pytest.approx(fu.stats.mcnemar_from_counts(10, 14)["p_value"])
    assert (tests["shifted like real crops"]["verdict"], tests["as they are"]["verdict"]) == ("holds", "tie")


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

    def predict_proba(self, images, **options):
        return np.eye(7, dtype=np.float32)[np.full(len(images), self.cls)]


class ReadsTheGreyLevel:
    """A stub classifier: a face whose centre has grey level 20 + 30 k is class k (the nearest level)."""

    def predict_proba(self, images, **options):
        level = np.median(np.asarray(images, float)[:, 16:32, 16:32].reshape(len(images), -1), axis=1)
        return np.eye(7, dtype=np.float32)[np.clip(np.round((level - 20) / 30), 0, 6).astype(int)]


def uniform_faces(labels) -> np.ndarray:
    """(N, 48, 48) uniform faces whose grey level codes their label for ReadsTheGreyLevel."""
    return np.stack([np.full((48, 48), 20 + 30 * k, np.uint8) for k in labels])


@pytest.fixture
def stub_scenes(monkeypatch):
    """Scenes with a stub detector: ``stub.finds(scene, boxes, kwargs)`` says which detections (Faces) a
    scene gives, from its pasted boxes and the detection's arguments; ``stub.calls`` keeps the arguments."""
    from fer_utils.course import scenes

    paste_faces = scenes.paste_faces

    class Stub:
        pasted, calls = [], []

        @staticmethod
        def finds(scene, boxes, kwargs):
            return [fu.faces.Face(box, 0.9) for box in boxes]

    def paste(background, faces, rng, **kwargs):
        scene, boxes = paste_faces(background, faces, rng, **kwargs)
        Stub.pasted.append(boxes)
        return scene, boxes

    def detect(scene, detector, **kwargs):
        Stub.calls.append(kwargs)
        return Stub.finds(scene, Stub.pasted[-1], kwargs)

    monkeypatch.setattr(scenes, "paste_faces", paste)
    monkeypatch.setattr(scenes, "detect_faces", detect)
    return Stub


def test_the_pasted_face_benchmark_counts_faces_found_right_and_false(monkeypatch):
    """evaluate_scenes and scene_summary on scenes whose detector is a stub: it finds every pasted face but the
    first of each scene, and adds one false face per scene; the classifier always answers 'happy' (3)."""
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


def test_scene_summary_stores_counts():
    """The counts the rates are made of, so that no record turns a rate back into a count."""
    from fer_utils.course.scenes import SceneEvaluation

    faces = pd.DataFrame({"label": [3, 3, 0, 1], "detected": [True, True, False, True], "pred@pipeline": [3, 0, -1, 1],
                          "direct": [3, 3, 3, 1]})
    summary = SceneEvaluation(faces, scenes=2, false_positive_scores=[0.5, 0.7, 0.9], seconds_per_scene=0.01).summary()
    assert (summary["found"], summary["end_to_end_right"], summary["direct_right"], summary["false_positives"]) == (3, 2, 3, 3)
    assert summary["end_to_end_accuracy"] == 0.5 and summary["false_positives_per_scene"] == 1.5


def test_the_scenes_crop_is_the_pipelines_equalised_when_the_package_equalises(monkeypatch):
    scene = np.random.default_rng(0).integers(90, 110, (120, 160)).astype(np.uint8)
    face = fu.faces.Face((40, 30, 50, 50), 0.9)
    plain = fu.faces.face_crop(scene, face)
    for equalise in (True, False):
        monkeypatch.setattr(scenes, "EQUALIZE", equalise)
        expected = cv2.equalizeHist(plain) if equalise else plain
        assert np.array_equal(scenes.pipeline_crop(scene, face), expected)
        pipeline = fu.realtime.EmotionPipeline(AlwaysClass(0))
        monkeypatch.setattr(fu.realtime, "EQUALIZE", equalise)
        assert np.array_equal(pipeline.crops(scene, [face])[0], expected)


def test_video_sides_pairs_each_side_with_the_largest_on_the_same_faces(stub_scenes, monkeypatch):
    """A stub detector that, searching at 160 px, misses the first face of every scene, at 256 px the first of
    every other scene, and at 384 px none; the classifier reads each face's label off its grey level."""
    def finds(scene, boxes, kwargs):
        scene_number = (len(stub_scenes.pasted) - 1) % 20
        missed = {160: True, 256: scene_number % 2 == 0, 384: False}[kwargs["max_side"]]
        return [fu.faces.Face(box, 0.9) for box in boxes[1:] if missed] if missed else [fu.faces.Face(b, 0.9) for b in boxes]

    stub_scenes.finds = finds
    monkeypatch.setattr(face_study, "frame_ms", lambda detector, side, repeats: side / 10)
    monkeypatch.setattr(scenes, "EQUALIZE", False)  # equalising would wipe out the grey-level code
    labels = np.arange(60) % 7  # twenty scenes of three faces
    record = face_study.video_sides(ReadsTheGreyLevel(), uniform_faces(labels), labels, sides=(160, 256, 384), detector="stub")
    rows = record["sides"]
    assert {s: (r["faces"], r["found"], r["end_to_end"]) for s, r in rows.items()} == {
        "160": (60, 40, 40), "256": (60, 50, 50), "384": (60, 60, 60)}
    assert (rows["160"]["versus_largest"]["a_only"], rows["160"]["versus_largest"]["b_only"]) == (0, 20)
    assert (rows["256"]["versus_largest"]["a_only"], rows["256"]["versus_largest"]["b_only"]) == (0, 10)
    assert rows["256"]["end_to_end_interval"] == pytest.approx(list(fu.stats.accuracy_interval(50, 60)))
    assert rows["384"]["ms_per_640x480_frame"] == 38.4
    assert face_study.choose_video_side(record) == 384  # 10 lost, none gained: p = 0.002, worse beyond noise
    assert {call["max_side"] for call in stub_scenes.calls} == {160, 256, 384}


def test_threshold_trade_counts_faces_found_and_false_detections_at_each_threshold(stub_scenes, monkeypatch):
    """Scenes whose three faces score 0.9, 0.6 and 0.3 and which each hold one false box scoring 0.4; of the ten
    face-free photos, the first four give one false box each, scoring 0.2, 0.4, 0.6 and 0.8."""
    def finds(scene, boxes, kwargs):
        found = [fu.faces.Face(box, score) for box, score in zip(boxes, (0.9, 0.6, 0.3), strict=True)] + [fu.faces.Face((0, 0, 30, 30), 0.4)]
        return [f for f in found if f.score >= kwargs["min_score"]]

    empty = iter([0.2, 0.4, 0.6, 0.8] + [None] * 6)

    def face_free(ground, detector, min_score, **kwargs):
        stub_scenes.calls.append({"min_score": min_score, **kwargs})
        score = next(empty)
        return [fu.faces.Face((5, 5, 40, 40), score)] if score is not None and score >= min_score else []

    stub_scenes.finds = finds
    monkeypatch.setattr(face_study, "detect_faces", face_free)
    labels = np.zeros(12, int)  # four scenes
    record = face_study.threshold_trade(AlwaysClass(0), uniform_faces(labels), labels, "stub", [0.25, 0.5, 0.7, 0.95])
    assert {call["min_score"] for call in stub_scenes.calls} == {0.25}  # the detector runs once, at the lowest threshold
    assert (record["faces"], record["scenes"], record["face_free_photos"]) == (12, 4, 10)
    counts = [(r["min_score"], r["faces_found"], r["false_on_scenes"], r["false_on_face_free_photos"]) for r in record["trade"]]
    assert counts == [(0.25, 12, 4, 3), (0.5, 8, 0, 2), (0.7, 4, 0, 1), (0.95, 0, 0, 0)]
    assert record["trade"][1]["found"] == pytest.approx(8 / 12) and record["trade"][0]["false_per_scene"] == 1.0
    assert record["trade"][0]["false_per_face_free_photo"] == pytest.approx(0.3)
    # 0.25: 1 - 1/3 = 0.667 found less false per face; 0.5: 0.667 - 0: a tie, the lowest wins
    assert face_study.choose_threshold(record["trade"]) == 0.25


def test_compare_framings_counts_the_faces_each_framing_gets_right_and_the_discordant_pairs(stub_scenes, monkeypatch):
    """Two framings of the same detected faces: one reads the pasted face (right), one gives a blank crop (class 0);
    the detector misses the first face of every scene."""
    stub_scenes.finds = lambda scene, boxes, kwargs: [fu.faces.Face(box, 0.9) for box in boxes[1:]]
    monkeypatch.setattr(face_study, "framings", lambda: {
        "read": lambda scene, face: fu.faces.crop_face(scene, face.box, 0.0),
        "blank": lambda scene, face: np.full((48, 48), 20, np.uint8)})
    labels = np.array([1, 0, 2, 3, 0, 0, 4, 5, 6, 0, 1, 2])  # four scenes
    record = face_study.compare_framings(ReadsTheGreyLevel(), uniform_faces(labels), labels, tilts=[0, 20])
    detected = np.arange(12) % 3 != 0
    read_right, blank_right = detected.sum(), (detected & (labels == 0)).sum()  # 8 and 3
    for tilt in ("0", "20"):  # a uniform face stays uniform when tilted
        assert record["tilts"][tilt] == {"detected": 8, "faces": 12, "correct": {"read": read_right, "blank": blank_right},
                                         "discordant": {"read | blank": 5, "blank | read": 0}}
    assert face_study.framing_accuracy(record)["0"] == {"read": 1.0, "blank": 3 / 8}
    assert face_study.choose_framing(record) == "read"


def test_contrast_study_pairs_each_face_with_and_without_equalisation():
    """A stub classifier that says 'happy' (3) for a contrasted face (grey-level spread over 50) and 'angry' (0)
    for a flat one: equalising turns every flat face into a contrasted one."""
    class Contrast:
        def predict_proba(self, images, **options):
            spread = np.asarray(images, float).reshape(len(images), -1).std(1)
            return np.eye(7, dtype=np.float32)[np.where(spread > 50, 3, 0)]

    rng = np.random.default_rng(0)
    faces = rng.integers(120, 136, (40, 48, 48)).astype(np.uint8)  # flat: spread about 5
    labels = np.array([3] * 30 + [0] * 10)
    real_crops = rng.integers(100, 150, (6, 48, 48)).astype(np.uint8)  # flat too: spread about 14
    record = face_study.contrast_study(Contrast(), faces, labels, real_crops)
    for name in face_study.CONTRAST_SETS:  # flat faces, and flat faces shifted to real crops' spread
        assert record[name] == {"not equalised": 10, "equalised": 30,
                                "discordant": {"equalised | not equalised": 30, "not equalised | equalised": 10}}
    assert record["real crops whose emotion changes when equalised"] == 6
    assert (record["faces"], record["real_crops"]) == (40, 6)
    assert face_study.choose_equalize(record)  # 30 against 10: p = 0.002 on both sets


def stub_photos() -> list:
    """Three synthetic pictures (told apart by their grey level): two faces, one of them unclear; one face-free;
    one face. ``DETECTIONS`` says what a stub detector finds in each."""
    def photo(name, level, boxes, expressions):
        return fu.real_photos.RealPhoto(name, Path(f"{name}.png"), np.full((200, 300, 3), level, np.uint8), boxes,
                                        expressions, [f"face {i}" for i in range(len(boxes))], "CC0")

    return [photo("two", 10, [(10, 10, 60, 60), (150, 20, 60, 60)], ["happy", None]),
            photo("none", 20, [], []),
            photo("one", 30, [(100, 100, 50, 50)], ["sad"])]


# Per picture: found boxes. "two": its first face at IoU (50x50 inside 60x60) 0.69, a false box; "none": one
# false face; "one": a box over its face with IoU 0.25, below MATCH_IOU (0.3): a miss and a false face.
DETECTIONS = {10: [(15, 15, 50, 50), (250, 150, 40, 40)], 20: [(0, 0, 30, 30)], 30: [(100, 100, 25, 25)]}


@pytest.fixture
def stub_photo_detector(monkeypatch):
    def detect(image, detector, **kwargs):
        return [fu.faces.Face(box, 0.9) for box in DETECTIONS[int(image[0, 0, 0])]]

    monkeypatch.setattr(fu.realtime, "detect_faces", detect)


def test_evaluate_photos_matches_hand_drawn_faces_at_the_one_iou_criterion(stub_photo_detector):
    assert fu.faces.MATCH_IOU == 0.3
    pipeline = fu.realtime.EmotionPipeline(AlwaysClass(fu.CLASSES.index("happy")), "centerface")
    faces, pictures = face_study.evaluate_photos(pipeline, stub_photos())
    assert faces["found"].tolist() == [True, False, False]
    assert faces["iou"].tolist() == pytest.approx([2500 / 3600, 0.0, 0.0])
    assert faces["predicted"].iloc[0] == "happy" and faces["predicted"].iloc[1:].isna().all()
    assert pictures[["faces", "detections", "false_faces"]].to_numpy().tolist() == [[2, 2, 1], [0, 1, 1], [1, 1, 1]]
    summary = face_study.real_photo_summary(pipeline, stub_photos())
    assert {k: v for k, v in summary.items() if k != "faces_table"} == {
        "faces": 3, "found": 1, "false_faces_on_photos_with_faces": 2, "face_free_photos": 1,
        "false_faces_on_face_free_photos": 1, "clear_expressions": 2, "clear_found": 1, "clear_named_right": 1}
    _, lenient = face_study.evaluate_photos(pipeline, stub_photos(), min_iou=0.2)
    assert lenient["false_faces"].tolist() == [1, 1, 0]  # at IoU 0.2 the last box finds its face


def test_photo_setting_reports_the_real_photos_and_the_pasted_faces(stub_photo_detector, stub_scenes):
    stub_scenes.finds = lambda scene, boxes, kwargs: [fu.faces.Face(box, 0.9) for box in boxes[:2]]  # misses the third
    labels = np.array([3, 0, 3, 3, 3, 1])  # two scenes
    run = face_study.photo_setting(AlwaysClass(3), uniform_faces(labels), labels, stub_photos(), min_score=0.5,
                                   detector="centerface")
    assert run["real_photos"]["found"] == 1 and run["real_photos"]["clear_named_right"] == 1
    photo = run["photo"]
    assert (photo["faces"], photo["found"], photo["end_to_end_right"], photo["direct_right"]) == (6, 4, 3, 4)
    assert photo["end_to_end_interval"] == pytest.approx(list(fu.stats.accuracy_interval(3, 6)))
    assert {call["min_score"] for call in stub_scenes.calls} == {0.5}
    assert {call["max_side"] for call in stub_scenes.calls} == {fu.realtime.PHOTO_DETECTION["max_side"]}
