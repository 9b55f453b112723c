"""Seed ensembles: the shipped recipe trained from several seeds, its members' probabilities averaged.

What more compute buys once the recipe is fixed (notebook 04). ``MEMBERS`` members cost that many
times the training and the inference, so the ensemble is for photos (``predict``) and the single
shipped model for real time. It is judged on validation before it is tested: members trained on the
fitting split (the refit-scale curve's chosen setting, seeds 0, 1, ...) are averaged and scored on
the validation split against their first member alone, McNemar's test on the same faces
(``validation_study``). The shipped ensemble (``build``) is the shipped model (seed 0) with refits of
its config from seeds 1, 2, ... on all the training images, tested once; ``ship`` then fixes, in a
small manifest, which model ``predict`` serves photos with. Members train with
``python scripts/run_study.py ensemble`` (``--shard i/n`` for parallel workers, e.g. on a GPU).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ..checkpoints import DEFAULT_MODEL, SHIPPED_MANIFEST, load_model, save_model
from ..config import ExperimentConfig
from ..evaluate import predict_proba
from ..experiments import split_data
from ..models import ensemble_of
from ..paths import RESULTS_DIR, project_relative
from ..stats import accuracy_with_interval, mcnemar
from ..storage import load_json, records_dir, save_json, save_record
from . import final_model
from .records import weights_path
from .verdicts import verdict

MEMBERS = 2  # the shipped model and one more seed: each refit takes 20 to 50 minutes on a 2-core CPU
STUDY = "ensemble"
PARTS = {"fitting": "fitting split", "refit": "all training images"}
ENSEMBLE_PATH = RESULTS_DIR / "final_ensemble.pt"  # the shipped ensemble: members stored as float16
VALIDATION_NAME = "ensemble_validation"  # results/<name>.json
TEST_NAME, ONE_PASS_NAME = "final_ensemble_test", "final_ensemble_test_one_pass"


def member_label(part: str, seed: int) -> str:
    """A member's label in the study, e.g. 'fitting split, seed 2' (``part``: a key of ``PARTS``)."""
    return f"{PARTS[part]}, seed {seed}"


def part_labels(grid, part: str) -> list[str]:
    """The labels in ``grid`` (any iterable of labels) of one part of the study (a key of ``PARTS``), in order."""
    return [label for label in grid if label.startswith(PARTS[part])]


def member_grid(directory=None, members: int = MEMBERS) -> dict[str, ExperimentConfig]:
    """Every member to train: the refit-scale curve's chosen run on the fitting split with seeds
    0 .. members - 1 (validated), and the shipped model's config on all the training images with seeds
    1 .. members - 1 (the shipped model is seed 0). Read from the stored choices in ``directory``
    (default results/experiments, in fast mode too: a fast run shrinks these configs, it does not
    choose others)."""
    _, final = final_model.final_config(directory or RESULTS_DIR / "experiments")
    fitting = dataclasses.replace(final_model.CURVE, augment=final.augment, epochs=final.epochs, tta=final.tta)
    return {**{member_label("fitting", s): dataclasses.replace(fitting, seed=s) for s in range(members)},
            **{member_label("refit", s): dataclasses.replace(final, seed=s) for s in range(1, members)}}


def load_members(part: str, grid: dict[str, ExperimentConfig]) -> list:
    """The trained members of ``part``, seed order; a missing one names the command that trains it."""
    labels = part_labels(grid, part)
    missing = [label for label in labels if not weights_path(STUDY, label).exists()]
    if missing:
        raise FileNotFoundError(f"ensemble members not trained: {', '.join(missing)}; "
                                "run `python scripts/run_study.py ensemble`")
    return [load_model(weights_path(STUDY, label)) for label in labels]


def size_curve(member_probs: np.ndarray, labels: np.ndarray) -> list[float]:
    """Accuracy of the ensemble of the first k members, k = 1 .. K; ``member_probs`` is (K, N, 7)."""
    mean = np.cumsum(member_probs, axis=0) / np.arange(1, len(member_probs) + 1)[:, None, None]
    return [float((m.argmax(1) == labels).mean()) for m in mean]


def validation_study(data, grid: dict[str, ExperimentConfig] | None = None) -> dict:
    """The fitting-split members, alone and averaged, on the validation split with the shipped TTA;
    McNemar's test of the whole ensemble against its first member on the same faces. Saves and returns
    results/ensemble_validation.json (with every member's and the ensemble's predictions)."""
    grid = grid or member_grid()
    config = next(iter(grid.values()))
    val = split_data(data, config)[1]
    members = load_members("fitting", grid)
    probs = np.stack([predict_proba(m, val.images, tta=config.tta) for m in members])
    ensemble = probs.mean(0).argmax(1)
    record = {
        "members": len(members), "tta": config.tta, "n_val": len(val),
        "member_accuracy": [float((p.argmax(1) == val.labels).mean()) for p in probs],
        "size_curve": size_curve(probs, val.labels),
        "ensemble": accuracy_with_interval(val.labels, ensemble),
        "mcnemar_vs_first": mcnemar(ensemble == val.labels, probs[0].argmax(1) == val.labels),
        "member_predictions": probs.argmax(2).tolist(), "ensemble_predictions": ensemble.tolist(),
        "config": config.to_dict(),
    }
    save_record(VALIDATION_NAME, record)
    return record


def validation_record(directory=None) -> dict:
    path = (Path(directory) if directory else records_dir()) / f"{VALIDATION_NAME}.json"
    if not path.exists():
        raise FileNotFoundError(f"no {path.name}: run `python scripts/run_study.py ensemble`")
    return load_json(path)


def build(grid: dict[str, ExperimentConfig] | None = None, path: Path | None = None,
          shipped: Path | None = None) -> Path:
    """The shipped ensemble, stored as float16 at ``path`` (default ``ENSEMBLE_PATH``; results/fast/ in
    fast mode): the shipped model (``shipped``, default ``results/final_model.pt``) and the refit members."""
    grid = grid or member_grid()
    path = path or records_dir() / ENSEMBLE_PATH.name
    shipped = Path(shipped or records_dir() / DEFAULT_MODEL.name)
    refit = part_labels(grid, "refit")
    ensemble = ensemble_of([load_model(shipped), *load_members("refit", grid)])
    return save_model(path, ensemble, half=True, members=[project_relative(shipped), *refit])


def wins(record: dict) -> bool:
    """Whether the validation study (``validation_study``'s record) favours the ensemble: its gain over
    its first member on the same faces 'holds' by McNemar's test (``verdicts.verdict``)."""
    test = record["mcnemar_vs_first"]
    return verdict(test["a_only"] - test["b_only"], p_value=test["p_value"]) == "holds"


def ship(record: dict, manifest: Path | None = None) -> Path:
    """Fix which model ``predict`` uses for photos (``fer_utils.checkpoints.photo_checkpoint``): the
    shipped ensemble where its validation study ``record`` favours it (``wins``), else the single model.
    Written once, when the models are shipped, to ``manifest`` (default ``SHIPPED_MANIFEST``)."""
    test = record["mcnemar_vs_first"]
    chosen = ENSEMBLE_PATH if wins(record) else DEFAULT_MODEL
    why = (f"the {record['members']}-seed ensemble against its first member on {record['n_val']:,} validation faces: "
           f"{100 * test['difference']:+.2f} points, McNemar p = {test['p_value']:.2g} ({VALIDATION_NAME}.json)")
    return save_json(manifest or SHIPPED_MANIFEST, {"photos": project_relative(chosen), "why": why})
