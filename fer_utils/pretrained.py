"""Pretrained weights, found offline: MTCNN's ONet (a face detector's last stage, trained on faces)
and torchvision's ImageNet ResNet-18.

Nothing here downloads at run time. ONet's weights (``onet.pt``, 1.5 MB) ship inside the
``facenet-pytorch`` 2.6.0 wheel on PyPI: ``python -m fer_utils fetch-weights`` (run by ``make
install``) takes the wheel without its dependencies (it pins an old torch and numpy < 2), reads
the file out of it, checks its SHA-256 and keeps it under ``data/weights/`` (ignored by git, like
the dataset). ImageNet weights are used only when they already are in torch's cache.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch

from .paths import DATA_DIR
from .storage import atomic_write, file_sha256, sha256

WEIGHTS_ENV = "FER_WEIGHTS_DIR"
ONET_WHEEL = "facenet-pytorch==2.6.0"
ONET_MEMBER = "facenet_pytorch/data/onet.pt"
ONET_SHA256 = "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d"
FETCH_COMMAND = "python -m fer_utils fetch-weights"
# torchvision's ResNet18_Weights.IMAGENET1K_V1, as torch.hub caches it.
IMAGENET_RESNET18_FILE = "resnet18-f37072fd.pth"


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights that are not on this machine (nothing is downloaded at run time)."""


def weights_dir() -> Path:
    """Where fetched weights live: ``$FER_WEIGHTS_DIR`` if set, else data/weights/."""
    return Path(os.environ.get(WEIGHTS_ENV) or DATA_DIR / "weights")


def onet_path() -> Path:
    return weights_dir() / "onet.pt"


def extract_onet(wheel: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Read ``onet.pt`` out of a facenet-pytorch wheel, check its SHA-256 and write it atomically."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(ONET_MEMBER)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise ValueError(f"{wheel} is not a facenet-pytorch wheel holding {ONET_MEMBER}: {err}") from err
    if sha256(data) != ONET_SHA256:
        raise ValueError(f"{ONET_MEMBER} in {wheel} has SHA-256 {sha256(data)}, expected {ONET_SHA256}")
    return atomic_write(out or onet_path(), lambda f: f.write(data))


def fetch_onet(wheel: str | os.PathLike | None = None) -> Path:
    """ONet's weights under ``weights_dir()``: kept if already there and intact, else taken from
    ``wheel`` or from ``pip download --no-deps facenet-pytorch==2.6.0`` (the package registry)."""
    path = onet_path()
    if path.is_file() and file_sha256(path) == ONET_SHA256:
        return path
    if wheel is not None:
        return extract_onet(wheel, path)
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", ONET_WHEEL,
                               "--dest", tmp], capture_output=True, text=True)
        wheels = list(Path(tmp).glob("*.whl"))
        if done.returncode or not wheels:
            raise WeightsNotFoundError(
                f"could not download {ONET_WHEEL} from the package registry ({done.stderr.strip()[-300:]}); "
                f"download the wheel elsewhere and run `{FETCH_COMMAND} --wheel FILE.whl`")
        return extract_onet(wheels[0], path)


def load_onet_state() -> dict[str, torch.Tensor]:
    """ONet's pretrained state dict (facenet-pytorch's parameter names), checked against its SHA-256."""
    path = onet_path()
    if not path.is_file():
        raise WeightsNotFoundError(f"ONet's pretrained weights are not at {path}; fetch them with `{FETCH_COMMAND}` "
                                   f"(or `make install`), or set ${WEIGHTS_ENV} to the folder that holds onet.pt")
    data = path.read_bytes()
    if sha256(data) != ONET_SHA256:
        raise ValueError(f"{path} is not facenet-pytorch 2.6.0's onet.pt (SHA-256 differs); "
                         f"delete it and run `{FETCH_COMMAND}`")
    return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)  # the bytes just checked


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
