"""What a model takes in: a batch of gray faces as (B, 1, 48, 48) floats, normalised.

The data module loads images as (N, 48, 48) uint8 arrays; ``to_model_input`` turns a batch of them
into what every model of the course (and the exported ONNX graph) expects. Kept apart from both the
data and the models so that neither needs the other.
"""

from __future__ import annotations

import torch

# Pixel statistics used to normalise inputs (FER-2013 training set: mean 0.508, std 0.255).
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25


def to_model_input(images: torch.Tensor) -> torch.Tensor:
    """(B, 48, 48) uint8 -> (B, 1, 48, 48) float, scaled to [0, 1] and normalised."""
    x = images.unsqueeze(1) if images.dim() == 3 else images
    return (x.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD
