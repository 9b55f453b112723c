"""A synthetic 640x480 video of a moving face, to time and test the real-time pipeline without a camera.

The pictures are scikit-image's bundled samples (no download): the astronaut's head over the coffee photo.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from skimage import data as samples

from .realtime import open_writer

FRAME = (480, 640)  # (height, width) of the benchmark video (and of notebook 06's scenes)


def cover(image: np.ndarray, shape: tuple[int, int] = FRAME) -> np.ndarray:
    """``image`` resized to cover ``shape`` (height, width) and centre-cropped to it."""
    height, width = shape
    scale = max(height / image.shape[0], width / image.shape[1])
    resized = cv2.resize(image, (max(width, round(image.shape[1] * scale)), max(height, round(image.shape[0] * scale))))
    top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
    return resized[top : top + height, left : left + width]


def astronaut_head() -> np.ndarray:
    """The astronaut's head and shoulders from scikit-image's ``astronaut`` photo, (260, 240, 3) RGB uint8."""
    return samples.astronaut()[10:270, 110:350]


def moving_face_video(path: str | os.PathLike, frames: int = 150, fps: float = 30.0, period: int = 150,
                      shape: tuple[int, int] = FRAME, head_height: int = 240) -> Path:
    """Write an mp4 (mp4v) of the astronaut's head gliding over the coffee photo, ``shape`` (height,
    width): a figure of eight across the frame every ``period`` frames."""
    height, width = shape
    background = cover(samples.coffee(), shape)
    head = astronaut_head()
    head = cv2.resize(head, (round(head.shape[1] * head_height / head.shape[0]), head_height))
    writer = open_writer(path, fps, (width, height))
    try:
        for t in 2 * np.pi * np.arange(frames) / period:
            frame = background.copy()
            x = round((width - head.shape[1]) * (0.5 + 0.5 * np.sin(t)))
            y = round((height - head.shape[0]) * (0.5 + 0.5 * np.sin(2 * t) / 2))
            frame[y : y + head.shape[0], x : x + head.shape[1]] = head
            writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    finally:
        writer.release()
    return Path(path)
