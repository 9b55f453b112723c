"""Fine-tune a model on your own labelled faces: a folder of ``<emotion>/`` folders of photos.

    python -m fer_utils finetune my_faces/ --out my_model.pt

Every photo goes through ``predict``'s own face pipeline (detect, align, crop; an image of at most
``WHOLE_MAX_SIDE`` pixels is taken whole as one face); a file that is no image, or a photo with no face or
more than one, is listed with one line and skipped. A stratified part of the faces (``FINETUNE_HELD_OUT``, the
recipe's seed) is set aside first and never trained on or used to choose anything: the report compares the
starting model and the fine-tuned one on it (Wilson intervals, McNemar's test on the same faces, the table
per class). The recipe is fixed (``fer_utils.config.FINETUNE_RECIPE``): every layer trains, at a constant rate well below the
shipped model's peak, with flips and shifts, and the epoch is chosen on an inner validation part
(``FINETUNE_VALIDATION`` of the rest) with early stopping. The faces of a folder that a camera widget in
collect mode (``fer_utils.camera``) filled are 48x48 crops, taken whole.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split
from tqdm.auto import tqdm

from .checkpoints import DEFAULT_MODEL, load_model, save_model
from .config import (
    CLASSES,
    FINETUNE_HELD_OUT,
    FINETUNE_MIN_FACES,
    FINETUNE_RECIPE,
    FINETUNE_VALIDATION,
)
from .data import Split
from .evaluate import per_class_table, predict_proba
from .faces import NotAnImageError, read_image
from .predict import find_faces
from .stats import accuracy_with_interval, mcnemar
from .storage import file_sha256, load_json, save_json, sha256
from .train import fit

TTA = "flip"  # the report scores faces as `predict` answers a photo: with the mirrored face averaged in


class FinetuneError(ValueError):
    """The folder cannot be fine-tuned on as it is; the message says what to do."""


@dataclass
class LabelledFaces:
    """The faces read from a folder: ``faces`` (N, 48, 48) uint8, ``labels`` (N,) class indices, the file of
    each, and the files skipped with why."""

    faces: np.ndarray
    labels: np.ndarray
    paths: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {CLASSES[i]: int((self.labels == i).sum()) for i in np.unique(self.labels)}

    def split(self, index) -> Split:
        index = np.asarray(index)
        return Split(self.faces[index], self.labels[index], np.full(len(index), "own"), np.asarray(self.paths)[index])


def emotion_folders(folder: str | os.PathLike) -> dict[str, Path]:
    """The ``<emotion>/`` folders of ``folder`` by emotion; hidden entries (a collect mode's ``.frames/``) are
    ignored. Raises FinetuneError for a missing folder, one with no emotion folder, or a folder named otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FinetuneError(f"{folder} is not a folder: give a folder that holds one folder per emotion "
                            f"({', '.join(CLASSES)}) of photos")
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    unknown = [p.name for p in entries if p.is_dir() and p.name not in CLASSES]
    if unknown:
        raise FinetuneError(f"{folder}: {', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not an emotion; "
                            f"name each folder after one of {', '.join(CLASSES)}")
    folders = {p.name: p for p in entries if p.is_dir()}
    if len(folders) < 2:
        found = f"only {next(iter(folders))}/" if folders else "no emotion folder"
        raise FinetuneError(f"{folder} has {found}: fine-tuning needs photos of at least two emotions, in folders "
                            f"named after them ({', '.join(CLASSES)})")
    return {name: folders[name] for name in CLASSES if name in folders}


def read_faces(folder: str | os.PathLike, pipeline, progress: bool = True, on_skip=None) -> LabelledFaces:
    """Each photo of each ``<emotion>/`` folder as ``predict`` would see it: one face each, or skipped
    (no image, no face, more than one face; ``on_skip(path, why)`` is called for each as it happens, e.g.
    to print it). Raises FinetuneError when an emotion has fewer than
    ``FINETUNE_MIN_FACES`` usable faces."""
    folders = emotion_folders(folder)
    files = [(emotion, p) for emotion, path in folders.items()
             for p in sorted(path.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    faces, labels, paths = [], [], []
    skipped = [(str(p), "not inside an emotion folder") for p in sorted(Path(folder).iterdir())
               if p.is_file() and not p.name.startswith(".")]
    for item in skipped if on_skip else ():
        on_skip(*item)
    for emotion, path in tqdm(files, desc="faces", unit="photo", disable=not progress):
        try:
            image = read_image(path)
            _, crops, _, problem = find_faces(image, pipeline)
            if len(crops) != 1:
                raise NotAnImageError(problem or ("no face found" if not len(crops) else
                                                  f"{len(crops)} faces: a labelled photo must show one"))
        except NotAnImageError as err:
            skipped.append((str(path), str(err)))
            if on_skip:
                on_skip(*skipped[-1])
            continue
        faces.append(crops[0])
        labels.append(CLASSES.index(emotion))
        paths.append(str(path))
    read = LabelledFaces(np.stack(faces) if faces else np.zeros((0, 48, 48), np.uint8), np.array(labels, np.int64),
                         paths, skipped)
    counts = read.counts()
    few = {emotion: counts.get(emotion, 0) for emotion in folders if counts.get(emotion, 0) < FINETUNE_MIN_FACES}
    if few:
        listed = ", ".join(f"{emotion} {n}" for emotion, n in few.items())
        raise FinetuneError(f"too few usable faces ({listed}): each emotion folder needs at least {FINETUNE_MIN_FACES} "
                            f"(one held out, one to validate on, three to learn from); add photos of one face each, "
                            f"or remove the folder")
    return read


def stratified_part(labels: np.ndarray, index: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``index`` in two, stratified by ``labels[index]``: the rest and ``share`` of it (at least one face per class)."""
    classes = len(np.unique(labels[index]))
    rest, part = train_test_split(index, test_size=max(classes, round(share * len(index))), stratify=labels[index],
                                  random_state=seed)
    return np.sort(rest), np.sort(part)


def split_faces(read: LabelledFaces, seed: int = FINETUNE_RECIPE.seed) -> dict[str, np.ndarray]:
    """Indices of the 'train', 'validation' and 'held out' parts, stratified by emotion: ``FINETUNE_HELD_OUT`` of the
    faces first, then ``FINETUNE_VALIDATION`` of the rest (each part holds every emotion at least once)."""
    rest, held = stratified_part(read.labels, np.arange(len(read.labels)), FINETUNE_HELD_OUT, seed)
    train, val = stratified_part(read.labels, rest, FINETUNE_VALIDATION, seed)
    return {"train": train, "validation": val, "held out": held}


def compare(before: np.ndarray, after: np.ndarray, labels: np.ndarray) -> dict:
    """The two models' predictions (N,) on the same held-out faces: accuracies with Wilson intervals, McNemar's
    test (after against before) and the table per emotion present."""
    present = [CLASSES[i] for i in np.unique(labels)]
    tables = {name: per_class_table(labels, p).loc[[*present, "accuracy", "weighted avg"]]
              for name, p in (("before", before), ("after", after))}
    return {"before": accuracy_with_interval(labels, before), "after": accuracy_with_interval(labels, after),
            "mcnemar": mcnemar(after == labels, before == labels),
            "tables": {name: table.round(4).to_dict(orient="index") for name, table in tables.items()}}


def predicted(model, faces: np.ndarray, tta=TTA) -> np.ndarray:
    """The classes (N,) ``model`` predicts for ``faces`` (N, 48, 48), as the report scores them: with ``tta``, in fp32."""
    return predict_proba(model, faces, tta=tta, precision="fp32").argmax(1)


def run_folder(out: Path) -> Path:
    """Where an unfinished fine-tuning of ``out`` keeps its per-epoch checkpoint: a hidden folder beside it."""
    return out.with_name(f".{out.name}.run")


def finetune(folder: str | os.PathLike, out: str | os.PathLike, pipeline, base: str | os.PathLike | None = None,
             resume: bool = False, progress: bool = True, on_skip=None) -> dict:
    """Fine-tune ``base`` (default: the shipped model) on the faces of ``folder``, save it at ``out`` with its
    metadata, and return the report (also saved as ``out`` with .json). An interrupted run leaves only its
    run folder (``run_folder``), which ``resume=True`` continues."""
    out, base = Path(out), Path(base or DEFAULT_MODEL)
    run_dir = run_folder(out)
    if run_dir.exists() and not resume:
        raise FinetuneError(f"an interrupted fine-tuning of {out} is in {run_dir}: add --resume to continue it, "
                            "or delete that folder to start afresh")
    read = read_faces(folder, pipeline, progress, on_skip)
    parts = split_faces(read)
    faces_digest = sha256(read.faces.tobytes() + read.labels.tobytes())
    made = {"faces_sha256": faces_digest, "base_sha256": file_sha256(base)}
    if run_dir.exists() and load_json(run_dir / "made_from.json") != made:
        raise FinetuneError(f"{run_dir} was started on other faces or another base model: delete it to start afresh")
    run_dir.mkdir(parents=True, exist_ok=True)
    save_json(run_dir / "made_from.json", made)
    model = load_model(base)
    held = read.split(parts["held out"])
    before = predicted(model, held.images)
    result = fit(model, read.split(parts["train"]), read.split(parts["validation"]), FINETUNE_RECIPE, run_dir=run_dir,
                 resume=True, progress=progress)
    after = predicted(result.model, held.images)
    report = {
        "finetuned_from": {"checkpoint": str(base), "sha256": made["base_sha256"]},
        "folder": str(folder), "faces": read.counts(),
        "parts": {name: len(index) for name, index in parts.items()},
        "held_out_files": [read.paths[i] for i in parts["held out"]],
        "skipped": [{"file": path, "why": why} for path, why in read.skipped],
        "recipe": FINETUNE_RECIPE.to_dict() | {"held_out": FINETUNE_HELD_OUT, "inner_validation": FINETUNE_VALIDATION},
        "best_epoch": result.best_epoch, "epochs_run": len(result.history), "train_seconds": result.train_seconds,
        "held_out": compare(before, after, held.labels), "tta": TTA,
        "held_out_predictions": {name: [CLASSES[i] for i in p] for name, p in (("before", before), ("after", after))},
    }
    save_model(out, result.model, finetuned=report)
    save_json(out.with_suffix(".json"), report)
    shutil.rmtree(run_dir)
    return report
