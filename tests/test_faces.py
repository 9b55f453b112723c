"""Reading photos, detecting faces (three detectors) and cropping them as FER-2013 did."""

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

import fer_utils as fu
from fer_utils import pretrained
from fer_utils.config import DETECTORS
from fer_utils.course.scenes import tilt
from fer_utils.faces import (
    DEFAULT_MIN_SCORE,
    EYE_DISTANCE,
    EYE_HEIGHT,
    SMALL_FACE_MIN_CORRELATION,
    SMALL_FACE_MIN_STD,
    Face,
    NotAnImageError,
    align_face,
    aligned_square,
    crop_face,
    detect_faces,
    eye_angle,
    eyes,
    face_crop,
    iou,
    level_transform,
    neighbour_correlation,
    read_image,
    small_image_problem,
    square_box,
    whole_image,
)

# The astronaut's face in scikit-image's 512x512 photo, by eye: x 175-275, y 65-165; her eyes at
# about (205, 102) and (247, 104). The cameraman's face, turned to his camera: x 195-260, y 115-195.
ASTRONAUT_FACE = (175, 65, 100, 100)
ASTRONAUT_EYES = np.array([[205, 102], [247, 104]])
CAMERAMAN_FACE = (195, 115, 65, 80)


@pytest.fixture(scope="module")
def astronaut():
    return samples.astronaut()


@pytest.mark.parametrize("detector", DETECTORS)
def test_each_detector_finds_the_astronauts_face_with_a_score(astronaut, detector):
    faces = detect_faces(astronaut, detector)
    assert len(faces) == 1
    assert iou(faces[0].box, ASTRONAUT_FACE) > 0.5
    assert faces[0].score >= DEFAULT_MIN_SCORE[detector]
    if detector == "haar":
        assert faces[0].landmarks is None
    else:  # five (x, y) points, the eyes within a few pixels of where they are
        assert faces[0].landmarks.shape == (5, 2)
        assert np.abs(np.stack(eyes(faces[0].landmarks)) - ASTRONAUT_EYES).max() < 6


@pytest.mark.parametrize("detector", ["centerface", "mtcnn"])
def test_the_landmark_detectors_find_a_face_turned_away_that_haar_misses(detector):
    cameraman = samples.camera()  # a real photo: he looks through his camera, half turned away
    assert detect_faces(cameraman, "haar") == []
    [face] = detect_faces(cameraman, detector)
    assert iou(face.box, CAMERAMAN_FACE) > 0.4


def test_an_unknown_detector_is_a_clear_error(astronaut):
    with pytest.raises(ValueError, match="unknown face detector 'yolo': choose one of centerface, mtcnn, haar"):
        detect_faces(astronaut, "yolo")


def test_missing_detector_weights_say_how_to_fetch_them(astronaut, tmp_path, monkeypatch):
    from fer_utils import detectors

    monkeypatch.setenv(pretrained.WEIGHTS_ENV, str(tmp_path))
    detectors._centerface_session.cache_clear()
    detectors._mtcnn_nets.cache_clear()
    try:
        for detector in ("centerface", "mtcnn"):
            with pytest.raises(pretrained.WeightsNotFoundError, match="python -m fer_utils fetch-weights") as err:
                detect_faces(astronaut, detector)
            assert "\n" not in str(err.value)
    finally:
        detectors._centerface_session.cache_clear()
        detectors._mtcnn_nets.cache_clear()


def test_the_score_threshold_drops_only_weaker_detections(astronaut):
    """Upscaled 10x and searched at 960 px, the astronaut photo gives Haar weak false detections
    besides the face; the default threshold keeps the face and drops detections below it."""
    big = np.asarray(Image.fromarray(astronaut).resize((5120, 5120)))
    every = detect_faces(big, "haar", min_score=0)
    kept = detect_faces(big, "haar")
    assert {f.box for f in kept} == {f.box for f in every if f.score >= DEFAULT_MIN_SCORE["haar"]}
    assert len(kept) < len(every)
    assert any(iou(f.box, tuple(10 * v for v in ASTRONAUT_FACE)) > 0.6 for f in kept)


@pytest.mark.parametrize("detector", ["centerface", "mtcnn"])
def test_a_threshold_below_the_detectors_own_cut_only_adds_weaker_detections(detector):
    """Asked for detections down to 0.1, CenterFace and MTCNN lower their own cut (0.3; 0.7 for MTCNN's last
    stage): what scores at least the cut is what the default search finds, and more comes below it."""
    cut = {"centerface": fu.detectors.CENTERFACE_THRESHOLD, "mtcnn": fu.detectors.MTCNN_THRESHOLDS[2]}[detector]
    assert fu.detectors.score_cut(detector, 0.1) and not fu.detectors.score_cut(detector, cut)
    scene = np.hstack([samples.astronaut(), np.dstack([samples.camera()] * 3), cv2.resize(samples.coffee(), (512, 512)),
                       np.dstack([samples.gravel()] * 3)])
    low, default = (detect_faces(scene, detector, max_side=None, min_score=score) for score in (0.1, cut))
    assert {f.box for f in low if f.score >= cut} == {f.box for f in default}
    assert len(low) > len(default) and min(f.score for f in low) >= 0.1


