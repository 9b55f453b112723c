"""The misclassification explorer of notebook 04: the selection logic, and its ipywidgets UI.

The logic (``select``, ``page_of``, ``most_confused_pairs``) is plain functions, tested without a
browser; ``MisclassificationExplorer`` wires them to widgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

ALL = -1  # "any class" in the explorer's class filters


def select(labels: np.ndarray, probs: np.ndarray, true_class: int = ALL, predicted_class: int = ALL,
           errors_only: bool = True, most_confident_first: bool = True) -> np.ndarray:
    """Indices of the examples with the given true and predicted class (``ALL`` for any),
    sorted by the confidence of the prediction. labels: (N,); probs: (N, C)."""
    predicted = probs.argmax(axis=1)
    keep = np.ones(len(labels), bool)
    if true_class != ALL:
        keep &= labels == true_class
    if predicted_class != ALL:
        keep &= predicted == predicted_class
    if errors_only:
        keep &= predicted != labels
    idx = np.flatnonzero(keep)
    confidence = probs[idx].max(axis=1)
    order = np.argsort(-confidence if most_confident_first else confidence, kind="stable")
    return idx[order]


def page_of(indices: np.ndarray, page: int, page_size: int) -> tuple[np.ndarray, int]:
    """The ``page``-th (0-based) slice of ``indices`` and the number of pages (at least 1)."""
    pages = max(1, math.ceil(len(indices) / page_size))
    page = min(max(page, 0), pages - 1)
    return indices[page * page_size : (page + 1) * page_size], pages


def most_confused_pairs(cm: np.ndarray, classes, k: int = 5) -> pd.DataFrame:
    """The ``k`` largest off-diagonal cells of a confusion matrix (rows = true class):
    the count and its share of the true class."""
    rows = [{"true": classes[i], "predicted": classes[j], "count": int(cm[i, j]),
             "share of true class": cm[i, j] / cm[i].sum() if cm[i].sum() else 0.0}
            for i in range(len(classes)) for j in range(len(classes)) if i != j]
    return pd.DataFrame(rows).sort_values("count", ascending=False, kind="stable").head(k).reset_index(drop=True)


def plot_faces(images, labels, probs, classes, indices, columns: int = 6):
    """A grid of faces, each titled with its index, true class and top prediction; returns the figure."""
    import matplotlib.pyplot as plt

    rows = max(1, math.ceil(len(indices) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * 1.8, rows * 2.1), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices, strict=False):
        p = probs[i]
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"#{i} true {classes[labels[i]]}\n{classes[p.argmax()]} {p.max():.0%}", fontsize=8)
    return fig


class MisclassificationExplorer:
    """Choose a true and a predicted class, sort by confidence, page through the faces, and pick
    one to see its probabilities and its saliency map.

    images: (N, 48, 48) uint8; labels: (N,); probs: (N, C); ``saliency(index, class) -> (48, 48)``.
    """

    def __init__(self, images, labels, probs, classes, saliency: Callable[[int, int], np.ndarray] | None = None,
                 page_size: int = 12, columns: int = 6):
        import ipywidgets as w

        self.images, self.labels, self.probs, self.classes = images, labels, probs, list(classes)
        self.saliency, self.page_size, self.columns = saliency, page_size, columns
        options = [("all", ALL)] + [(c, i) for i, c in enumerate(self.classes)]
        self.true_class = w.Dropdown(options=options, value=ALL, description="true")
        self.predicted_class = w.Dropdown(options=options, value=ALL, description="predicted")
        self.errors_only = w.Checkbox(value=True, description="errors only")
        self.order = w.ToggleButtons(options=[("most confident", True), ("least confident", False)], value=True)
        self.page = w.BoundedIntText(value=1, min=1, max=1, description="page")
        self.pick = w.Dropdown(options=[], description="details")
        self.status = w.HTML()
        # Figures are shown as PNG images, not captured matplotlib output, so the widget works the
        # same in a live kernel and in a headless run (nbclient, CI).
        self.grid = w.Image(format="png")
        self.details = w.Image(format="png")
        for control in (self.true_class, self.predicted_class, self.errors_only, self.order):
            control.observe(self._filters_changed, names="value")
        self.page.observe(lambda _: self._show_page(), names="value")
        self.pick.observe(lambda _: self._show_details(), names="value")
        self.widget = w.VBox([
            w.HBox([self.true_class, self.predicted_class, self.errors_only]),
            w.HBox([self.order, self.page, self.status]), self.grid, self.pick, self.details,
        ])
        self._filters_changed()

    def _filters_changed(self, _=None) -> None:
        self.selection = select(self.labels, self.probs, self.true_class.value, self.predicted_class.value,
                                self.errors_only.value, self.order.value)
        pages = page_of(self.selection, 0, self.page_size)[1]
        self.page.max = pages
        if self.page.value != 1:
            self.page.value = 1  # triggers _show_page
        else:
            self._show_page()

    def _show_page(self) -> None:
        self.shown, pages = page_of(self.selection, self.page.value - 1, self.page_size)
        self.status.value = f"{len(self.selection)} images, page {self.page.value} of {pages}"
        if len(self.shown):
            self.grid.value = _png(plot_faces(self.images, self.labels, self.probs, self.classes, self.shown, self.columns))
        else:
            self.grid.value = b""
            self.status.value += " (no image matches these filters)"
        self.pick.options = [(f"#{i}", int(i)) for i in self.shown]

    def _show_details(self) -> None:
        import matplotlib.pyplot as plt

        i = self.pick.value
        if i is None:
            self.details.value = b""
            return
        panels = 3 if self.saliency else 2
        fig, axes = plt.subplots(1, panels, figsize=(4 * panels, 3))
        axes[0].imshow(self.images[i], cmap="gray", vmin=0, vmax=255)
        axes[0].set_title(f"#{i}: true {self.classes[self.labels[i]]}")
        axes[0].axis("off")
        axes[1].barh(self.classes, self.probs[i])
        axes[1].invert_yaxis()
        axes[1].set_xlim(0, 1)
        axes[1].set_title("predicted probabilities")
        if self.saliency:
            predicted = int(self.probs[i].argmax())
            axes[2].imshow(self.images[i], cmap="gray", vmin=0, vmax=255)
            axes[2].imshow(self.saliency(i, predicted), cmap="jet", alpha=0.45, vmin=0, vmax=1)
            axes[2].set_title(f"Grad-CAM for '{self.classes[predicted]}'")
            axes[2].axis("off")
        self.details.value = _png(fig)


def _png(fig) -> bytes:
    """The figure as PNG bytes, closed afterwards so that it is not also shown inline."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return buf.getvalue()
