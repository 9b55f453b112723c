"""Notebook 09: your own faces. How the FER-2013 model fares on faces from another camera, and what a few
labelled faces of that camera buy when the model is fine-tuned on them (``fer_utils.finetune``'s fixed recipe).

No package on a registry ships real emotion-labelled face photos that may be used here (the one candidate,
EmoPy 0.0.5 on PyPI, carries 101 frames of the CK+ lab database, mostly neutral onsets, under CK+'s research-only,
no-redistribution terms), so the study measures on a **stand-in**: real FER-2013 faces seen through another
camera, ``ANOTHER_CAMERA``, a fixed synthetic transform (``through_camera``) chosen before anything was measured
and not tuned since. The faces are the deduplicated validation split of the fitting split (the distillation
study's teacher config, ``FACES``), and the model is that study's fitting-split teachers' ensemble (``MODEL``),
which never saw them; the shipped model (trained on every training image, these included) and the test faces are
not used.

The study (``measure``, stored as results/own_faces.json by ``study``):

* **the shift**: the model on the clean faces and on the same faces through the camera: accuracies with Wilson
  intervals, McNemar's test on the same faces (one model, no seed: the test alone decides), recall per class;
* **the curve**: the shifted faces split once (stratified, ``SPLIT_SEED``) into a labelled pool and a fixed
  evaluation part (``EVALUATION_FACES``); for each k of ``K_VALUES`` and each of ``SEEDS``, k faces per class drawn
  from the pool (``draw_labelled``: the seed's draw, nested, so that the 10 faces hold the 5) fine-tune the model
  with ``FINETUNE_RECIPE`` at that seed, its epoch chosen on an inner validation part of the k faces
  (``inner_split``, as ``fer_utils.finetune.split_faces`` sets its validation part aside), and are scored on the
  evaluation part, shifted and clean (the clean score measures forgetting). k = 0 is the model as it is;
* **the verdicts** (``curve_rows``): each k against k = 0 by McNemar's test per seed on the same faces and the
  mean over seeds against the seed spread (one run's sd pooled over the k values, ``fer_utils.stats.seed_sd``;
  k = 0 is one fixed model, so the yardstick of a mean of n seeds against it is 2 sd / sqrt(n)); *holds* needs
  every seed's p < 0.05 and the mean beyond it (``fer_utils.course.verdicts.seeded_gain``).
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
from sklearn.model_selection import train_test_split

from ..checkpoints import load_model
from ..config import CLASSES, FINETUNE_RECIPE, FINETUNE_VALIDATION, TrainConfig
from ..data import Split
from ..evaluate import per_class_table
from ..experiments import split_data
from ..finetune import TTA, predicted, stratified_part
from ..paths import RESULTS_DIR, project_relative
from ..runtime import fast_mode
from ..stats import accuracy_with_interval, difference_threshold, mcnemar, seed_sd
from ..storage import file_sha256, load_json
from ..train import fit
from . import distillation
from .records import cached
from .verdicts import seeded_gain, verdict

RECORD_NAME = "own_faces"  # results/<name>.json (results/fast/ in fast mode)
MODEL = distillation.FITTING_TEACHER  # the fitting-split teachers' ensemble: it never saw the validation faces
K_VALUES = (5, 10, 20, 50)  # labelled faces per class
SEEDS = (0, 1, 2)  # each seed draws the k faces and seeds the fine-tuning
EVALUATION_FACES = 3000  # the fixed evaluation part of the shifted validation faces
SPLIT_SEED = 0  # the one pool/evaluation split
FAST = {"k": [2], "seeds": [0], "evaluation_faces": 60}  # fast mode (CI): a tiny version of the study


def faces_config():
    """The config whose validation split the study's faces are: the distillation study's teachers' (the fitting
    split, 30% held out for validation, deduplicated against the fitting part)."""
    return distillation.grid()[distillation.teacher_label(distillation.SEEDS[0])]


@dataclasses.dataclass(frozen=True)
class Camera:
    """A camera worse than the ones FER-2013's faces came from: lower resolution (each face shrunk to ``side``
    pixels and enlarged back), darker mid-tones (``gamma`` > 1 on [0, 1] intensities: an underexposed room) and
    sensor noise (Gaussian, ``noise_sd`` grey levels, drawn for each face from ``seed`` and the face's own pixels,
    so a face looks the same through it whatever batch it comes in)."""

    side: int = 24
    gamma: float = 1.5
    noise_sd: float = 8.0
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        return (f"shrunk to {self.side} px and back, gamma {self.gamma:g} (darker), Gaussian noise of sd "
                f"{self.noise_sd:g} grey levels")


ANOTHER_CAMERA = Camera()  # fixed before anything was measured


def through_camera(faces: np.ndarray, camera: Camera = ANOTHER_CAMERA) -> np.ndarray:
    """(N, 48, 48) uint8 faces as ``camera`` would have taken them: (N, 48, 48) uint8."""
    faces = np.asarray(faces, np.uint8)
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        height, width = face.shape
        small = cv2.resize(face, (camera.side, camera.side), interpolation=cv2.INTER_AREA)
        x = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float64) / 255
        x = 255 * x ** camera.gamma
        rng = np.random.default_rng([camera.seed, zlib.crc32(face.tobytes())])
        out[i] = np.clip(np.rint(x + rng.normal(0, camera.noise_sd, x.shape)), 0, 255).astype(np.uint8)
    return out


def pool_and_evaluation(labels: np.ndarray, evaluation: int = EVALUATION_FACES, seed: int = SPLIT_SEED):
    """(pool, evaluation): indices of ``labels`` split once, stratified by class, ``evaluation`` faces in the second."""
    pool, held = train_test_split(np.arange(len(labels)), test_size=evaluation, stratify=labels, random_state=seed)
    return np.sort(pool), np.sort(held)


def draw_labelled(labels: np.ndarray, pool: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``k`` faces of each class from ``pool`` (indices into ``labels``): the first k of the seed's shuffle of each
    class's pool faces, so a seed's draws are nested (its 10 faces hold its 5). Raises ValueError when a class
    has fewer than k faces in the pool."""
    rng, drawn = np.random.default_rng(seed), []
    for c in np.unique(labels[pool]):
        members = rng.permutation(pool[labels[pool] == c])
        if len(members) < k:
            raise ValueError(f"{CLASSES[c]} has {len(members)} faces in the pool, fewer than k = {k}")
        drawn.append(members[:k])
    return np.sort(np.concatenate(drawn))