@pytest.mark.parametrize("detector", DETECTORS)
def test_shrinking_for_speed_keeps_boxes_and_landmarks_in_the_original_pixels(astronaut, detector):
    full, small = detect_faces(astronaut, detector, max_side=None), detect_faces(astronaut, detector, max_side=256)
    assert len(small) == 1 and iou(small[0].box, full[0].box) > 0.7
    if full[0].landmarks is not None:
        assert np.abs(small[0].landmarks - full[0].landmarks).max() < 8


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("image", [
    samples.coffee(),
    samples.chelsea(),  # a cat: not a human face
    np.tile(np.linspace(0, 255, 640).astype(np.uint8), (480, 1)),
], ids=["coffee", "cat", "gradient"])
def test_no_face_in_face_free_images(image, detector):
    assert detect_faces(image, detector) == []


def test_alignment_levels_the_eyes_of_a_tilted_face(astronaut):
    """Turn the photo by 25 degrees: the landmarks follow the eyes, and the aligned crop puts them
    level (framed by the eyes: EYE_DISTANCE x 48 px apart, at EYE_HEIGHT x 48 px), giving back
    the crop of the upright photo."""
    turned = tilt(astronaut, 25)
    [face] = detect_faces(turned)
    assert eye_angle(face.landmarks) < -15  # the eyes are tilted in the photo
    centre, side, angle = aligned_square(face, framing="eyes")
    matrix = level_transform(centre, side, angle, 48)
    left, right = (matrix @ np.append(p, 1) for p in eyes(face.landmarks))
    assert left[1] == pytest.approx(right[1]) and left[1] == pytest.approx(EYE_HEIGHT * 48)  # level, at the height
    assert right[0] - left[0] == pytest.approx(EYE_DISTANCE * 48) and (left[0] + right[0]) / 2 == pytest.approx(24)
    [upright_face] = detect_faces(astronaut)
    aligned, upright = align_face(turned, face, framing="eyes"), align_face(astronaut, upright_face, framing="eyes")
    assert aligned.shape == (48, 48) and aligned.dtype == np.uint8
    unaligned = crop_face(turned, face.box)
    # the same face, upright: far closer to the upright photo's crop than the tilted square is
    assert np.abs(aligned.astype(int) - upright).mean() < 0.5 * np.abs(unaligned.astype(int) - upright).mean()
    # framed by the (larger, axis-aligned) box of the tilted head instead: still level
    matrix = level_transform(*aligned_square(face, framing="box"), 48)
    left, right = (matrix @ np.append(p, 1) for p in eyes(face.landmarks))
    assert left[1] == pytest.approx(right[1])


def test_a_level_face_framed_by_its_box_is_the_square_crop(astronaut):
    marks = np.array([[205, 102], [247, 102], [226, 125], [205, 142], [245, 144]], np.float32)  # eyes level
    face = Face((175, 65, 100, 100), 1.0, marks)
    level = align_face(astronaut, face, framing="box", margin=0.1)
    assert np.abs(level.astype(int) - crop_face(astronaut, face.box, margin=0.1)).max() <= 2
    with pytest.raises(ValueError, match="framing must be 'box' or 'eyes'"):
        align_face(astronaut, face, framing="nose")


def test_faces_without_landmarks_are_cropped_around_their_box(astronaut):
    face = Face((175, 65, 100, 100), 1.0)
    np.testing.assert_array_equal(face_crop(astronaut, face), crop_face(astronaut, face.box))
    marked = Face(face.box, 1.0, np.array([[205, 102], [247, 104], [226, 125], [205, 142], [245, 144]], np.float32))
    np.testing.assert_array_equal(face_crop(astronaut, marked, align=False), crop_face(astronaut, face.box))
    np.testing.assert_array_equal(face_crop(astronaut, marked), align_face(astronaut, marked))
    moved = marked.moved(10, -5)
    assert moved.box == (185, 60, 100, 100) and np.allclose(moved.landmarks - marked.landmarks, [10, -5])


def test_small_images_that_are_no_face_are_told_apart_from_a_face(astronaut):
    rng = np.random.default_rng(0)
    assert "blank" in small_image_problem(np.full((30, 30), 128, np.uint8))
    assert "no face" in small_image_problem(rng.integers(0, 256, (64, 64), dtype=np.uint8))
    assert small_image_problem(crop_face(astronaut, ASTRONAUT_FACE)) is None  # a 48x48 face crop


