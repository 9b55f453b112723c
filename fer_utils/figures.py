"""Saving figures under fixed names, so the README and the report can show them."""

from __future__ import annotations

import matplotlib.pyplot as plt

from .paths import FIGURES_DIR
from .storage import atomic_write


def save_fig(name: str, fig=None, dpi: int = 110):
    """Save ``fig`` (default: the current figure) as ``figures/<name>.png`` and return the path."""
    fig = fig or plt.gcf()
    fig.tight_layout()
    return atomic_write(FIGURES_DIR / f"{name}.png", lambda f: fig.savefig(f, format="png", dpi=dpi))