def inner_split(labels: np.ndarray, index: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) of the labelled faces ``index``: ``FINETUNE_VALIDATION`` of them (at least one per class)
    set aside, stratified, to choose the epoch, as ``fer_utils.finetune.split_faces`` does for the faces it trains on."""
    return stratified_part(labels, index, FINETUNE_VALIDATION, seed)


def _split(images: np.ndarray, labels: np.ndarray) -> Split:
    return Split(images, labels, np.full(len(labels), "own"), np.array([f"face {i}" for i in range(len(labels))]))


def finetuned(model_path: str | Path, images: np.ndarray, labels: np.ndarray, index: np.ndarray, seed: int,
              recipe: TrainConfig = FINETUNE_RECIPE):
    """The model at ``model_path`` fine-tuned on the faces ``index`` of ``images`` with ``recipe`` at ``seed``
    (its epoch chosen on ``inner_split``'s validation part); returns ``fit``'s result."""
    train, val = inner_split(labels, index, seed)
    return fit(load_model(model_path), _split(images[train], labels[train]), _split(images[val], labels[val]),
               dataclasses.replace(recipe, seed=seed), progress=False)


def encode(classes: np.ndarray) -> str:
    """Class indices (N,) as a string of N digits, how the record keeps each run's predictions: '0314...'."""
    return "".join(map(str, np.asarray(classes, int)))


def decode(digits: str) -> np.ndarray:
    """``encode``'s string back as (N,) int64 class indices."""
    return np.frombuffer(digits.encode(), np.uint8).astype(np.int64) - ord("0")


def shift_findings(labels: np.ndarray, clean: np.ndarray, shifted: np.ndarray) -> dict:
    """One model's predictions on the same faces, clean and through the camera: accuracies with intervals,
    McNemar's test (clean against shifted: a positive difference is what the camera costs), recall per class."""
    recall = {name: per_class_table(labels, p)["recall"] for name, p in (("clean", clean), ("shifted", shifted))}
    test = mcnemar(clean == labels, shifted == labels)
    return {"clean": accuracy_with_interval(labels, clean), "shifted": accuracy_with_interval(labels, shifted),
            "mcnemar": test, "verdict": verdict(test["difference"], p_value=test["p_value"]),
            "recall": {c: {"clean": float(recall["clean"][c]), "shifted": float(recall["shifted"][c]),
                           "faces": int((labels == i).sum())} for i, c in enumerate(CLASSES) if (labels == i).any()}}


def run_label(run: dict) -> str:
    """A run's name in the study: 'k = 0', or 'k = 20, seed 1'."""
    return f"k = {run['k']}" + (f", seed {run['seed']}" if run["k"] else "")


def curve_rows(runs: list[dict], labels: np.ndarray, part: str = "shifted") -> tuple[list[dict], dict]:
    """Each k against k = 0 on the evaluation faces' ``part`` ('shifted', or 'clean': forgetting), from the study's
    ``runs`` (their predictions) and the evaluation faces' ``labels``: the mean accuracy over seeds, its gain over
    k = 0, each seed's McNemar p, the seed spread and the verdict (``fer_utils.course.verdicts.seeded_gain``); with the
    seed noise (one run's sd pooled over the k values). See the module docstring."""
    ks = sorted({r["k"] for r in runs if r["k"]})
    accuracy = {k: [r[part]["accuracy"] for r in runs if r["k"] == k] for k in ks}
    noise = seed_sd(accuracy.values())
    predicted = {run_label(r): decode(r["predictions"][part]) for r in runs}
    rows = []
    for k in ks:
        seeded = [r for r in runs if r["k"] == k]
        threshold = float(difference_threshold(noise.sd, runs=(len(seeded), np.inf)))  # k = 0 has no seed noise
        found = seeded_gain(labels, predicted, {f"seed {r['seed']}": (run_label(r), "k = 0") for r in seeded},
                            threshold)["mean gain"]
        rows.append({"k": k, "seeds": len(seeded), "mean": float(np.mean(accuracy[k])),
                     "sd": float(np.std(accuracy[k], ddof=1)) if len(seeded) > 1 else float("nan"),
                     "min": float(min(accuracy[k])), "max": float(max(accuracy[k])), "gain": found["difference"],
                     "p_values": found["p_values"], "threshold": threshold, "verdict": found["verdict"]})
    return rows, {"sd": noise.sd, "dof": noise.dof}


def settings(fast: bool | None = None) -> dict:
    """Everything the study's record is made with (JSON data: the record is reused while these hold)."""
    fast = fast_mode() if fast is None else fast
    return {"faces": "the deduplicated validation split of the fitting split (distillation teachers' config)",
            "faces_config": faces_config().to_dict(), "model": project_relative(MODEL), "model_sha256": file_sha256(MODEL),
            "camera": ANOTHER_CAMERA.to_dict(), "k": list(K_VALUES), "seeds": list(SEEDS),
            "evaluation_faces": EVALUATION_FACES, "split_seed": SPLIT_SEED, "tta": TTA,
            "recipe": FINETUNE_RECIPE.to_dict(), "inner_validation": FINETUNE_VALIDATION, "fast": fast,
            **(FAST if fast else {})}


def measure(data, s: dict, model_path: str | Path | None = None, progress=print) -> dict:
    """The study (see the module docstring) with the settings ``s`` (``settings()``) on ``data``'s validation faces
    (``split_data`` of the faces' config: a small subset in fast mode); ``progress`` is called with a line per run."""
    model_path = Path(model_path or MODEL)
    began = time.perf_counter()
    faces = split_data(data, faces_config())[1]
    camera = Camera(**s["camera"])
    recipe = TrainConfig(**s["recipe"])
    labels, clean = faces.labels, faces.images
    shifted = through_camera(clean, camera)
    base = load_model(model_path)
    shift = shift_findings(labels, predicted(base, clean, s["tta"]), predicted(base, shifted, s["tta"]))
    pool, evaluation = pool_and_evaluation(labels, s["evaluation_faces"], s["split_seed"])
    y = labels[evaluation]
    base_predictions = {"shifted": predicted(base, shifted[evaluation], s["tta"]),
                        "clean": predicted(base, clean[evaluation], s["tta"])}
    runs = [{"k": 0, "seed": None, **{part: accuracy_with_interval(y, p) for part, p in base_predictions.items()},
             "predictions": {part: encode(p) for part, p in base_predictions.items()}}]
    progress(f"the shift measured on {len(labels):,} faces; k = 0: {runs[0]['shifted']['accuracy']:.2%} on the shifted "
             f"evaluation faces")
    for k in s["k"]:
        for seed in s["seeds"]:
            index = draw_labelled(labels, pool, k, seed)
            result = finetuned(model_path, shifted, labels, index, seed, recipe)
            p = {"shifted": predicted(result.model, shifted[evaluation], s["tta"]),
                 "clean": predicted(result.model, clean[evaluation], s["tta"])}
            train, val = inner_split(labels, index, seed)
            runs.append({"k": k, "seed": seed, "train_faces": len(train), "validation_faces": len(val),
                         "best_epoch": result.best_epoch, "epochs_run": len(result.history),
                         "seconds": result.train_seconds,
                         **{part: accuracy_with_interval(y, p[part]) for part in p},
                         "vs k = 0": {part: mcnemar(p[part] == y, base_predictions[part] == y) for part in p},
                         "predictions": {part: encode(p[part]) for part in p}})
            progress(f"k = {k}, seed {seed}: {runs[-1]['shifted']['accuracy']:.2%} on the shifted evaluation faces "
                     f"(k = 0: {runs[0]['shifted']['accuracy']:.2%}), epoch {result.best_epoch} of {len(result.history)}")
    curve, noise = curve_rows(runs, y, "shifted")
    forgetting, clean_noise = curve_rows(runs, y, "clean")
    return {"faces_count": {"validation": len(labels), "pool": len(pool), "evaluation": len(evaluation),
                            "evaluation labels": encode(y),
                            "pool per class": {CLASSES[c]: int((labels[pool] == c).sum()) for c in np.unique(labels)}},
            "shift": shift, "runs": runs, "curve": curve, "forgetting": forgetting,
            "seed_noise": {"shifted": noise, "clean": clean_noise}, "minutes": (time.perf_counter() - began) / 60}


def study(data, progress=print) -> dict:
    """The study's record, results/own_faces.json (results/fast/ in fast mode, a tiny version): made by ``measure``
    once, then read back while its settings hold (``FER_RETRAIN=1`` makes it again)."""
    return cached(RECORD_NAME, lambda **s: measure(data, s, progress=progress), **settings())


def load_record(directory: str | Path = RESULTS_DIR) -> dict:
    """The stored record (the committed one by default, also in fast mode)."""
    return load_json(Path(directory) / f"{RECORD_NAME}.json")


def demo_faces(labels: np.ndarray, pool: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of ``per_class`` pool faces of each class that has that many in the pool, for section 1's end-to-end
    run of ``finetune``: drawn with a seed of their own, apart from the curve's draws (``seed`` + 100)."""
    enough = [c for c in np.unique(labels[pool]) if (labels[pool] == c).sum() >= per_class]
    return draw_labelled(labels, pool[np.isin(labels[pool], enough)], per_class, seed + 100)
