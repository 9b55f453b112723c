"""Notebook 03: every architecture with the same data, augmentation and budget, and the verdicts on
the original report's claims about them."""

from __future__ import annotations

import dataclasses
import math

from ..config import ExperimentConfig
from ..stats import difference_threshold
from .records import FAST_RESIDUAL, PROXY
from .verdicts import paired_finding

ARCHITECTURES = {
    "MLP": ("mlp", {}),
    "plain CNN, depth 2": ("plain_cnn", {"depth": 2}),
    "plain CNN, depth 4": ("plain_cnn", {"depth": 4}),
    "plain CNN, depth 6": ("plain_cnn", {"depth": 6}),
    "plain CNN, depth 8": ("plain_cnn", {"depth": 8}),
    "plain CNN, depth 6, avg pooling": ("plain_cnn", {"depth": 6, "pooling": "avg"}),
    "plain CNN, depth 6, early downsampling": ("plain_cnn", {"depth": 6, "early_downsample": True}),
    "residual CNN (report size)": ("residual_cnn", {}),
    "residual CNN, no 48x48 block": ("residual_cnn", FAST_RESIDUAL),
    "residual CNN, early downsampling": ("residual_cnn", {"early_downsample": True}),
    "ResNet-18 (torchvision)": ("resnet18", {}),
}


def architecture_comparison() -> dict[str, ExperimentConfig]:
    """Notebook 03: every architecture with the same data, augmentation and budget."""
    return {
        label: dataclasses.replace(PROXY, model=name, model_kwargs=kwargs, augment="hflip+shift")
        for label, (name, kwargs) in ARCHITECTURES.items()
    }


def architecture_findings(accuracy: dict[str, float], noise: float, records: dict | None = None, labels=None) -> dict:
    """Notebook 03's verdicts on the original report's claims, from each architecture's validation
    accuracy (``ARCHITECTURES``' labels; one seed each) and one run's seed sd ``noise``: two single runs
    are told apart beyond 2√2 sd (``stats.difference_threshold``) and, where their ``records`` (by label)
    hold predictions for the validation ``labels``, by McNemar's test as well (``paired_finding``).
    A missing label (fast mode trains two models) counts as NaN."""
    threshold = difference_threshold(noise)
    accuracy = {label: accuracy.get(label, math.nan) for label in ARCHITECTURES}
    depths = {kwargs["depth"]: accuracy[label] for label, (name, kwargs) in ARCHITECTURES.items()
              if name == "plain_cnn" and set(kwargs) == {"depth"} and label in accuracy}
    early = {"plain": accuracy["plain CNN, depth 6, early downsampling"],
             "residual": accuracy["residual CNN, early downsampling"]}
    ranked = sorted(accuracy, key=lambda label: (not math.isnan(accuracy[label]), accuracy[label]), reverse=True)
    best_plain_depth = max(depths, key=lambda d: (not math.isnan(depths[d]), depths[d]))

    def paired(better, worse):
        return paired_finding(accuracy, better, worse, threshold, records, labels)

    return {
        "threshold": threshold,
        "depths": depths,
        "deeper_plain": {d: a for d, a in depths.items() if d >= 4},
        "mlp_below_deeper_plain": accuracy["MLP"] < min(a for d, a in depths.items() if d >= 4),  # False on NaN
        "early": early, "early_stuck": all(0.30 <= a <= 0.40 for a in early.values()),
        "pooling": paired("plain CNN, depth 6", "plain CNN, depth 6, avg pooling"),  # max over average pooling
        "best_plain_depth": best_plain_depth,
        "skip": paired("residual CNN (report size)", f"plain CNN, depth {best_plain_depth}"),
        "best": ranked[0], "runner_up": ranked[1],
        "best_over_runner_up": paired(ranked[0], ranked[1]),
    }
