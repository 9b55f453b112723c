"""Notebook 08: transfer learning, MTCNN's ONet pretrained on faces against the same network from
scratch, and the label-budget curve of what pretraining buys."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd

from ..config import ExperimentConfig
from ..stats import SeedNoise, difference_threshold, seed_sd, welch
from .records import PROXY, SEEDS
from .verdicts import verdict

# Transfer learning (notebook 08): MTCNN's ONet, pretrained on faces, against the same network
# from scratch, at the proxy budget with the final model's augmentation and label smoothing,
# selected and compared on the deduplicated validation split only.
TRANSFER = dataclasses.replace(PROXY, model="onet", model_kwargs={}, augment="hflip+shift", label_smoothing=0.1,
                               dedup_val=True)
TRANSFER_ARMS = {
    "from scratch": {},
    "linear probe (frozen features)": {"pretrained": True, "train": "head"},
    "fine-tune the last layers": {"pretrained": True, "train": "last"},
    "fine-tune all layers": {"pretrained": True},
}
LABEL_FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)  # shares of the fit split, for the label-budget curve
LABEL_SEEDED_FRACTIONS = (0.02, 0.05, 0.1)  # three seeds each; 50% has the comparison's three, the rest one
LABEL_BUDGET_ARMS = ("from scratch", "fine-tune all layers")


def transfer_comparison() -> dict[str, ExperimentConfig]:
    """Notebook 08: each way of using ONet (from scratch, probe, fine-tuning) with three seeds."""
    return {f"{arm}, seed {seed}": dataclasses.replace(TRANSFER, model_kwargs=kwargs, seed=seed)
            for arm, kwargs in TRANSFER_ARMS.items() for seed in SEEDS}


def transfer_seed_noise(records: dict[str, dict]) -> SeedNoise:
    """One run's seed noise in the transfer comparison (``transfer_comparison``'s records, by label): each
    arm's validation accuracies over its seeds, pooled by ``fer_utils.stats.seed_sd``."""
    return seed_sd([[records[label]["val"]["accuracy"] for seed in SEEDS if (label := f"{arm}, seed {seed}") in records]
                    for arm in TRANSFER_ARMS])


def label_budget_passes(fraction: float) -> int:
    """Passes over the training faces per epoch for a run on ``fraction`` of the fit split: below the
    proxy's share (half of it), each of the 10 epochs takes the proxy's optimiser steps (25 passes over
    2%, 10 over 5%); one pass at or above it.

    >>> [label_budget_passes(f) for f in LABEL_FRACTIONS]
    [25, 10, 5, 2, 1, 1]
    """
    return max(1, round(TRANSFER.data_fraction / fraction))


def label_budget_seeds(fraction: float) -> tuple[int, ...]:
    return SEEDS if fraction in LABEL_SEEDED_FRACTIONS or fraction == TRANSFER.data_fraction else SEEDS[:1]


def label_budget() -> dict[str, ExperimentConfig]:
    """Notebook 08's label-budget curve: pretrained vs scratch on a growing share of the labels, with
    matched optimiser steps (``label_budget_passes``) and three seeds at the smallest shares. The points at
    the proxy's share are the comparison's runs, under their labels (one record each, not two)."""
    def label(arm: str, fraction: float, seed: int) -> str:
        share = "" if fraction == TRANSFER.data_fraction else f"{fraction:.0%} of the labels, "
        return f"{arm}, {share}seed {seed}"

    return {label(arm, fraction, seed): dataclasses.replace(
                TRANSFER, model_kwargs=TRANSFER_ARMS[arm], data_fraction=fraction,
                passes_per_epoch=label_budget_passes(fraction), seed=seed)
            for arm in LABEL_BUDGET_ARMS for fraction in LABEL_FRACTIONS for seed in label_budget_seeds(fraction)}


