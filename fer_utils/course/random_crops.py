"""Notebook 04, cheaper images: random 40 px crops buy more epochs in the same minutes, against the shipped
setting on validation.

A training step on a 40 x 40 window costs about (40 / 48)² = 0.69 of one on the whole 48 px face, so the
shipped setting's 25 epochs buy ``EPOCHS`` epochs of random ``CROP`` px windows (``TrainConfig.crop``,
drawn per image on top of the flips and shifts) in about the same minutes. The public networks that pass
72% on FER-2013 train on such crops and test on ten of them; here the candidate is judged in one pass on
the whole face (what ``predict`` feeds it, unchanged), and beside it on the centre window and with ten
crops. One bundle, fixed before any run: the shipped setting's seeds 0 and 1 on the fitting split, each
against the teacher of its seed (``distillation.against_teachers``).
"""

from __future__ import annotations

import dataclasses

from ..config import ExperimentConfig
from ..evaluate import predict_proba
from ..storage import save_record
from . import distillation
from .verdicts import holds_in_one_pass

STUDY = "crops"
SEEDS = distillation.SEEDS
CROP = 40
EPOCHS = 36  # 25 epochs x (48 / 40)², rounded: the shipped setting's minutes
VALIDATION_NAME = "crops_validation"  # results/<name>.json
CENTRE, TEN_CROP = f"one pass, centre {CROP} px", "TTA ten-crop"  # the views beside the whole face


def candidate_label(seed: int) -> str:
    return f"{CROP} px crops, {EPOCHS} epochs, seed {seed}"


def grid() -> dict[str, ExperimentConfig]:
    """The candidates: each distillation teacher's config (the shipped setting on the fitting split) with random
    ``CROP`` px crops for ``EPOCHS`` epochs."""
    teachers = distillation.grid()
    return {candidate_label(s): dataclasses.replace(teachers[distillation.teacher_label(s)], crop=CROP, epochs=EPOCHS)
            for s in SEEDS}


def centre(images):
    """The centre ``CROP`` x ``CROP`` window of (N, 48, 48) faces."""
    margin = (images.shape[-1] - CROP) // 2
    return images[:, margin : margin + CROP, margin : margin + CROP]


def validation_study(data, seed_sd: float, directory=None) -> dict:
    """Each candidate against the distillation study's teacher of its seed on the deduplicated validation split:
    in one pass on the whole face and with the TTA (the teachers' views), on the centre window (against the
    teacher's one pass) and with ten crops (against the teacher's TTA). Saves and returns
    results/crops_validation.json."""
    tta = f"TTA {next(iter(grid().values())).tta}"
    views = {CENTRE: (lambda model, images: predict_proba(model, centre(images)).argmax(1), "one pass"),
             TEN_CROP: (lambda model, images: predict_proba(model, images, tta="ten-crop").argmax(1), tta)}
    candidates = {s: (candidate_label(s), config) for s, config in zip(SEEDS, grid().values(), strict=True)}
    out = distillation.against_teachers(STUDY, candidates, data, seed_sd, {"crop": CROP, "epochs": EPOCHS}, views,
                                        directory)
    save_record(VALIDATION_NAME, out)
    return out


def ships(validation: dict) -> bool:
    """The rule, fixed before either candidate started training: the shipped setting moves to random crops (refit
    on all the training images, tested once) only where they *hold* on validation in one pass on the whole face,
    over both seeds (the mean gain past two-seed noise, each pair's McNemar p < 0.05); a tie keeps today's setting.
    The centre window and ten crops are reported beside it, not chosen on."""
    return holds_in_one_pass(validation, SEEDS)
