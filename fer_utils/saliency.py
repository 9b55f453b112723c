"""Grad-CAM saliency maps, through the maintained pytorch-grad-cam library."""

from __future__ import annotations

import math

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


def overview_figure(images: np.ndarray, maps: np.ndarray, titles: list[str], columns: int = 7):
    """Faces, each above its Grad-CAM map, ``columns`` faces a row: a ``matplotlib.figure.Figure`` (not
    pyplot's; show it with ``display(fig)``) sized to be read at a notebook's page width: 9.2 inches wide
    for 7 columns (920 pixels at its 100 dpi, shown unscaled in most notebook windows), 12-point titles.
    images (N, 48, 48) uint8; maps (N, 48, 48) in [0, 1]; titles: one per face (two short lines fit:
    ``"surprise\\n98%"``)."""
    from matplotlib.figure import Figure

    rows = math.ceil(len(images) / columns)
    fig = Figure(figsize=(1.2 * columns + 0.8, 3.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(2 * rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for k, (image, cam, title) in enumerate(zip(images, maps, titles, strict=True)):
        face, overlay = axes[2 * (k // columns), k % columns], axes[2 * (k // columns) + 1, k % columns]
        face.imshow(image, cmap="gray", vmin=0, vmax=255)
        face.set_title(title, fontsize=12)
        overlay.imshow(image, cmap="gray", vmin=0, vmax=255)
        heat = overlay.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
    bar = fig.colorbar(heat, ax=axes, fraction=0.03, shrink=0.8)
    bar.set_label("Grad-CAM", fontsize=12)
    bar.ax.tick_params(labelsize=11)
    fig.suptitle("Each face (class, confidence) above the Grad-CAM map of its predicted class", fontsize=13)
    return fig
