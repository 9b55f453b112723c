"""Emotions in image files: every face found, or the whole image when it is already a face crop."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from .config import WHOLE_MAX_SIDE
from .faces import Face, NotAnImageError, read_image, small_image_problem, whole_image
from .realtime import EmotionPipeline, FacePrediction, annotate
from .storage import atomic_write

# Images this small (FER-2013's own crops are 48x48) are taken as one face without detection.


@dataclass
class ImageResult:
    """What one input gave: its faces (box, score, probabilities), or an error message."""

    path: str
    faces: list[FacePrediction] = field(default_factory=list)
    whole: bool = False  # the whole image was classified as one face
    error: str | None = None
    no_face: str | None = None  # why no face was found, when it is more than "none was detected"
    annotated: str | None = None  # where the annotated copy was written

    def lines(self, top: int = 3) -> list[str]:
        """The human-readable report: one line per face, or one saying there is none."""
        if self.error:
            return [f"error: {self.error}"]
        if not self.faces:
            return [f"{self.path}: {self.no_face or 'no face found'} (--whole classifies the whole image as one face)"]
        out = []
        for i, face in enumerate(self.faces, 1):
            emotions = ", ".join(f"{c} {p:.1%}" for c, p in face.top(top))
            where = "whole image" if self.whole else "face {} at x={} y={} w={} h={} (score {:.1f})".format(i, *face.box, face.score)
            out.append(f"{self.path}: {where}: {emotions}")
        return out

    def to_dict(self) -> dict:
        return {
            "path": self.path, "whole": self.whole, "error": self.error, "no_face": self.no_face,
            "annotated": self.annotated,
            "faces": [{"box": list(f.box), "score": f.score, "emotion": f.emotion,
                       "probabilities": dict(f.top(len(f.probabilities)))} for f in self.faces],
        }


class NoImagesError(FileNotFoundError):
    """The inputs name no file at all (an empty folder, say)."""


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """The paths, with each folder replaced by the files inside it (recursively, sorted, no hidden ones).

    Raises NoImagesError when that leaves nothing to read."""
    out, paths = [], list(map(Path, paths))
    for path in paths:
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and not any(s.startswith(".") for s in p.relative_to(path).parts))
        else:
            out.append(path)
    if not out:
        raise NoImagesError(f"no image found in {', '.join(map(str, paths)) or 'the arguments'}: "
                            "give image files or folders that hold some")
    return out


def find_faces(image: np.ndarray, pipeline: EmotionPipeline,
               whole: bool | None = None) -> tuple[list[Face], np.ndarray, bool, str | None]:
    """The faces ``predict`` classifies in an (H, W, 3) RGB uint8 image: their boxes, their (N, 48, 48) uint8
    crops, whether the image was taken whole, and why it has no face when that is more than "none was detected".

    ``whole`` None decides by size: images of at most WHOLE_MAX_SIDE pixels are taken as one face,
    once checked to look like one (not blank, not noise); True takes the image whatever it holds.
    """
    small = max(image.shape[:2]) <= WHOLE_MAX_SIDE
    if whole is False or (whole is None and not small):
        faces = pipeline.photo_faces(image)
        return faces, pipeline.crops(image, faces), False, None
    if whole is None and (problem := small_image_problem(image)):
        return [], pipeline.crops(image, []), True, problem
    height, width = image.shape[:2]
    return [Face((0, 0, width, height), None)], whole_image(image)[None], True, None


def predict_image(image: np.ndarray, pipeline: EmotionPipeline,
                  whole: bool | None = None) -> tuple[list[FacePrediction], bool, str | None]:
    """The faces of an (H, W, 3) RGB uint8 image with their emotions (``find_faces``), whether it was
    classified whole, and why it has no face when that is more than "none was detected"."""
    faces, crops, used_whole, problem = find_faces(image, pipeline, whole)
    return pipeline.classify(image, faces, crops), used_whole, problem


def predict_paths(paths: Iterable[str | os.PathLike], pipeline: EmotionPipeline, whole: bool | None = None,
                  annotate_dir: str | os.PathLike | None = None) -> Iterator[ImageResult]:
    """One ImageResult per input file (folders expanded); unreadable files give a result with an error."""
    written = set()
    for path in expand_inputs(paths):
        try:
            image = read_image(path)
        except NotAnImageError as err:
            yield ImageResult(str(path), error=str(err))
            continue
        faces, used_whole, no_face = predict_image(image, pipeline, whole)
        result = ImageResult(str(path), faces, used_whole, no_face=no_face)
        if annotate_dir is not None:
            target = Path(annotate_dir) / f"{path.stem}_emotions.png"
            n = 2
            while target in written:
                target, n = Path(annotate_dir) / f"{path.stem}_emotions_{n}.png", n + 1
            drawn = Image.fromarray(annotate(image, faces))
            atomic_write(target, lambda f, drawn=drawn: drawn.save(f, format="PNG"))
            written.add(target)
            result.annotated = str(target)
        yield result
