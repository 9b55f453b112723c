"""The pipeline on photos and videos: detection, tracking, drawing, and the video files it writes."""

import csv

import cv2
import numpy as np
import pytest
from skimage import data as samples

import fer_utils as fu
from fer_utils.course.scenes import evaluate_scenes, paste_faces
from fer_utils.faces import detect_faces, iou
from fer_utils.inference import TorchClassifier
from fer_utils.realtime import (
    EmotionPipeline,
    VideoError,
    annotate,
    open_video,
    process_video,
    track,
)
from fer_utils.sample_video import moving_face_video


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    fu.set_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.pt"
    return TorchClassifier(fu.save_model(path, fu.build_model("plain_cnn", depth=2, width=8)))


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return moving_face_video(tmp_path_factory.mktemp("video") / "moving.mp4", frames=12)


def test_photo_gives_each_face_a_box_and_probabilities(classifier):
    faces = EmotionPipeline(classifier).photo(samples.astronaut())
    assert len(faces) == 1
    assert faces[0].probabilities.shape == (7,) and faces[0].probabilities.sum() == pytest.approx(1, abs=1e-5)
    assert faces[0].emotion == faces[0].top(1)[0][0] in fu.CLASSES


def test_annotate_draws_inside_a_copy(classifier):
    image = samples.astronaut()
    faces = EmotionPipeline(classifier).photo(image)
    drawn = annotate(image, faces, fps=30)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8
    assert not np.array_equal(drawn, image) and np.array_equal(image, samples.astronaut())


def test_tracking_follows_a_moving_face():
    frame = cv2.cvtColor(samples.astronaut(), cv2.COLOR_RGB2GRAY)
    [face] = detect_faces(frame)
    moved = np.roll(frame, (8, 12), axis=(0, 1))  # 12 px right, 8 px down
    [new] = track(frame, moved, [face])
    assert abs(new.box[0] - face.box[0] - 12) <= 2 and abs(new.box[1] - face.box[1] - 8) <= 2 and new.score == face.score
    assert np.abs(new.landmarks - face.landmarks - [12, 8]).max() <= 2  # the eyes move with the box
    assert track(frame, np.zeros_like(frame), [face]) == []  # nothing like it: dropped


def test_video_pipeline_detects_every_few_frames_and_tracks_between(classifier, video):
    every_frame, tracked = EmotionPipeline(classifier, detect_every=1), EmotionPipeline(classifier, detect_every=3)
    capture = open_video(video)
    overlaps = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        [a], [b] = every_frame.frame(rgb), tracked.frame(rgb)
        overlaps.append(iou(a.box, b.box))
    assert len(overlaps) == 12 and min(overlaps) > 0.6


def test_process_video_writes_the_annotated_video_and_a_csv(classifier, video, tmp_path):
    out, table = tmp_path / "out" / "annotated.mp4", tmp_path / "out" / "faces.csv"
    stats = process_video(video, EmotionPipeline(classifier), out, table, progress=False)
    assert stats["frames"] == 12 and stats["faces"] == 12 and stats["fps"] > 0
    check = cv2.VideoCapture(str(out))
    assert int(check.get(cv2.CAP_PROP_FRAME_COUNT)) == 12 and check.read()[1].shape == (480, 640, 3)
    check.release()
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 12 and [int(r["frame"]) for r in rows] == list(range(12))
    assert sum(float(rows[0][f"p_{c}"]) for c in fu.CLASSES) == pytest.approx(1, abs=1e-3)


def test_videos_that_do_not_open_and_missing_cameras_are_clear_errors(tmp_path):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoError, match="no such file"):
        open_video(tmp_path / "missing.mp4")
    with pytest.raises(VideoError, match="not a video OpenCV can open"):
        open_video(tmp_path / "notes.mp4")
    with pytest.raises(VideoError, match="no camera at index 99"):
        open_video(99)


def test_pasted_faces_are_counted_detected_or_missed(classifier, synthetic):
    rng = np.random.default_rng(0)
    background = np.full((480, 640), 90, np.uint8)
    scene, boxes = paste_faces(background, synthetic.test.images[:3], rng)
    assert len(boxes) == 3 and all(iou(a, b) == 0 for a in boxes for b in boxes if a is not b)
    x, y, side, _ = boxes[0]
    assert np.array_equal(scene[y : y + side, x : x + side], cv2.resize(synthetic.test.images[0], (side, side)))
    astronaut = cv2.resize(cv2.cvtColor(samples.astronaut()[40:200, 150:300], cv2.COLOR_RGB2GRAY), (48, 48))
    images = np.stack([astronaut, synthetic.test.images[0]])  # a real face, and a striped blob
    framings = {"box": lambda scene, face: fu.crop_face(scene, face.box, 0.1), "pipeline": fu.course.scenes.pipeline_crop}
    result = evaluate_scenes(classifier, images, np.array([3, 0]), faces_per_scene=2, framings=framings)
    assert list(result.faces["detected"]) == [True, False]
    summary = result.summary("box")
    assert summary["detection_rate"] == 0.5 and summary["end_to_end_accuracy"] <= 0.5 and summary["ms_per_scene"] > 0
    assert result.faces.loc[1, "pred@box"] == -1 and result.faces.loc[1, "pred@pipeline"] == -1  # missed: no prediction
