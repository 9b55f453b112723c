"""Experiments as data: a config in, a JSON record under results/ out, reused when it exists.

An experiment trains one model on the stratified train split and picks its best epoch on the
validation split (with ``dedup_val``, without the validation images that have an exact pixel twin
in the training part: those would measure memory, not generalisation). The test set is left
unseen unless asked (``evaluate_test``): only the chosen final model is evaluated on it. Its
record holds the config, the history, the validation metrics and the wall time. Rerunning the same config loads the
stored record instead of training again, unless ``retrain`` (or ``$FER_RETRAIN=1``) asks.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .audit import has_exact_twin
from .checkpoints import CheckpointError, load_model, save_model
from .config import CLASSES, FAST_FRACTION, ExperimentConfig
from .data import FER2013, Split, load_fer2013, stratified_subset, train_val_split
from .evaluate import metrics, per_class_table, predict_proba
from .models import build_model, count_flops, count_parameters
from .paths import PROJECT_ROOT, project_relative, runs_dir
from .runtime import default_device, fast_mode, resolve_precision, set_seed
from .storage import (
    atomic_write,
    environment,
    file_sha256,
    load_json,
    records_dir,
    retrain_requested,
    save_json,
    save_record,
    sha256,
    stored,
)
from .train import fit


def _fit_and_validation(data: FER2013, config: ExperimentConfig) -> tuple[Split, Split | None]:
    if config.val_fraction == 0:
        return data.train, None
    train, val = train_val_split(data.train, config.val_fraction, seed=0)
    if config.dedup_val:
        val = val.subset(~has_exact_twin(val.images, train.images))
    return train, val


def full_validation(data: FER2013, config: ExperimentConfig) -> Split:
    """A config's whole validation split, also in fast mode: the images its records' ``val_predictions``
    score (a record made in full mode), e.g. for McNemar's test between two runs."""
    _, val = _fit_and_validation(data, config)
    if val is None:
        raise ValueError("this config has no validation split (val_fraction=0)")
    return val


def split_data(data: FER2013, config: ExperimentConfig) -> tuple[Split, Split | None, Split]:
    """(train, val, test) for a config; val is None with ``val_fraction=0`` (train on everything).

    In fast mode every split is a small stratified subset.
    """
    train, val = _fit_and_validation(data, config)
    train = stratified_subset(train, config.data_fraction, seed=config.seed)
    test = data.test
    if fast_mode():
        val = stratified_subset(val, FAST_FRACTION, seed=0) if val is not None else None
        test = stratified_subset(test, FAST_FRACTION, seed=0)
    return train, val, test


def test_subsets(test: Split, extra: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Boolean masks of the test set to report on: all of it, PublicTest, PrivateTest, and ``extra``."""
    masks = {"test": np.ones(len(test), bool)}
    masks.update({s: test.sources == s for s in ("PublicTest", "PrivateTest")})
    masks.update(extra or {})
    return masks


def evaluate_on(model: nn.Module, split: Split, tta: bool | str, masks: dict[str, np.ndarray] | None = None):
    """(metrics per subset, per-class table per subset, probabilities) of ``model`` on ``split``."""
    probs = predict_proba(model, split.images, tta=tta)
    pred = probs.argmax(1)
    masks = masks or {"all": np.ones(len(split), bool)}
    results = {name: metrics(split.labels[m], pred[m]) for name, m in masks.items()}
    tables = {name: per_class_table(split.labels[m], pred[m], CLASSES) for name, m in masks.items()}
    return results, tables, probs


def with_interval(m: dict) -> dict:
    """A subset's metrics (``metrics``' dict with 'accuracy' and 'n') with its right answers and the 95%
    Wilson interval of its accuracy added ('correct', 'low', 'high')."""
    from .stats import accuracy_interval

    correct = int(round(m["accuracy"] * m["n"]))
    low, high = accuracy_interval(correct, m["n"])
    return {**m, "correct": correct, "low": low, "high": high}


def twin_metrics(metrics: dict) -> dict:
    """Accuracy (with its interval) on the test images that have an exact twin in the training set:
    the full test set less the deduplicated one, from an ``evaluate_checkpoint`` record's metrics."""
    full, dedup = with_interval(metrics["test"]), with_interval(metrics["deduplicated"])
    n, correct = full["n"] - dedup["n"], full["correct"] - dedup["correct"]
    if n == 0:  # a small subset (fast mode) may hold no twin
        return {"accuracy": float("nan"), "n": 0, "correct": 0, "low": float("nan"), "high": float("nan")}
    return with_interval({"accuracy": correct / n, "n": n})


