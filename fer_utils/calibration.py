"""Calibration: does a predicted probability of 0.8 come true 80% of the time?"""

from __future__ import annotations

import numpy as np
import pandas as pd


def reliability_table(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> pd.DataFrame:
    """Bin predictions by confidence (the top probability) into ``n_bins`` equal-width bins.

    probs: (N, C); labels: (N,). One row per non-empty bin: its range, the mean confidence,
    the accuracy and the count.
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    # bin i holds confidences in (edges[i], edges[i+1]]
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = bins == b
        if inside.any():
            rows.append({"low": edges[b], "high": edges[b + 1], "confidence": confidence[inside].mean(),
                         "accuracy": correct[inside].mean(), "count": int(inside.sum())})
    return pd.DataFrame(rows)


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """ECE: the count-weighted mean of |accuracy - confidence| over the confidence bins."""
    table = reliability_table(probs, labels, n_bins)
    return float((table["count"] * (table["accuracy"] - table["confidence"]).abs()).sum() / len(labels))
