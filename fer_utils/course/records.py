"""The course's study records: the shared proxy budget, how a run's record is named, and how a study's
records are loaded, reused and trained when missing.

A run of a study grid is stored as ``results/experiments/<study>-<label>.json`` (``record_name``:
``ablation-rotate-seed-2.json``) and reused while its config is unchanged; any other measurement a
notebook stores goes through ``cached``. Both use the package's one record cache
(``fer_utils.storage.stored``), and ``$FER_RETRAIN=1`` makes everything again.

Proxy budgets keep each grid rerunnable on a 2-core CPU: half of the training split and 10 epochs per
run (``PROXY``), the same for notebooks 02, 03, 04's candidates and 08.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..config import ExperimentConfig
from ..experiments import run_experiment, stored_proba, stored_record
from ..paths import runs_dir
from ..runtime import fast_mode
from ..storage import (
    records_dir,
    retrain_requested,
    save_record,
    stored,
)

# The CPU-efficient residual network: no residual block at 48x48 (the stem conv only), then
# three stages at 24, 12 and 6 pixels. Same 1.2M parameters as the original report's model,
# 2.5x its training speed on this CPU.
FAST_RESIDUAL = {"widths": [32, 64, 128, 256], "blocks": [0, 1, 1, 1]}

# Only what differs from ExperimentConfig's defaults (batch 128, AdamW, weight decay 5e-4, one-cycle).
PROXY = ExperimentConfig(model="residual_cnn", model_kwargs=FAST_RESIDUAL, epochs=10, lr=2e-3, augment="none",
                         data_fraction=0.5)
SEEDS = (0, 1, 2)
FAST_GRID_RUNS = 2  # in fast mode (CI) a notebook trains this many runs of its grid, tiny ones


def record_name(study: str, label: str) -> str:
    """A run's record name, from its study and its label in the grid: a name to find the file by.

    >>> record_name("ablation", "rotate, seed 2")
    'ablation-rotate-seed-2'
    """
    words = re.sub(r"[^a-z0-9+.]+", "-", str(label).lower().replace("%", "pct")).strip("-")
    return f"{study}-{words}"


def weights_path(study: str, label: str) -> Path:
    """Where a run of a study that keeps its weights saves them: runs/<record name>/model.pt (ignored by git)."""
    return runs_dir() / record_name(study, label) / "model.pt"


def load_study(study: str, grid: dict[str, ExperimentConfig], directory=None) -> dict[str, dict]:
    """The stored records of a grid, by label; runs without a record, or whose record was made by
    another config, are left out. From ``directory`` if given, else from where this mode's records go."""
    found = {label: stored_record(config, record_name(study, label), directory) for label, config in grid.items()}
    return {label: record for label, record in found.items() if record is not None}


def run_grid(study: str, grid: dict[str, ExperimentConfig], data=None, fast_labels=None) -> dict[str, dict]:
    """The records of a grid, by label: stored ones are loaded, missing ones are trained.

    In fast mode only the runs named in ``fast_labels`` (default: the first ``FAST_GRID_RUNS``)
    are made, each on a small subset for one epoch, so that a notebook exercises the whole path
    in CI within seconds.
    """
    items = list(grid.items())
    if fast_mode():
        items = [(k, grid[k]) for k in fast_labels] if fast_labels else items[:FAST_GRID_RUNS]
    return {label: run_experiment(config, name=record_name(study, label), data=data, progress=False)
            for label, config in items}


def cached(name: str, compute, **settings) -> dict:
    """The record ``<records_dir>/<name>.json`` if it was made with ``settings``, else
    ``compute(**settings)``, saved there first (always recomputed when ``$FER_RETRAIN=1``)."""
    path = records_dir() / f"{name}.json"
    record = None if retrain_requested() else stored(path, settings=settings)
    if record is None:
        save_record(name, {"settings": settings, **compute(**settings)})
        record = stored(path)
    return record



def stored_probabilities(name: str, checkpoint: str | os.PathLike, images: np.ndarray, tta: bool | str = False) -> np.ndarray:
    """``checkpoint``'s probabilities on ``images`` ((N, 48, 48) -> (N, 7)) with ``tta``, stored as
    results/probabilities/<name>.npz (results/fast/ in fast mode) by ``fer_utils.experiments.stored_proba``,
    computed only when missing or ``$FER_RETRAIN`` asks (notebook 05 reads notebook 04's test predictions this way)."""
    return stored_proba(checkpoint, images, tta, records_dir() / "probabilities" / f"{name}.npz", label=name,
                        recompute=retrain_requested())[0]
