"""Reading photos, detecting faces and cropping them as FER-2013 did."""

import numpy as np
import pytest
from PIL import Image
from skimage import data as samples

from fer_utils.faces import (
    DEFAULT_MIN_SCORE,
    NotAnImageError,
    crop_face,
    detect_faces,
    read_image,
    square_box,
    whole_image,
)
from fer_utils.scenes import iou

# The astronaut's face in scikit-image's 512x512 photo, by eye: x 175-275, y 65-165.
ASTRONAUT_FACE = (175, 65, 100, 100)


@pytest.fixture(scope="module")
def astronaut():
    return samples.astronaut()


def test_finds_the_astronauts_face_with_a_score(astronaut):
    faces = detect_faces(astronaut)
    assert len(faces) == 1
    assert iou(faces[0].box, ASTRONAUT_FACE) > 0.6
    assert faces[0].score > 0


def test_the_score_threshold_drops_only_weaker_detections(astronaut):
    """Upscaled 10x and searched at 960 px, the astronaut photo gives weak false detections
    besides the face; the default threshold keeps the face and drops detections below it."""
    big = np.asarray(Image.fromarray(astronaut).resize((5120, 5120)))
    every = detect_faces(big, min_score=0)
    kept = detect_faces(big)
    assert {f.box for f in kept} == {f.box for f in every if f.score >= DEFAULT_MIN_SCORE}
    assert len(kept) < len(every)
    assert any(iou(f.box, tuple(10 * v for v in ASTRONAUT_FACE)) > 0.6 for f in kept)


def test_shrinking_for_speed_keeps_boxes_in_the_original_pixels(astronaut):
    full, small = detect_faces(astronaut, max_side=None), detect_faces(astronaut, max_side=256)
    assert len(small) == 1 and iou(small[0].box, full[0].box) > 0.7


@pytest.mark.parametrize("image", [
    samples.coffee(),
    samples.chelsea(),  # a cat: not a human frontal face
    np.tile(np.linspace(0, 255, 640).astype(np.uint8), (480, 1)),
], ids=["coffee", "cat", "gradient"])
def test_no_face_in_face_free_images(image):
    assert detect_faces(image) == []


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
    assert detect_faces(np.rot90(astronaut)) == []  # the face is not found on its side
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
