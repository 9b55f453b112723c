"""The camera widget's kernel side: the frame protocol (decode, bad frames, rate limit, smoothing,
snapshots, collect mode) and the widget's message routing. The browser side is tested in test_camera_browser.py."""

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

import fer_utils as fu
from fer_utils import camera
from fer_utils.realtime import FacePrediction

HAPPY = np.eye(7)[fu.CLASSES.index("happy")]
SAD = np.eye(7)[fu.CLASSES.index("sad")]
CROP = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)  # the face crop the fake pipeline gives
NO_COUNTS = dict.fromkeys(fu.CLASSES, 0)


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok
    return data.tobytes()


class FakePipeline:
    """Returns ``faces`` faces (one by default), each with the probabilities queued in ``answers``, one
    per frame, and the crop CROP."""

    def __init__(self, *answers, box=(10, 10, 50, 50), faces=1):
        self.answers, self.box, self.faces, self.frames, self.resets = list(answers), box, faces, [], 0

    def frame(self, image):
        self.frames.append(image.shape)
        probabilities = self.answers.pop(0)
        return [FacePrediction(self.box, 0.9, probabilities, CROP) for _ in range(self.faces)]

    def reset(self):
        self.resets += 1


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_frames_decode_and_bad_bytes_are_none():
    image = samples.astronaut()[:240, :320]
    decoded = camera.decode_jpeg(jpeg(image))
    assert decoded.shape == image.shape and np.abs(decoded.astype(int) - image).mean() < 8  # JPEG is lossy
    assert camera.decode_jpeg(b"not an image") is None and camera.decode_jpeg(b"") is None


def test_a_frame_gets_its_faces_and_bad_frames_are_counted_and_skipped():
    clock = Clock()
    protocol = camera.FrameProtocol(FakePipeline(HAPPY), max_fps=10, clock=clock)
    bad = protocol.handle({"type": "frame", "id": 1}, [b"\x00" * 50])
    assert bad == {"type": "bad frame", "id": 1, "bad_frames": 1}
    reply = protocol.handle({"type": "frame", "id": 2}, [jpeg(samples.astronaut()[:240, :320])])
    assert reply["type"] == "result" and reply["id"] == 2 and (reply["width"], reply["height"]) == (320, 240)
    assert reply["bad_frames"] == 1 and reply["kernel_ms"] >= 0
    (face,) = reply["faces"]
    assert face["box"] == [10, 10, 50, 50] and face["emotion"] == "happy"
    assert face["probabilities"]["happy"] == 1.0 and set(face["probabilities"]) == set(fu.CLASSES)
    assert protocol.handle({"type": "frame", "id": 3}, [])["type"] == "dropped"  # too soon after frame 2
    assert (protocol.processed, protocol.bad, protocol.dropped) == (1, 1, 1)


def test_frames_faster_than_max_fps_are_dropped_not_queued():
    clock = Clock()
    pipeline = FakePipeline(HAPPY, HAPPY, HAPPY)
    protocol = camera.FrameProtocol(pipeline, max_fps=10, clock=clock)
    frame = jpeg(np.full((48, 64, 3), 128, np.uint8))
    kinds = []
    for t in (0.0, 0.05, 0.09, 0.1, 0.15, 0.21):
        clock.now = t
        kinds.append(protocol.handle({"type": "frame", "id": t}, [frame])["type"])
    assert kinds == ["result", "dropped", "dropped", "result", "dropped", "result"]
    assert len(pipeline.frames) == 3  # the dropped frames never reached the pipeline


def test_probabilities_are_smoothed_for_the_same_face_only():
    clock = Clock()
    protocol = camera.FrameProtocol(FakePipeline(HAPPY, SAD, SAD), max_fps=1000, clock=clock)
    frame = jpeg(np.full((48, 64, 3), 128, np.uint8))
    results = []
    for t in (0.0, 1.0):
        clock.now = t
        results.append(protocol.handle({"type": "frame", "id": t}, [frame])["faces"][0]["probabilities"])
    w = camera.SMOOTHING
    assert results[1]["happy"] == pytest.approx(w) and results[1]["sad"] == pytest.approx(1 - w)
    protocol.pipeline.box = (400, 300, 50, 50)  # somewhere else: another face, not smoothed with the first
    clock.now = 2.0
    assert protocol.handle({"type": "frame", "id": 2}, [frame])["faces"][0]["probabilities"]["sad"] == 1.0
    protocol.handle({"type": "reset"}, [])
    assert protocol.pipeline.resets == 1 and protocol.smoother.previous == []