def record_path(name: str) -> Path:
    return records_dir() / "experiments" / f"{name}.json"


def stored_record(config: ExperimentConfig, name: str, directory: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The record stored under ``name`` (in ``directory``, default this mode's results/experiments) if
    this config (in this mode's form) made it, else None."""
    path = Path(directory) / f"{name}.json" if directory is not None else record_path(name)
    return stored(path, config=config.to_dict())


def run_experiment(
    config: ExperimentConfig,
    name: str | None = None,
    data: FER2013 | None = None,
    data_path: str | os.PathLike | None = None,
    retrain: bool | None = None,
    resume: bool = True,
    save_checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    evaluate_test: bool = False,
) -> dict[str, Any]:
    """Run ``config`` (or load its stored record) and return the record.

    The test set stays unseen by default: runs are compared on the validation split, and the
    test set is used once, for the chosen model (``evaluate_checkpoint``). ``evaluate_test=True``
    is for a quick standalone experiment whose record should carry its test metrics.

    Checkpoints go to runs/<name>/ so that an interrupted run resumes; the record goes to
    results/experiments/<name>.json (results/fast/ in fast mode, with the fast config).
    """
    if fast_mode():
        config = config.fast()
    name = name or f"{config.model}-{config.key()}"
    retrain = retrain_requested() if retrain is None else retrain
    if not retrain and (record := stored_record(config, name)) is not None:
        return record
    record = train_record(config, name, data or load_fer2013(data_path), resume=resume,
                          save_checkpoint=save_checkpoint, progress=progress, evaluate_test=evaluate_test)
    return write_record(name, record)


def train_record(
    config: ExperimentConfig,
    name: str,
    data: FER2013,
    resume: bool = True,
    save_checkpoint: str | os.PathLike | None = None,
    progress: bool = True,
    evaluate_test: bool = False,
) -> dict[str, Any]:
    """Train ``config`` as given (``run_experiment`` applies fast mode first) and return its record,
    with the environment it ran in; writes nothing under results/ (``write_record`` does)."""
    train, val, test = split_data(data, config)
    teacher, soft_targets = (teacher_targets(config, train, cache=runs_dir() / name / "teacher_targets.npz")
                             if config.distill else (None, None))
    set_seed(config.seed)  # fixes the initial weights too
    model = build_model(config.model, **config.model_kwargs)
    params, flops = count_parameters(model), count_flops(model)
    started = time.perf_counter()
    result = fit(model, train, val, config, run_dir=runs_dir() / name, resume=resume, progress=progress,
                 soft_targets=soft_targets)
    wall = time.perf_counter() - started
    val_metrics, val_probs = None, None
    if val is not None:
        results, _, val_probs = evaluate_on(result.model, val, config.tta)
        val_metrics = results["all"]
    test_metrics = evaluate_on(result.model, test, config.tta, test_subsets(test))[0] if evaluate_test else None
    if save_checkpoint:
        save_model(save_checkpoint, result.model, config=config.to_dict(), record=name)
    return {
        "name": name,
        "key": config.key(),
        "config": config.to_dict(),
        "fast_mode": fast_mode(),
        "device": str(default_device()),
        "n_train": len(train), "n_val": len(val) if val is not None else 0, "n_test": len(test),
        "train_precision": str(resolve_precision(config.precision, default_device()) or torch.float32),
        "params": params, "flops": flops,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "train_seconds": result.train_seconds,
        "wall_seconds": wall,
        "val": val_metrics,
        # Each validation image's predicted class, in split order: paired tests (McNemar) between runs.
        **({"val_predictions": val_probs.argmax(1).tolist()} if val_probs is not None else {}),
        **({"test": test_metrics} if evaluate_test else {}),
        **({"teacher": teacher} if teacher else {}),
        "history": result.history.to_dict(orient="records"),
        "environment": environment(),
    }


def stored_proba(checkpoint: str | os.PathLike, images: np.ndarray, tta: bool | str = False,
                 path: str | os.PathLike | None = None, label: str = "probabilities", recompute: bool = False,
                 chunk: int = 256) -> tuple[np.ndarray, float | None]:
    """``checkpoint``'s probabilities on ``images`` ((N, 48, 48) -> (N, 7)) with ``tta``, kept in the .npz at ``path``
    and read back while the checkpoint's file, the images and the TTA are the same (unless ``recompute``); else
    computed in chunks, the expected time said first and a progress bar shown (``label`` names them), and written
    atomically. Returns them and the seconds they took (None where the stored file does not say)."""
    made = {"checkpoint_sha256": file_sha256(checkpoint), "images_sha256": sha256(np.ascontiguousarray(images).tobytes()),
            "tta": str(tta)}
    if path is not None and Path(path).is_file() and not recompute:
        with np.load(path) as stored_file:  # a file that does not say how it was made is made again
            if "made" in stored_file.files and json.loads(str(stored_file["made"])) == made:
                return stored_file["probs"], float(stored_file["seconds"]) if "seconds" in stored_file else None
    model = load_model(checkpoint)
    parts = np.array_split(np.arange(len(images)), max(1, -(-len(images) // chunk)))
    began = time.perf_counter()
    probs = [predict_proba(model, images[parts[0]], tta=tta)]
    print(f"computing {label}: {len(images):,} faces, TTA {tta!r}, about "
          f"{(time.perf_counter() - began) * len(parts) / 60:.1f} min on this machine (measured on the first "
          f"{len(parts[0]):,}){'' if path is None else f'; stored in {Path(path).name} for the next run'}", flush=True)
    probs += [predict_proba(model, images[part], tta=tta) for part in tqdm(parts[1:], desc=label, unit="chunk")]
    probs, seconds = np.concatenate(probs), time.perf_counter() - began
    if path is not None:
        atomic_write(path, lambda f: np.savez_compressed(f, probs=probs, made=json.dumps(made), seconds=seconds))
    return probs, seconds


def teacher_targets(config: ExperimentConfig, train: Split, cache: str | os.PathLike | None = None
                    ) -> tuple[dict[str, Any], np.ndarray]:
    """The soft targets of a distilled run: the probabilities of ``config.teacher`` (a checkpoint, path from
    the project root) on each training image with the test-time augmentation ``config.tta``, (N, 7); and what
    the record keeps of the teacher (its file's SHA-256, its accuracy on these images, the seconds they took).
    ``cache``: an .npz kept beside the run's checkpoints (``stored_proba``): an interrupted run does not redo them."""
    path = PROJECT_ROOT / config.teacher
    if not config.teacher or not path.is_file():
        raise CheckpointError(f"distillation needs a teacher checkpoint (--teacher): {config.teacher or 'none given'} "
                              "is not a file; train one first, or set --distill 0")
    probs, seconds = stored_proba(path, train.images, config.tta, cache, label="the teacher's probabilities")
    teacher = {"checkpoint": config.teacher, "sha256": file_sha256(path), "tta": config.tta,
               "train_accuracy": float((probs.argmax(1) == train.labels).mean()), "seconds": seconds}
    return teacher, probs


def write_record(name: str, record: dict[str, Any]) -> dict[str, Any]:
    """Store a record made by ``train_record`` as results/experiments/<name>.json, atomically; returns
    it as stored (read back, so that a fresh record and a reused one are the same JSON data)."""
    path = record_path(name)
    save_json(path, record)
    return load_json(path)


def records_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: config columns, then sizes, times and accuracies."""
    rows = []
    for r in records:
        rows.append({
            "name": r["name"], **{k: v for k, v in r["config"].items() if k != "model_kwargs"},
            "model_kwargs": json.dumps(r["config"]["model_kwargs"], sort_keys=True),
            "params": r["params"], "flops": r["flops"],
            "train_seconds": r["train_seconds"], "best_epoch": r["best_epoch"],
            "val_accuracy": r["val"]["accuracy"] if r["val"] else None,
        })
    return pd.DataFrame(rows)


def history_frame(record: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(record["history"])


def evaluate_checkpoint(
    model: nn.Module,
    checkpoint: str | os.PathLike,
    data: FER2013 | None = None,
    data_path: str | os.PathLike | None = None,
    tta: bool | str = False,
    record_name: str | None = None,
    extra_subsets: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Evaluate a trained model on the test set — all of it, PublicTest, PrivateTest, the
    deduplicated test set (no exact twin in train) and ``extra_subsets`` (masks over ``data.test``) —
    and save ``results/<record_name>.json``; returns metrics, tables, probabilities and the record's path."""
    from .audit import deduplicated_test_mask

    data = data or load_fer2013(data_path)
    test = data.test
    masks = test_subsets(test, {"deduplicated": deduplicated_test_mask(data), **(extra_subsets or {})})
    results, tables, probs = evaluate_on(model, test, tta, masks)
    name = record_name or f"evaluation_{Path(checkpoint).stem}"
    path = save_record(name, {
        "checkpoint": project_relative(checkpoint), "tta": tta, "fast_mode": fast_mode(), "metrics": results,
        "per_class": {k: t.reset_index(names="class").to_dict(orient="records") for k, t in tables.items()},
    })
    return {"metrics": results, "tables": tables, "probabilities": probs, "test": test, "record_path": path}
