"""Augmentation policies that transform a whole batch at once, with a fresh draw for every image.

torchvision.transforms.v2 draws one set of random parameters per call, so a batch passed to
``v2.RandomHorizontalFlip`` is flipped all together or not at all. These modules draw per image
and do the work as a few batched tensor ops (``affine_grid``/``grid_sample`` for rotations and
shifts), which is what lets training keep the whole dataset in memory as one tensor. The tests
check each op against torchvision's own ``v2.functional`` for the same parameters.

A policy is named by its parts joined with '+': 'none', 'hflip', 'rotate', 'shift', 'erase',
e.g. 'hflip+shift' or 'all' (every part). Inputs and outputs are (B, C, H, W) float tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RandomHFlip(nn.Module):
    """Mirror each image left-right with probability ``p``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = p

    def extra_repr(self) -> str:
        return f"p={self.p}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flip = torch.rand(x.shape[0], device=x.device) < self.p
        return torch.where(flip[:, None, None, None], x.flip(-1), x)


def affine(x: torch.Tensor, angle: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Rotate each image counter-clockwise by ``angle[i]`` degrees, scale it by ``scale[i]`` and
    shift it by ``shift[i] = (dx, dy)`` (fractions of its width and height), about its centre.

    x: (B, C, H, W); angle, scale: (B,); shift: (B, 2). Uncovered pixels repeat the border.
    """
    rad = angle * math.pi / 180
    # affine_grid maps each output pixel (coordinates in [-1, 1]) to where it reads the input:
    # the inverse of the wanted transform.
    cos, sin = torch.cos(rad) / scale, torch.sin(rad) / scale
    dx, dy = -2 * shift[:, 0], -2 * shift[:, 1]
    theta = torch.stack(
        [torch.stack([cos, -sin, cos * dx - sin * dy], 1), torch.stack([sin, cos, sin * dx + cos * dy], 1)], 1
    )
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


class RandomAffine(nn.Module):
    """Rotate each image by up to ``degrees``, shift it by up to ``translate`` of its size and
    scale it within ``scale``, all drawn per image."""

    def __init__(self, degrees: float = 0.0, translate: float = 0.0, scale: tuple[float, float] = (1.0, 1.0)):
        super().__init__()
        self.degrees, self.translate, self.scale = degrees, translate, scale

    def extra_repr(self) -> str:
        return f"degrees=±{self.degrees}, translate=±{self.translate:.0%}, scale={self.scale}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, device = x.shape[0], x.device

        def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return torch.rand(n, *shape, device=device) * (hi - lo) + lo

        return affine(
            x,
            angle=uniform(-self.degrees, self.degrees),
            shift=uniform(-self.translate, self.translate, 2),
            scale=uniform(*self.scale),
        )


class RandomErase(nn.Module):
    """With probability ``p``, blank a random rectangle covering ``area`` of each image (to 0)."""

    def __init__(self, p: float = 0.5, area: tuple[float, float] = (0.02, 0.2), ratio: tuple[float, float] = (0.3, 3.3)):
        super().__init__()
        self.p, self.area, self.ratio = p, area, ratio

    def extra_repr(self) -> str:
        return f"p={self.p}, area={self.area[0]:.0%}-{self.area[1]:.0%} of the image, aspect ratio={self.ratio}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        device = x.device
        area = (torch.rand(n, device=device) * (self.area[1] - self.area[0]) + self.area[0]) * h * w
        log_ratio = torch.rand(n, device=device) * math.log(self.ratio[1] / self.ratio[0]) + math.log(self.ratio[0])
        ratio = torch.exp(log_ratio)
        eh = torch.sqrt(area * ratio).clamp(1, h).floor()
        ew = torch.sqrt(area / ratio).clamp(1, w).floor()
        top = (torch.rand(n, device=device) * (h - eh + 1)).floor()
        left = (torch.rand(n, device=device) * (w - ew + 1)).floor()
        rows = torch.arange(h, device=device)[None, :, None]
        cols = torch.arange(w, device=device)[None, None, :]
        inside = (
            (rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
            & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None])
        )
        erase = inside & (torch.rand(n, device=device) < self.p)[:, None, None]
        return x.masked_fill(erase[:, None], 0.0)


class RandomCrop(nn.Module):
    """A random ``size`` x ``size`` window of each image, its corner drawn per image: (B, C, H, W) -> (B, C, size, size)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def extra_repr(self) -> str:
        return f"size={self.size}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        top = torch.randint(0, h - self.size + 1, (n,), device=x.device)
        left = torch.randint(0, w - self.size + 1, (n,), device=x.device)
        steps = torch.arange(self.size, device=x.device)
        rows = (top[:, None] + steps)[:, None, :, None]  # (B, 1, size, 1)
        cols = (left[:, None] + steps)[:, None, None, :]  # (B, 1, 1, size)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        return x[batch, channel, rows, cols]


PARTS = {
    "hflip": lambda: RandomHFlip(0.5),
    "rotate": lambda: RandomAffine(degrees=15),
    "shift": lambda: RandomAffine(translate=0.1, scale=(0.9, 1.1)),
    "erase": lambda: RandomErase(0.5),
}


def make_augment(policy: str = "none") -> nn.Module:
    """The batch augmentation for a policy name such as 'hflip+shift' (see the module docstring)."""
    if policy == "none":
        return nn.Identity()
    names = list(PARTS) if policy == "all" else policy.split("+")
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown augmentation {unknown} in {policy!r}; parts are {sorted(PARTS)}, joined by '+', or 'all'/'none'")
    # Geometric ops first, erasing last, as in the usual torchvision order.
    names.sort(key=list(PARTS).index)
    return nn.Sequential(*(PARTS[n]() for n in names))
