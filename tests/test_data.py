import zipfile

import numpy as np
import pytest

import fer_utils as fu
from fer_utils.data import DatasetFormatError
from fer_utils.paths import PROJECT_ROOT, DatasetNotFoundError, project_relative

from .conftest import TEST_PER_CLASS, TRAIN_PER_CLASS, synthetic_members, write_tree, write_zip


def test_zip_and_folder_layouts_load_the_same(synthetic_zip, synthetic_tree):
    a, b = fu.load_fer2013(synthetic_zip), fu.load_fer2013(synthetic_tree)
    for split in ("train", "test"):
        sa, sb = getattr(a, split), getattr(b, split)
        np.testing.assert_array_equal(sa.images, sb.images)
        np.testing.assert_array_equal(sa.labels, sb.labels)
        np.testing.assert_array_equal(sa.paths, sb.paths)


def test_a_kagglehub_folder_with_one_level_above_train_and_test_loads(tmp_path):
    root = write_tree(tmp_path / "versions" / "1", synthetic_members())
    assert len(fu.load_fer2013(root.parent).train) == 7 * TRAIN_PER_CLASS


def test_shapes_labels_sources_and_paths(synthetic):
    train, test = synthetic.train, synthetic.test
    assert train.images.shape == (7 * TRAIN_PER_CLASS, 48, 48) and train.images.dtype == np.uint8
    assert test.images.shape == (7 * TEST_PER_CLASS, 48, 48)
    assert train.class_counts() == dict.fromkeys(fu.CLASSES, TRAIN_PER_CLASS)
    assert set(train.sources) == {"Training"}
    assert sorted(set(test.sources)) == ["PrivateTest", "PublicTest"]
    assert all(p.startswith(f"train/{fu.CLASSES[y]}/") for p, y in zip(train.paths, train.labels, strict=True))


def test_dataset_location_precedence(synthetic_zip, synthetic_tree, monkeypatch):
    monkeypatch.setenv("FER2013_PATH", str(synthetic_tree))
    assert fu.find_dataset() == synthetic_tree.resolve()
    assert fu.find_dataset(synthetic_zip) == synthetic_zip.resolve()  # an argument wins


def test_paths_in_records_are_relative_to_the_project_where_they_can_be(tmp_path):
    assert project_relative(PROJECT_ROOT / "results" / "final_model.pt") == "results/final_model.pt"
    assert project_relative(tmp_path / "model.pt") == str(tmp_path / "model.pt")


def test_missing_dataset_names_the_places_and_the_download_command(tmp_path, monkeypatch):
    monkeypatch.setenv("FER2013_PATH", str(tmp_path / "nowhere.zip"))
    with pytest.raises(DatasetNotFoundError) as err:
        fu.load_fer2013()
    assert "nowhere.zip" in str(err.value) and "python -m fer_utils download" in str(err.value)


def _broken(tmp_path, change):
    members = synthetic_members()
    change(members)
    return write_zip(tmp_path / "broken.zip", members)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update({"train/bored/Training_1.jpg": m["train/happy/Training_30000.jpg"]}), "unknown class folder 'bored'"),
        (lambda m: m.update({"train/happy/Training_9.jpg": b"not a jpeg"}), "'train/happy/Training_9.jpg' does not decode"),
        (lambda m: [m.pop(k) for k in list(m) if k.startswith("test/")], "'test' split is missing"),
        (lambda m: m.update({"valid/happy/Training_1.jpg": m["train/happy/Training_30000.jpg"]}), "unknown split folder 'valid'"),
        (lambda m: m.update({"train/happy/Photo_1.jpg": m["train/happy/Training_30000.jpg"]}), "cannot tell the source"),
    ],
)
def test_bad_archives_get_errors_naming_the_offending_path(tmp_path, change, message):
    with pytest.raises(DatasetFormatError, match=message):
        fu.load_fer2013(_broken(tmp_path, change))


@pytest.mark.parametrize(("size", "mode"), [((64, 64), "L"), ((48, 48), "RGB")])
def test_images_that_are_not_48x48_grayscale_are_rejected(tmp_path, size, mode):
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size).save(buf, format="PNG")
    path = _broken(tmp_path, lambda m: m.update({"train/sad/Training_7.png": buf.getvalue()}))
    with pytest.raises(DatasetFormatError, match=r"'train/sad/Training_7.png' is .*48x48 grayscale"):
        fu.load_fer2013(path)


def test_a_file_that_is_not_a_zip_gets_a_clear_error(tmp_path):
    path = tmp_path / "fer2013.zip"
    path.write_text("hello")
    with pytest.raises(DatasetFormatError, match="not a zip archive"):
        fu.load_fer2013(path)


def test_train_val_split_is_stratified_seeded_and_disjoint(synthetic):
    train, val = fu.train_val_split(synthetic.train, 0.3, seed=1)
    assert len(train) + len(val) == len(synthetic.train)
    assert not set(train.paths) & set(val.paths)
    assert val.class_counts() == dict.fromkeys(fu.CLASSES, 12)  # 30% of 40 per class
    again, _ = fu.train_val_split(synthetic.train, 0.3, seed=1)
    np.testing.assert_array_equal(train.paths, again.paths)
    other, _ = fu.train_val_split(synthetic.train, 0.3, seed=2)
    assert list(other.paths) != list(train.paths)
    with pytest.raises(ValueError, match="between 0 and 1"):
        fu.train_val_split(synthetic.train, 1.5)


def test_stratified_subset_keeps_every_class(synthetic):
    sub = fu.stratified_subset(synthetic.train, 0.1, seed=0)
    assert sub.class_counts() == dict.fromkeys(fu.CLASSES, 4)


@pytest.mark.realdata
def test_real_dataset_counts(real_data):
    assert len(real_data.train) == 28_709 and len(real_data.test) == 7_178
    assert (real_data.test.sources == "PublicTest").sum() == 3_589
    assert (real_data.test.sources == "PrivateTest").sum() == 3_589
    assert real_data.train.class_counts() == {
        "angry": 3995, "disgust": 436, "fear": 4097, "happy": 7215, "neutral": 4965, "sad": 4830, "surprise": 3171,
    }
    assert real_data.test.class_counts() == {
        "angry": 958, "disgust": 111, "fear": 1024, "happy": 1774, "neutral": 1233, "sad": 1247, "surprise": 831,
    }
    # Two file names occur under two classes: an image is identified by its path, which is unique.
    assert len(set(real_data.train.paths)) == 28_709


@pytest.mark.realdata
def test_real_split_is_70_30_and_stratified(real_data):
    train, val = fu.train_val_split(real_data.train)
    assert len(val) == round(0.3 * 28_709)
    for cls, n in real_data.train.class_counts().items():
        assert abs(val.class_counts()[cls] - 0.3 * n) <= 1


def test_zipfile_is_read_in_place(synthetic_zip):
    # the loader never unpacks: the archive stays the only file in its folder
    fu.load_fer2013(synthetic_zip)
    assert [p.name for p in synthetic_zip.parent.iterdir()] == ["fer2013.zip"]
    assert zipfile.is_zipfile(synthetic_zip)
