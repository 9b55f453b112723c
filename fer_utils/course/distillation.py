"""Notebook 04, distillation: what test-time augmentation and a second seed buy (the ensemble, with TTA),
taught to one model that answers in one pass.

The teacher is an ensemble of the shipped setting trained from two seeds; its flip+shift probabilities on
each training image are the student's soft targets (``fer_utils.train.distillation_loss``), mixed with the
labels. The teacher saw the images it labels (in-sample soft targets, as in Hinton et al.): its probabilities
on training images are more confident than on new faces, which the temperature softens. Out-of-fold
teachers (k teachers, each labelling the fold it never saw) would be more honest and cost k trainings; the
validation study below measures whether in-sample targets pay, on faces no teacher saw.

Judged on validation first: the teachers and the student train on the fitting split, and the student is
compared with the first teacher (the same recipe and seed, labels alone) on the deduplicated validation
split, McNemar's test on the same faces and the seed yardstick. The weight and the temperature were fixed
before any run (a common choice for a soft, label-smoothed teacher), not tuned on these faces.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..checkpoints import load_model, save_model
from ..evaluate import predict_proba
from ..experiments import ExperimentConfig, split_data
from ..models import ensemble_of
from ..paths import RESULTS_DIR, project_relative
from ..runtime import fast_mode
from ..stats import accuracy_with_interval, difference_threshold, mcnemar
from ..storage import records_dir, save_record
from . import ensemble
from .records import load_study, record_name, weights_path
from .verdicts import verdict

STUDY = "distill"
TEACHER_SEEDS = (0, 1)
WEIGHT, TEMPERATURE = 0.7, 2.0  # the soft targets' share of the loss, and the temperature both are softened at
FITTING_TEACHER = RESULTS_DIR / "distill_teacher_fitting.pt"  # the fitting-split teachers' ensemble, float16
VALIDATION_NAME = "distill_validation"  # results/<name>.json


def teacher_label(seed: int) -> str:
    return f"teacher, seed {seed}"


def student_label() -> str:
    return f"student, weight {WEIGHT}, temperature {TEMPERATURE}"


def grid(teacher: Path | None = None) -> dict[str, ExperimentConfig]:
    """The teachers (the shipped setting on the fitting split, seeds ``TEACHER_SEEDS``: the ensemble study's
    fitting members) and the student (the same recipe and seed 0, distilled from ``teacher``, default
    ``FITTING_TEACHER``)."""
    fitting = next(iter(ensemble.member_grid().values()))
    teachers = {teacher_label(s): dataclasses.replace(fitting, seed=s) for s in TEACHER_SEEDS}
    student = dataclasses.replace(fitting, seed=0, distill=WEIGHT, temperature=TEMPERATURE,
                                  teacher=project_relative(teacher or records_dir() / FITTING_TEACHER.name))
    return {**teachers, student_label(): student}


def build_teacher(runs: dict[str, ExperimentConfig], path: Path | None = None) -> Path:
    """The teachers' ensemble, stored as float16 at ``path`` (default ``FITTING_TEACHER``; results/fast/ in fast mode)."""
    labels = [label for label in runs if label.startswith("teacher")]
    missing = [label for label in labels if not weights_path(STUDY, label).exists()]
    if missing:
        raise FileNotFoundError(f"teachers not trained: {', '.join(missing)}; run `python scripts/run_study.py distill`")
    path = path or records_dir() / FITTING_TEACHER.name
    return save_model(path, ensemble_of([load_model(weights_path(STUDY, label)) for label in labels]), half=True,
                      members=[record_name(STUDY, label) for label in labels])


def validation_study(data, runs: dict[str, ExperimentConfig], seed_sd: float, directory=None) -> dict:
    """The student against the first teacher (labels alone, same recipe and seed) on the validation split,
    with the teacher's TTA (their records' predictions) and in one pass: accuracies with intervals, McNemar's
    test on the same faces and the verdict with the seed yardstick (2√2 ``seed_sd``); the teachers' ensemble
    in one pass beside them. Saves and returns results/distill_validation.json."""
    runs = {label: config.fast() if fast_mode() else config for label, config in runs.items()}
    records = load_study(STUDY, runs, directory)
    first, student = records[teacher_label(TEACHER_SEEDS[0])], records[student_label()]
    config = runs[student_label()]
    val = split_data(data, config)[1]
    threshold = float(difference_threshold(seed_sd))
    predictions = {
        f"TTA {config.tta}": {"student": np.asarray(student["val_predictions"]),
                              "teacher seed 0": np.asarray(first["val_predictions"])},
        "one pass": {name: predict_proba(load_model(path), val.images).argmax(1) for name, path in (
            ("student", weights_path(STUDY, student_label())), ("teacher seed 0", weights_path(STUDY, teacher_label(TEACHER_SEEDS[0]))),
            ("teachers' ensemble", records_dir() / FITTING_TEACHER.name))}}
    out = {"n_val": len(val), "weight": WEIGHT, "temperature": TEMPERATURE, "seed_sd": seed_sd, "threshold": threshold,
           "teacher": student.get("teacher"),
           "minutes": {"student": student["train_seconds"] / 60, "teacher seed 0": first["train_seconds"] / 60}}
    for mode, predicted in predictions.items():
        test = mcnemar(predicted["student"] == val.labels, predicted["teacher seed 0"] == val.labels)
        out[mode] = {**{name: accuracy_with_interval(val.labels, p) for name, p in predicted.items()},
                     "student vs teacher seed 0": {**test, "verdict": verdict(test["difference"], threshold, test["p_value"])}}
    save_record(VALIDATION_NAME, out)
    return out