def test_snapshots_are_saved_and_unknown_messages_answered(tmp_path):
    protocol = camera.FrameProtocol(FakePipeline(), snapshot_dir=tmp_path)
    ok, png = cv2.imencode(".png", np.zeros((20, 30, 3), np.uint8))
    reply = protocol.handle({"type": "snapshot"}, [png.tobytes()])
    assert reply["type"] == "saved"
    with Image.open(reply["path"]) as image:
        assert image.size == (30, 20)
    assert protocol.handle({"type": "snapshot"}, [b"junk"])["type"] == "error"
    assert "unknown message" in protocol.handle({"type": "what"}, [])["message"]


def test_the_rate_says_starting_until_two_frames_are_answered():
    clock = Clock()
    protocol = camera.FrameProtocol(FakePipeline(HAPPY, HAPPY, HAPPY), max_fps=10, clock=clock)
    frame = jpeg(np.full((48, 64, 3), 128, np.uint8))
    first = protocol.handle({"type": "frame", "id": 1}, [frame])
    assert (first["rate"], first["fps"]) == ("starting…", 0.0)  # not "0.0 fps"
    clock.now = 0.25
    second = protocol.handle({"type": "frame", "id": 2}, [frame])
    assert second["rate"] == "4.0 fps" and second["fps"] == pytest.approx(4.0)
    protocol.handle({"type": "reset"}, [])  # a new camera session measures its own rate
    clock.now = 1.0
    assert protocol.handle({"type": "frame", "id": 3}, [frame])["rate"] == "starting…"


def test_snapshots_go_where_git_ignores_them_or_where_asked(tmp_path):
    assert camera.CameraWidget(pipeline=FakePipeline()).protocol.snapshot_dir == fu.PROJECT_ROOT / "snapshots"
    snapshot = camera.SNAPSHOTS_DIR / "camera-snapshot-20250101-120000-000000.png"
    ignored = subprocess.run(["git", "check-ignore", "--quiet", str(snapshot)], cwd=fu.PROJECT_ROOT)
    assert ignored.returncode == 0, "snapshots/ is not in .gitignore"
    assert camera.CameraWidget(pipeline=FakePipeline(), snapshot_dir=tmp_path).protocol.snapshot_dir == tmp_path


def test_the_widget_answers_each_message_through_the_protocol(monkeypatch):
    widget = camera.CameraWidget(pipeline=FakePipeline(HAPPY), max_fps=5)
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    widget._on_message(widget, {"type": "frame", "id": 7}, [jpeg(np.full((48, 64, 3), 90, np.uint8))])
    assert sent[0]["type"] == "result" and sent[0]["faces"][0]["emotion"] == "happy"
    widget.max_fps = 2.5
    assert widget.protocol.max_fps == 2.5
    assert widget.status == "camera off" and not widget.running


