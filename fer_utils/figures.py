"""Saving figures under fixed names, so the README and the report can show them."""

from __future__ import annotations

import matplotlib.pyplot as plt

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
