"""Grad-CAM saliency maps, through the maintained pytorch-grad-cam library."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from .data import to_model_input


def default_target_layer(model: nn.Module) -> nn.Module:
    """The last convolutional stage: ``features[-1]`` for our CNNs, ``layer4[-1]`` for ResNet-18."""
    if hasattr(model, "layer4"):
        return model.layer4[-1]
    features = getattr(model, "features", None)
    if features is None or not any(isinstance(m, nn.Conv2d) for m in features.modules()):
        raise ValueError(f"{type(model).__name__} has no convolutional layers: Grad-CAM needs a CNN")
    return features[-1]


def grad_cam(model: nn.Module, images: np.ndarray, classes: np.ndarray | list[int]) -> np.ndarray:
    """Grad-CAM of ``classes[i]`` for ``images[i]``: (N, 48, 48) uint8 -> (N, 48, 48) float in [0, 1]."""
    model = model.float().eval()
    device = next(model.parameters()).device
    x = to_model_input(torch.as_tensor(np.ascontiguousarray(images))).to(device)
    with GradCAM(model=model, target_layers=[default_target_layer(model)]) as cam:
        maps = cam(input_tensor=x, targets=[ClassifierOutputTarget(int(c)) for c in classes])
    return np.asarray(maps, dtype=np.float32)
