"""Saving figures under fixed names, so the README and the report can show them, and the reference line
every accuracy plot carries (the majority class: what a model that always answers it would score)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .paths import FIGURES_DIR
from .runtime import fast_mode
from .storage import atomic_write


def save_fig(name: str, fig=None, dpi: int = 110):
    """Save ``fig`` (default: the current figure) as ``figures/<name>.png`` and return the path.

    In fast mode (CI) figures go to figures/fast/, ignored by git, so the report's stay as they are.
    """
    fig = fig or plt.gcf()
    if fig.get_layout_engine() is None:  # a figure made with layout="constrained" keeps its own layout
        fig.tight_layout()
    folder = FIGURES_DIR / "fast" if fast_mode() else FIGURES_DIR
    return atomic_write(folder / f"{name}.png", lambda f: fig.savefig(f, format="png", dpi=dpi))


def majority_share(labels) -> tuple[int, float]:
    """The most frequent class of ``labels`` (n,) and its share: the accuracy of always answering it."""
    counts = np.bincount(np.asarray(labels))
    return int(counts.argmax()), float(counts.max() / counts.sum())


def majority_line(ax, labels, classes, axis: str = "y", scale: float = 100.0):
    """Draw the majority-class accuracy of ``labels`` on ``ax`` (a horizontal line for ``axis="y"``,
    vertical for ``"x"``), in the plot's units (``scale`` 100 for percent), labelled for the legend."""
    cls, share = majority_share(labels)
    draw = ax.axhline if axis == "y" else ax.axvline
    return draw(scale * share, color="gray", linestyle=":", linewidth=1.2,
                label=f"always '{classes[cls]}' (majority class): {share:.1%}")
