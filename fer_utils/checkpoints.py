"""Saving a trained model with its configuration, and loading it back in one call."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .config import CLASSES
from .models import build_model
from .paths import PROJECT_ROOT, RESULTS_DIR
from .storage import atomic_write, load_json

DEFAULT_MODEL = RESULTS_DIR / "final_model.pt"
# Which shipped model serves photos, fixed when the models were shipped (written by the study that chose
# it: ``fer_utils.course.ensemble.ship``): {"photos": path relative to the project, "why": ...}.
SHIPPED_MANIFEST = RESULTS_DIR / "shipped_models.json"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit its model."""


def model_spec(model: nn.Module) -> dict[str, Any]:
    """The {'name', 'kwargs'} that ``build_model`` used, stored on the model as ``fer_spec``."""
    spec = getattr(model, "fer_spec", None)
    if spec is None:
        raise ValueError("this model was not made by fer_utils.build_model, so it cannot be rebuilt from a checkpoint")
    return spec


def save_torch(path: str | os.PathLike, obj: Any) -> Path:
    """``torch.save`` through an atomic write."""
    return atomic_write(path, lambda f: torch.save(obj, f))


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint dict, turning a truncated or foreign file into a clear error."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train one with `python -m fer_utils train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as err:
        raise CheckpointError(
            f"{path} is truncated or not a PyTorch checkpoint ({err}); delete it and retrain, or fetch it again"
        ) from err
    if not isinstance(ckpt, dict) or "spec" not in ckpt or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a fer_utils model checkpoint (it lacks 'spec' and 'state_dict')")
    return ckpt


def save_model(path: str | os.PathLike, model: nn.Module, half: bool = False, **extra: Any) -> Path:
    """Save weights with the model's spec and the class names, so ``load_model`` can rebuild it.

    ``half``: store floating-point weights as float16, half the file (``load_model`` reads them back
    into the model's float32; the stored weights are the model, so evaluate it after loading it).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    return save_torch(path, {"spec": model_spec(model), "state_dict": state, "classes": list(CLASSES), **extra})


def build_from_spec(spec: dict[str, Any]) -> nn.Module:
    return build_model(spec["name"], **spec.get("kwargs", {}))


def load_state(model: nn.Module, state_dict: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise CheckpointError(
            f"the weights in {source} do not match the architecture {model_spec(model)}: {' '.join(first)}"
        ) from err


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a saved model in eval mode; with no path, the shipped final model."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    ckpt = read_checkpoint(path)
    model = build_from_spec(ckpt["spec"])
    load_state(model, ckpt["state_dict"], path)
    return model.to(device).eval()


def photo_checkpoint(manifest: str | os.PathLike | None = None) -> Path:
    """The model ``predict`` uses for photos: the one the shipped ``manifest`` (default
    ``SHIPPED_MANIFEST``) names, where both exist, else the shipped single model ``DEFAULT_MODEL``."""
    manifest = Path(manifest or SHIPPED_MANIFEST)
    if not manifest.exists():
        return DEFAULT_MODEL
    chosen = PROJECT_ROOT / load_json(manifest)["photos"]
    return chosen if chosen.exists() else DEFAULT_MODEL
