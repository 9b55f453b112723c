"""Grad-CAM saliency maps, through the maintained pytorch-grad-cam library."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_grad_cam import GradCAM
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget
from torch import nn

from .inputs import to_model_input


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


def distinct_confident_examples(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, per_class: int = 2,
                                allowed: np.ndarray | None = None, min_distance: int = 10) -> np.ndarray:
    """Indices of the most confident correct predictions, ``per_class`` per class, for showing saliency maps.

    Only images in ``allowed`` (a boolean mask, e.g. the test images without a twin in training) are
    considered, and no two chosen images look alike: their 64-bit perceptual hashes differ in more
    than ``min_distance`` bits, so a near-copy of a face is not shown twice.
    """
    import imagehash
    from PIL import Image

    pred = probs.argmax(1)
    allowed = np.ones(len(labels), bool) if allowed is None else np.asarray(allowed, bool)
    chosen, hashes = [], []
    for k in range(probs.shape[1]):
        candidates = np.flatnonzero((labels == k) & (pred == k) & allowed)
        for i in candidates[np.argsort(-probs[candidates, k], kind="stable")]:
            h = imagehash.phash(Image.fromarray(images[i]))
            if all(h - other > min_distance for other in hashes):
                chosen.append(int(i))
                hashes.append(h)
            if np.sum(labels[chosen] == k) == per_class:
                break
    return np.asarray(chosen, dtype=int)
