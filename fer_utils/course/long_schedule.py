"""Notebook 04, a schedule for long training: mixup over twice the epochs, made affordable by progressive
resizing, against the shipped setting on validation.

The refit-scale curve stopped gaining at 25 epochs under flips and shifts (50 epochs scored lower): the model
starts to memorise. Public single networks that reach 72-73% train for hundreds of epochs with a stronger
regulariser. Here the shipped setting (the distillation study's teachers: the fitting split, seeds 0 and 1)
gets mixup (``MIXUP``, with its label smoothing kept) for ``EPOCHS`` epochs, the first two thirds at smaller
sides (``SIZES``: a 32 px epoch costs under half a 48 px one), so that the candidate costs about 1.4 times
the shipped training. One bundle, fixed before any run, judged as a whole: each candidate against the teacher
of its seed on the deduplicated validation split (McNemar's test on the same faces), the mean gain over the
seeds against the seed yardstick of two-seed means (``fer_utils.course.verdicts.seeded_gain``).
"""

from __future__ import annotations

import dataclasses

from ..config import ExperimentConfig
from ..storage import save_record
from . import distillation
from .verdicts import holds_in_one_pass

STUDY = "schedule"
SEEDS = distillation.SEEDS
MIXUP, EPOCHS, SIZES = 0.2, 50, (32, 40, 48)
VALIDATION_NAME = "schedule_validation"  # results/<name>.json


def candidate_label(seed: int) -> str:
    return f"mixup, {EPOCHS} epochs, seed {seed}"


def grid() -> dict[str, ExperimentConfig]:
    """The candidates: each distillation teacher's config (the shipped setting on the fitting split) with
    mixup, ``EPOCHS`` epochs and progressive resizing through ``SIZES``."""
    teachers = distillation.grid()
    return {candidate_label(s): dataclasses.replace(teachers[distillation.teacher_label(s)], mixup=MIXUP, epochs=EPOCHS,
                                                    train_sizes=SIZES) for s in SEEDS}


def validation_study(data, seed_sd: float, directory=None) -> dict:
    """Each candidate against the distillation study's teacher of its seed on the deduplicated validation split,
    with the TTA and in one pass (``distillation.against_teachers``). Saves and returns
    results/schedule_validation.json."""
    candidates = {s: (candidate_label(s), config) for s, config in zip(SEEDS, grid().values(), strict=True)}
    out = distillation.against_teachers(STUDY, candidates, data, seed_sd,
                                        {"mixup": MIXUP, "epochs": EPOCHS, "sizes": list(SIZES)}, directory=directory)
    save_record(VALIDATION_NAME, out)
    return out


def ships(validation: dict) -> bool:
    """The rule, fixed before either candidate finished training: the shipped setting moves to the long schedule
    (refit on all the training images, tested once) only where the schedule *holds* on validation in one pass, over
    both seeds (the mean gain past two-seed noise, each pair's McNemar p < 0.05); a tie keeps today's setting."""
    return holds_in_one_pass(validation, SEEDS)