def files_under(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_collect_saves_the_face_crop_and_its_frame_and_counts_from_disk(tmp_path):
    (tmp_path / "happy").mkdir()
    (tmp_path / "happy" / "earlier.png").write_bytes(cv2.imencode(".png", CROP)[1].tobytes())  # a session before
    protocol = camera.FrameProtocol(FakePipeline(HAPPY), collect_dir=tmp_path)
    assert protocol.counts() == {**NO_COUNTS, "happy": 1}
    frame = jpeg(samples.astronaut()[:240, :320])
    protocol.handle({"type": "frame", "id": 1}, [frame])
    reply = protocol.handle({"type": "collect", "emotion": "sad"}, [])
    assert reply["type"] == "collected" and reply["emotion"] == "sad"
    assert reply["counts"] == {**NO_COUNTS, "happy": 1, "sad": 1}
    crop = Path(reply["path"])
    assert crop.parent == tmp_path / "sad" and crop.suffix == ".png"
    saved = cv2.imread(str(crop), cv2.IMREAD_UNCHANGED)
    assert saved.shape == (48, 48) and np.array_equal(saved, CROP)  # the crop the classifier saw, losslessly
    assert (tmp_path / ".frames" / "sad" / f"{crop.stem}.jpg").read_bytes() == frame  # the frame as the browser sent it
    # only emotion folders beside the hidden frames, and no temporary file left by the atomic writes
    assert files_under(tmp_path) == [f".frames/sad/{crop.stem}.jpg", "happy/earlier.png", f"sad/{crop.name}"]
    protocol.handle({"type": "collect", "emotion": "sad"}, [])  # the same frame again: a second example
    assert camera.FrameProtocol(FakePipeline(), collect_dir=tmp_path).counts() == {**NO_COUNTS, "happy": 1, "sad": 2}


def test_collect_needs_exactly_one_face_and_a_known_emotion(tmp_path):
    clock = Clock()
    pipeline = FakePipeline(HAPPY, HAPPY, faces=0)
    protocol = camera.FrameProtocol(pipeline, max_fps=10, collect_dir=tmp_path, clock=clock)
    frame = jpeg(np.full((48, 64, 3), 128, np.uint8))
    no_face = {"type": "not collected", "reason": "no face in view"}
    assert protocol.handle({"type": "collect", "emotion": "happy"}, []) == no_face  # before any frame
    protocol.handle({"type": "frame", "id": 1}, [frame])
    assert protocol.handle({"type": "collect", "emotion": "happy"}, []) == no_face
    pipeline.faces, clock.now = 2, 1.0
    protocol.handle({"type": "frame", "id": 2}, [frame])
    assert protocol.handle({"type": "collect", "emotion": "happy"}, []) == {
        "type": "not collected", "reason": "2 faces in view: collect needs exactly one"}
    for emotion in ("joy", None, ["happy"]):
        reply = protocol.handle({"type": "collect", "emotion": emotion}, [])
        assert reply["type"] == "error" and "unknown emotion" in reply["message"], reply
    assert files_under(tmp_path) == []
    off = camera.FrameProtocol(FakePipeline(HAPPY))
    off.handle({"type": "frame", "id": 1}, [frame])
    assert off.handle({"type": "collect", "emotion": "happy"}, [])["type"] == "error"  # no collect_dir: not collecting


class RecordingClassifier:
    """Says *happy* of every face, keeping the faces it is given."""

    def __init__(self):
        self.inputs = []

    def predict_proba(self, faces, tta=False):
        self.inputs.append(faces.copy())
        return np.tile(HAPPY, (len(faces), 1))


def test_the_collected_crop_is_what_the_pipeline_fed_the_classifier(tmp_path):
    classifier = RecordingClassifier()
    protocol = camera.FrameProtocol(fu.realtime.EmotionPipeline(classifier), max_fps=1000, collect_dir=tmp_path)
    protocol.handle({"type": "frame", "id": 1}, [jpeg(cv2.resize(samples.astronaut(), (320, 320)))])
    reply = protocol.handle({"type": "collect", "emotion": "happy"}, [])
    (fed,) = classifier.inputs
    assert fed.shape == (1, 48, 48) and np.array_equal(cv2.imread(reply["path"], cv2.IMREAD_UNCHANGED), fed[0])


def test_collect_mode_shows_the_counts_and_keeps_them_current(tmp_path, monkeypatch):
    plain = camera.CameraWidget(pipeline=FakePipeline())
    assert (plain.collect_dir, plain.counts) == ("", {})  # not in collect mode
    (tmp_path / "fear").mkdir()
    (tmp_path / "fear" / "earlier.png").write_bytes(b"")
    widget = camera.CameraWidget(pipeline=FakePipeline(HAPPY), collect_dir=tmp_path)
    assert widget.collect_dir == str(tmp_path) and widget.counts == {**NO_COUNTS, "fear": 1}
    sent = []
    monkeypatch.setattr(widget, "send", lambda content, buffers=None: sent.append(content))
    widget._on_message(widget, {"type": "frame", "id": 1}, [jpeg(np.full((48, 64, 3), 90, np.uint8))])
    widget._on_message(widget, {"type": "collect", "emotion": "fear"}, [])
    assert sent[-1]["type"] == "collected" and widget.counts == {**NO_COUNTS, "fear": 2}


def test_the_widget_runs_the_checkpoint_given(tmp_path, monkeypatch):
    loaded = []

    def load_classifier(checkpoint=None):
        loaded.append(checkpoint)
        return RecordingClassifier()

    monkeypatch.setattr(fu.inference, "load_classifier", load_classifier)
    widget = camera.CameraWidget(checkpoint=tmp_path / "mine.pt")
    assert loaded == [tmp_path / "mine.pt"] and isinstance(widget.protocol.pipeline.classifier, RecordingClassifier)
    with pytest.raises(ValueError, match="not both"):
        camera.CameraWidget(pipeline=FakePipeline(), checkpoint=tmp_path / "mine.pt")
    monkeypatch.undo()
    with pytest.raises(fu.CheckpointError, match="no checkpoint at"):
        camera.CameraWidget(checkpoint=tmp_path / "missing.pt")


@pytest.mark.realdata
def test_the_real_pipeline_names_the_astronauts_smile():
    protocol = camera.FrameProtocol(fu.realtime.EmotionPipeline(fu.load_classifier()), max_fps=1000)
    frame = cv2.resize(samples.astronaut(), (320, 320))
    reply = protocol.handle({"type": "frame", "id": 1}, [jpeg(frame)])
    assert [f["emotion"] for f in reply["faces"]] == ["happy"]