def test_fer2013_faces_taken_whole_are_almost_all_taken_as_faces(real_data):
    """`predict` on FER-2013's own crops: the small-image check must not refuse the dataset's faces
    (on this 1% it refuses only the one blank one, 286 of 287 accepted), and still refuses noise."""
    faces = fu.stratified_subset(real_data.train, 0.01, seed=2).images
    accepted = np.mean([small_image_problem(face) is None for face in faces])
    assert accepted >= 0.99, f"only {accepted:.1%} of {len(faces)} training faces pass the small-image face check"
    rng = np.random.default_rng(1)
    assert all(small_image_problem(rng.integers(0, 256, (s, s), dtype=np.uint8)) for s in (30, 48, 64) for _ in range(5))
    assert all(small_image_problem(np.clip(rng.normal(128, 50, (s, s)), 0, 255).astype(np.uint8)) for s in (30, 48, 64))


def test_neighbour_correlation_tells_noise_from_smooth_images():
    rng = np.random.default_rng(0)
    for side in (30, 48, 64):  # i.i.d. noise: near 0, far below the threshold
        assert abs(neighbour_correlation(rng.integers(0, 256, (side, side), dtype=np.uint8))) < 0.15
    ramp = (np.add.outer(np.arange(48), np.arange(48)) * 2.5).astype(np.uint8)  # a smooth gradient: 1
    assert neighbour_correlation(ramp) == pytest.approx(1.0, abs=0.01)
    checker = (np.indices((48, 48)).sum(0) % 2 * 255).astype(np.uint8)  # every neighbour opposite: -1
    assert neighbour_correlation(checker) == pytest.approx(-1.0)
    stripes = np.tile((np.arange(48) % 2 * 255).astype(np.uint8), (48, 1))  # rows all alike: 1 down, -1 across
    assert neighbour_correlation(stripes) == pytest.approx(0.0)
    assert neighbour_correlation(np.full((10, 10), 7, np.uint8)) == 0.0  # a single grey level: no correlation, no error
    # noise with FER-2013's contrast is refused; a smooth, contrasted, face-free image is taken as a crop
    noise = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    assert noise.std() >= SMALL_FACE_MIN_STD and neighbour_correlation(noise) < SMALL_FACE_MIN_CORRELATION
    assert "no face" in small_image_problem(noise)
    assert small_image_problem(ramp) is None


def test_crop_is_a_48x48_grayscale_square_even_at_the_border(astronaut):
    box = detect_faces(astronaut)[0].box
    crop = crop_face(astronaut, box)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    corner = crop_face(astronaut, (-20, 480, 60, 60))  # half outside: edges repeated
    assert corner.shape == (48, 48) and corner.dtype == np.uint8


def test_crop_margin_widens_the_square_around_the_box():
    assert square_box((100, 50, 40, 40), margin=0.0) == (100, 50, 40, 40)
    assert square_box((100, 50, 40, 40), margin=0.25) == (90, 40, 60, 60)
    assert square_box((100, 50, 20, 40), margin=0.0) == (90, 50, 40, 40)  # square on the longer side
    image = np.zeros((200, 200), np.uint8)
    image[50:90, 100:140] = 255
    assert crop_face(image, (100, 50, 40, 40), margin=0.0).min() == 255
    framed = crop_face(image, (100, 50, 40, 40), margin=0.25)
    assert framed[24, 24] == 255 and framed[0, 0] == 0


def test_whole_image_keeps_a_48x48_face_as_it_is():
    face = np.random.default_rng(0).integers(0, 256, (48, 48), dtype=np.uint8)
    np.testing.assert_array_equal(whole_image(face), face)


def test_exif_orientation_is_honoured(astronaut, tmp_path):
    # stored lying on its side, with the EXIF tag (6: rotate 90 clockwise) that puts it upright
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.rot90(astronaut)).save(path, exif=exif, quality=95)
    assert detect_faces(np.rot90(astronaut), "haar") == []  # the face is not found on its side
    upright = read_image(path)
    assert upright.shape == astronaut.shape
    assert np.abs(upright.astype(int) - astronaut).mean() < 5
    assert len(detect_faces(upright)) == 1


def test_grayscale_and_rgba_images_are_read_as_rgb(tmp_path):
    Image.new("L", (30, 20), 7).save(tmp_path / "gray.png")
    Image.new("RGBA", (30, 20), (1, 2, 3, 4)).save(tmp_path / "rgba.png")
    for name in ("gray.png", "rgba.png"):
        image = read_image(tmp_path / name)
        assert image.shape == (20, 30, 3) and image.dtype == np.uint8


def test_bad_files_raise_one_clear_message(astronaut, tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "notes.jpg").write_text("not an image")
    Image.fromarray(astronaut).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    expected = {"missing.jpg": "no such file", "empty.jpg": "empty file", "notes.jpg": "not an image",
                "truncated.jpg": "truncated or corrupt"}
    for name, message in expected.items():
        with pytest.raises(NotAnImageError, match=message) as err:
            read_image(tmp_path / name)
        assert name in str(err.value) and "\n" not in str(err.value)