def label_budget_frame(records: dict[str, dict]):
    """The label-budget curve's records, one row each: arm, share of labels, seed, training faces, the
    faces seen per epoch (training faces x passes: the same optimiser steps below the proxy's share), val_accuracy."""
    arm = {json.dumps(kwargs, sort_keys=True): name for name, kwargs in TRANSFER_ARMS.items()}
    rows = [{"arm": arm[json.dumps(r["config"]["model_kwargs"], sort_keys=True)],
             "share of labels": r["config"]["data_fraction"], "seed": r["config"]["seed"], "training faces": r["n_train"],
             "faces per epoch": r["n_train"] * r["config"].get("passes_per_epoch", 1),
             "val_accuracy": r["val"]["accuracy"]} for r in records.values()]
    columns = ["arm", "share of labels", "seed", "training faces", "faces per epoch", "val_accuracy"]
    return pd.DataFrame(rows, columns=columns).sort_values(["arm", "share of labels", "seed"], ignore_index=True)


def pretraining_gains(points, seed_sd: float):
    """Per share of labels: each arm's mean over seeds, the gain of fine-tuning over scratch, and its verdict.

    Where both arms have two seeds or more the gain is judged by Welch's t-test over the seeds; at a
    single seed, against the noise of the difference of two single runs (2 sqrt(2) ``seed_sd``).
    ``points`` is ``label_budget_frame``'s table.
    """
    scratch, tuned = LABEL_BUDGET_ARMS
    rows = []
    for share, group in points.groupby("share of labels"):
        a = group.loc[group["arm"] == tuned, "val_accuracy"].to_numpy()
        b = group.loc[group["arm"] == scratch, "val_accuracy"].to_numpy()
        if not len(a) or not len(b):
            continue
        gain = a.mean() - b.mean()
        seeded = min(len(a), len(b)) >= 2
        p = welch(a, b) if seeded else float("nan")
        rows.append({"share of labels": share, "training faces": int(group["training faces"].iloc[0]),
                     "seeds": min(len(a), len(b)), scratch: b.mean(), tuned: a.mean(), "gain": gain, "p_value": p,
                     "test": "Welch" if seeded else "2√2 seed sd",
                     "verdict": verdict(gain, p_value=p) if seeded else verdict(gain, difference_threshold(seed_sd))})
    return pd.DataFrame(rows).set_index("share of labels")


def transfer_findings(arms, gains, seed_sd: float, plain_accuracy: float) -> dict:
    """Notebook 08's verdicts: each way of using ONet against training it from scratch (``arms``:
    ``compare_to_baseline``'s table over three seeds, judged by Welch's test), where pretraining pays on
    the label-budget curve (``pretraining_gains``' table), and whether the final model's family, one run of
    ``plain_accuracy`` at the same budget and split, beats ONet's best arm beyond seed noise (one run
    against a mean of that arm's runs, with one run's seed sd ``seed_sd``)."""
    scratch = LABEL_BUDGET_ARMS[0]
    verdicts = {arm: verdict(row["difference"], p_value=row["p_value"]) for arm, row in arms.drop(index=scratch).iterrows()}
    best = arms["mean"].idxmax()
    plain_gap = plain_accuracy - arms.loc[best, "mean"]
    plain_threshold = difference_threshold(seed_sd, runs=(1, int(arms.loc[best, "runs"])))
    return {
        "verdicts": verdicts,
        "beat_scratch": [a for a, v in verdicts.items() if v == "holds"],
        "level_with_scratch": [a for a, v in verdicts.items() if v == "tie"],
        "below_scratch": [a for a, v in verdicts.items() if v == "reversed"],
        "best": best,
        "gain_most_at": float(gains["gain"].idxmax()) if len(gains) else float("nan"),
        "gain_holds_at": [float(s) for s in gains.index[gains["verdict"] == "holds"]],
        "plain_gap": float(plain_gap), "plain_threshold": float(plain_threshold),
        "plain_verdict": verdict(plain_gap, plain_threshold),
    }
