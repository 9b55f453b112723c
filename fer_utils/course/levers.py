"""Notebook 04, section 7: levers on the shipped setting, each judged on validation against the distillation
study's teachers (the shipped setting on the fitting split, seeds 0 and 1).

A lever is one bundle of changes (``Lever.changes``), fixed before any of its runs: both seeds are trained with
it, each scored against the teacher of its seed on the deduplicated validation split
(``distillation.against_teachers``: McNemar's test on the same faces, the mean gain against the seed yardstick of
two-seed means), and it ships (a refit on all the training images, tested once) only where it *holds* in one
pass over both seeds. The levers:

* ``LONG_SCHEDULE``: mixup over twice the epochs, the first two thirds at 32 and 40 px (progressive resizing: a
  32 px epoch costs under half a 48 px one), about 1.4 times the shipped training. The refit-scale curve stopped
  gaining at 25 epochs under flips and shifts; public networks at 72-73% train for hundreds of epochs with a
  stronger regulariser.
* ``RANDOM_CROPS``: each face a random 40 px window of it (``TrainConfig.crop``): a step costs about
  (40 / 48)² = 0.69 of one on the whole face, so 36 epochs fit in the shipped 25's minutes. Judged on the whole
  face (what ``predict`` feeds it), with the centre window and ten crops beside it.
* ``WEIGHT_AVERAGE``: an exponential moving average of the weights (``TrainConfig.ema``, torch's
  ``AveragedModel``), validated and kept in place of the last weights; the training itself is unchanged.
* ``DISTILLED_AVERAGE``: the two levers that gained in one pass, by less than the noise (distillation and the
  weight average), together: one changes the targets, the other the weights, so their gains may add. Its
  candidates are the distillation study's students with the weight average.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ExperimentConfig
from ..evaluate import predict_proba
from ..storage import save_record
from . import distillation
from .verdicts import holds_in_one_pass

SEEDS = distillation.SEEDS
CROP = 40


def centre(images: np.ndarray) -> np.ndarray:
    """The centre ``CROP`` x ``CROP`` window of (N, 48, 48) faces."""
    margin = (images.shape[-1] - CROP) // 2
    return images[:, margin : margin + CROP, margin : margin + CROP]


CENTRE, TEN_CROP = f"one pass, centre {CROP} px", "TTA ten-crop"  # the random crops' views beside the whole face


@dataclass(frozen=True, eq=False)  # eq=False: hashed by identity, a key in tables
class Lever:
    """One bundle of changes to the shipped setting and how it is judged: its runs are stored as ``study``
    (results/experiments/<study>-<label>.json, weights beside), its verdict in results/<validation_name>.json."""

    study: str
    name: str  # in tables and the Summary
    changes: dict[str, Any]  # ExperimentConfig fields, replaced in each teacher's config
    label: str  # the candidate's label, before ", seed N"
    validation_name: str
    # Further views of each candidate: {view: (predict(model, images) -> (N,) classes, the teacher's view)}
    views: dict[str, tuple[Callable, str]] = field(default_factory=dict)
    distilled: bool = False  # the changes made to the distillation study's student of each seed, not to its teacher

    def candidate_label(self, seed: int) -> str:
        return f"{self.label}, seed {seed}"

    def grid(self, teacher: Path | None = None) -> dict[str, ExperimentConfig]:
        """The candidates: each distillation teacher's config (its student's, where ``distilled``, taught by ``teacher``:
        ``distillation.grid``) with ``changes``."""
        base, label = distillation.grid(teacher), distillation.student_label if self.distilled else distillation.teacher_label
        return {self.candidate_label(s): dataclasses.replace(base[label(s)], **self.changes) for s in SEEDS}

    def validation_study(self, data, seed_sd: float, directory=None) -> dict:
        """Each candidate against the teacher of its seed on the deduplicated validation split, with the TTA, in one
        pass and in ``views`` (``distillation.against_teachers``). Saves and returns results/<validation_name>.json."""
        candidates = {s: (self.candidate_label(s), config) for s, config in zip(SEEDS, self.grid().values(), strict=True)}
        about = {"lever": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.changes.items()}}
        if self.distilled:
            about |= {"distill": distillation.WEIGHT, "temperature": distillation.TEMPERATURE}
        out = distillation.against_teachers(self.study, candidates, data, seed_sd, about, self.views, directory)
        save_record(self.validation_name, out)
        return out

    def ships(self, validation: dict) -> bool:
        """The rule, fixed before the lever's runs: it moves into the shipped setting only where it *holds* on
        validation in one pass over both seeds (the mean gain past two-seed noise, each pair's McNemar p < 0.05)."""
        return holds_in_one_pass(validation, SEEDS)


LONG_SCHEDULE = Lever("schedule", "long schedule", {"mixup": 0.2, "epochs": 50, "train_sizes": (32, 40, 48)},
                      "mixup, 50 epochs", "schedule_validation")
RANDOM_CROPS = Lever("crops", "random crops", {"crop": CROP, "epochs": 36}, f"{CROP} px crops, 36 epochs", "crops_validation",
                     {CENTRE: (lambda model, images: predict_proba(model, centre(images)).argmax(1), "one pass"),
                      TEN_CROP: (lambda model, images: predict_proba(model, images, tta="ten-crop").argmax(1),
                                 "TTA flip+shift")})
WEIGHT_AVERAGE = Lever("ema", "weight average", {"ema": 0.999}, "EMA 0.999", "ema_validation")
DISTILLED_AVERAGE = Lever("combined", "distillation + weight average", {"ema": 0.999}, "distilled, EMA 0.999",
                          "combined_validation", distilled=True)
LEVERS = {lever.study: lever for lever in (LONG_SCHEDULE, RANDOM_CROPS, WEIGHT_AVERAGE, DISTILLED_AVERAGE)}
