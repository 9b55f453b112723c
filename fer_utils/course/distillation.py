"""Notebook 04, distillation: what test-time augmentation and a second seed buy (the ensemble, with TTA),
taught to one model that answers in one pass.

The teacher is an ensemble of the shipped setting trained from two seeds; its flip+shift probabilities on
each training image are the student's soft targets (``fer_utils.train.distillation_loss``), mixed with the
labels. The teacher saw the images it labels (in-sample soft targets, as in Hinton et al.): its probabilities
on training images are more confident than on new faces, which the temperature softens. Out-of-fold
teachers (k teachers, each labelling the fold it never saw) would be more honest and cost k trainings; the
validation study below measures whether in-sample targets pay, on faces no teacher saw.

Judged on validation first: the teachers and the students train on the fitting split, and each student is
compared with the teacher of its seed (the same recipe and seed, labels alone) on the deduplicated validation
split: McNemar's test on the same faces for each pair, and the mean gain over the seeds against the seed
yardstick of two-seed means. The weight and the temperature were fixed before any run (a common choice for
a soft, label-smoothed teacher), not tuned on these faces. The refit (``refit_config``) is the shipped
model's config on all the training images, taught by the shipped ensemble; it is tested once.
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
from ..stats import difference_threshold
from ..storage import records_dir, save_record
from . import ensemble, final_model
from .records import load_study, record_name, weights_path
from .verdicts import holds_in_one_pass, seeded_gain

STUDY = "distill"
SEEDS = (0, 1)  # the teachers' seeds, and the students': each student is paired with the teacher of its seed
WEIGHT, TEMPERATURE = 0.7, 2.0  # the soft targets' share of the loss, and the temperature both are softened at
FITTING_TEACHER = RESULTS_DIR / "distill_teacher_fitting.pt"  # the fitting-split teachers' ensemble, float16
VALIDATION_NAME = "distill_validation"  # results/<name>.json
REFIT_NAME = "final_distilled"  # results/experiments/<name>.json, its weights results/<name>.pt
TEST_NAME, ONE_PASS_NAME = "final_distilled_test", "final_distilled_test_one_pass"  # results/<name>.json


def teacher_label(seed: int) -> str:
    return f"teacher, seed {seed}"


def student_label(seed: int) -> str:
    return f"student, seed {seed}"


def distilled(config: ExperimentConfig, teacher: Path) -> ExperimentConfig:
    """``config`` taught by ``teacher`` at the study's weight and temperature: one change, the soft targets."""
    return dataclasses.replace(config, distill=WEIGHT, temperature=TEMPERATURE, teacher=project_relative(teacher))


def grid(teacher: Path | None = None) -> dict[str, ExperimentConfig]:
    """The teachers (the shipped setting on the fitting split, seeds ``SEEDS``: the ensemble study's fitting
    members) and the students (the same recipe and seeds, distilled from ``teacher``, default ``FITTING_TEACHER``)."""
    fitting = next(iter(ensemble.member_grid().values()))
    teacher = teacher or records_dir() / FITTING_TEACHER.name
    teachers = {teacher_label(s): dataclasses.replace(fitting, seed=s) for s in SEEDS}
    return {**teachers, **{student_label(s): distilled(dataclasses.replace(fitting, seed=s), teacher) for s in SEEDS}}


def refit_config(teacher: Path | None = None) -> ExperimentConfig:
    """The shipped model's config (all the training images, seed 0) taught by the shipped ensemble
    (``teacher``, default results/final_ensemble.pt), whose members were trained on the same images."""
    _, final = final_model.final_config(RESULTS_DIR / "experiments")
    return distilled(final, teacher or records_dir() / ensemble.ENSEMBLE_PATH.name)


def build_teacher(runs: dict[str, ExperimentConfig], path: Path | None = None) -> Path:
    """The teachers' ensemble, stored as float16 at ``path`` (default ``FITTING_TEACHER``; results/fast/ in fast mode)."""
    labels = [teacher_label(s) for s in SEEDS]
    missing = [label for label in labels if not weights_path(STUDY, label).exists()]
    if missing:
        raise FileNotFoundError(f"teachers not trained: {', '.join(missing)}; run `python scripts/run_study.py distill`")
    path = path or records_dir() / FITTING_TEACHER.name
    return save_model(path, ensemble_of([load_model(weights_path(STUDY, label)) for label in labels]), half=True,
                      members=[record_name(STUDY, label) for label in labels])


def validation_study(data, runs: dict[str, ExperimentConfig], seed_sd: float, directory=None) -> dict:
    """Each student against the teacher of its seed on the validation split (``against_teachers``: with the TTA and
    in one pass, McNemar's test per pair, the mean gain over the seeds against the seed yardstick of two-seed means),
    the teachers' ensemble in one pass beside them. Saves and returns results/distill_validation.json."""
    students = {s: (student_label(s), runs[student_label(s)]) for s in SEEDS}
    about = {"weight": WEIGHT, "temperature": TEMPERATURE, "teacher": runs[student_label(SEEDS[0])].teacher}
    out = against_teachers(STUDY, students, data, seed_sd, about, directory=directory,
                           beside={"teachers' ensemble": records_dir() / FITTING_TEACHER.name})
    save_record(VALIDATION_NAME, out)
    return out


def against_teachers(study: str, candidates: dict[int, tuple[str, ExperimentConfig]], data, seed_sd: float,
                     about: dict, views: dict | None = None, directory=None, beside: dict | None = None) -> dict:
    """Each candidate (``candidates``: seed -> (label, config), stored in ``study`` with its weights) against this
    study's teacher of its seed (the shipped setting on the fitting split) on the deduplicated validation split: with
    the TTA (the records' predictions) and in one pass, and in each of ``views`` ({mode: (predict, teacher's mode)}:
    the candidate's predictions ``predict(model, images)``, against the teacher's in one of the first two modes).
    Accuracies with intervals, McNemar's test per pair, the mean gain against the seed yardstick of two-seed means
    (``verdicts.seeded_gain``), the training minutes; ``about`` (what the candidates change) heads the record.
    ``beside``: further checkpoints ({label: path}) scored in one pass, unpaired."""
    as_run = lambda config: config.fast() if fast_mode() else config  # noqa: E731
    runs = {label: as_run(config) for label, config in candidates.values()}
    shipped = grid()
    teachers = {teacher_label(s): as_run(shipped[teacher_label(s)]) for s in candidates}
    records = {**load_study(study, runs, directory), **load_study(STUDY, teachers, directory)}
    studies = {**dict.fromkeys(runs, study), **dict.fromkeys(teachers, STUDY)}
    config = next(iter(runs.values()))
    val = split_data(data, config)[1]
    threshold = float(difference_threshold(seed_sd, runs=(len(candidates), len(candidates))))
    pairs = {f"seed {s}": (label, teacher_label(s)) for s, (label, _) in candidates.items()}
    models = {label: load_model(weights_path(where, label)) for label, where in studies.items()}
    tta, one_pass = f"TTA {config.tta}", "one pass"
    predictions = {tta: {label: np.asarray(records[label]["val_predictions"]) for label in studies},
                   one_pass: {label: predict_proba(model, val.images).argmax(1) for label, model in models.items()}}
    predictions[one_pass] |= {label: predict_proba(load_model(path), val.images).argmax(1) for label, path in (beside or {}).items()}
    for mode, (predict, teacher_mode) in (views or {}).items():
        predictions[mode] = {label: predict(models[label], val.images) if label in runs else predictions[teacher_mode][label]
                             for label in studies}
    return {"n_val": len(val), "seeds": list(candidates), **about, "seed_sd": seed_sd, "threshold": threshold,
            "minutes": {label: records[label]["train_seconds"] / 60 for label in studies},
            **{mode: seeded_gain(val.labels, predicted, pairs, threshold) for mode, predicted in predictions.items()}}


def ships(validation: dict) -> bool:
    """The rule, fixed before the second seed or any test face was seen: the distilled refit replaces the
    shipped single model only where distillation *holds* on validation in one pass (the mean gain over the
    seeds beyond two-seed noise, each pair's McNemar p < 0.05); a tie keeps the model trained on labels."""
    return holds_in_one_pass(validation, SEEDS)
