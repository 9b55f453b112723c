"""The misclassification explorer of notebook 05: the selection logic, the static galleries, and
its ipywidgets UI (each face a button of its own, a small anywidget: a click on the face picks it).

The logic (``select``, ``audit_mask``, ``page_of``, ``page_status``, ``most_confused_pairs``,
``make_views``) is plain functions, tested without a browser; ``MisclassificationExplorer`` wires
them to widgets.

Nothing here touches pyplot's global state: figures are ``matplotlib.figure.Figure`` objects
rendered to PNG bytes, and faces are PNGs made by Pillow. JupyterLab (4.6 and later) may run widget
callbacks on a thread of their own, beside a running cell; pyplot's figure list and the inline
backend's ``flush_figures`` would let one callback show or close another's figure. The explorer's
callbacks also take one lock, so two of them never redraw at once.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import io
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import anywidget
import numpy as np
import pandas as pd
import traitlets

ALL = -1  # "any class" in the explorer's class filters

# Notebook 01's audit, per face: the column of ``audit.audit_flags``, its short tag and its meaning.
FLAGS = {
    "twin": ("twin", "an exact copy is in the training set"),
    "conflict": ("conflict", "an exact copy carries another label"),
    "blank": ("blank", "blank image"),
}
# The explorer's audit filter: (label, key) as a Dropdown takes them; the legend under it says what each tag means.
AUDIT_FILTERS = [("any face", "any"), ("flagged by the audit", "flagged"), ("not flagged", "clean")] + [
    (tag, key) for key, (tag, _) in FLAGS.items()
]
RED = "#c0392b"  # the audit's colour: the tags on the faces and their legend
NO_PAIR, NO_PAIR_LABEL = (), "choose a pair"  # the pair menu's first entry (None would show an empty menu)
SPLITS = ("validation", "test", "PublicTest", "PrivateTest", "deduplicated test")


@dataclass
class View:
    """One split as the explorer shows it: faces, labels, probabilities, audit flags (a frame with a
    boolean column per ``FLAGS`` key) and ids (the number shown as ``#id``: the index in the split
    it comes from, so a test face keeps its number in PublicTest and the deduplicated test set)."""

    images: np.ndarray
    labels: np.ndarray
    probs: np.ndarray
    flags: pd.DataFrame
    ids: np.ndarray

    def __post_init__(self):
        n = len(self.images)
        if not (len(self.labels) == len(self.probs) == len(self.flags) == len(self.ids) == n):
            raise ValueError("images, labels, probs, flags and ids must have one row per face")

    def subset(self, mask: np.ndarray) -> View:
        return View(self.images[mask], self.labels[mask], self.probs[mask],
                    self.flags[mask].reset_index(drop=True), self.ids[mask])


def make_views(data, test_probs: np.ndarray, validation=None, validation_probs: np.ndarray | None = None,
               fitting_images: np.ndarray | None = None, audit_data=None) -> dict[str, View]:
    """The explorer's splits of ``data`` (a ``FER2013``): validation (when given, with its fitting part's
    images for the twin flag), test, PublicTest, PrivateTest and the deduplicated test set (no exact
    twin in the training set), each joined to notebook 01's audit of ``audit_data`` (default ``data``;
    the whole dataset when ``data`` is a fast-mode subset, so the flags mean what notebook 01 found)."""
    from .audit import audit_flags

    audit_data = audit_data or data
    pool_images = np.concatenate([audit_data.train.images, audit_data.test.images])
    pool_labels = np.concatenate([audit_data.train.labels, audit_data.test.labels])
    test = data.test
    test_view = View(test.images, test.labels, test_probs,
                     audit_flags(test.images, test.labels, audit_data.train.images, pool_images, pool_labels),
                     np.arange(len(test)))
    views = {}
    if validation is not None:
        reference = fitting_images if fitting_images is not None else np.zeros((0, 48, 48), np.uint8)
        views["validation"] = View(validation.images, validation.labels, validation_probs,
                                   audit_flags(validation.images, validation.labels, reference, pool_images, pool_labels),
                                   np.arange(len(validation)))
    views["test"] = test_view
    for source in ("PublicTest", "PrivateTest"):
        views[source] = test_view.subset(test.sources == source)
    views["deduplicated test"] = test_view.subset(~test_view.flags["twin"].to_numpy())
    return views


# ---------------------------------------------------------------------------------------------- logic


def select(labels: np.ndarray, probs: np.ndarray, true_class: int = ALL, predicted_class: int = ALL,
           errors_only: bool = True, most_confident_first: bool = True, mask: np.ndarray | None = None) -> np.ndarray:
    """Indices of the examples with the given true and predicted class (``ALL`` for any), among
    ``mask`` (a boolean filter, e.g. ``audit_mask``), sorted by the confidence of the prediction.
    labels: (N,); probs: (N, C)."""
    predicted = probs.argmax(axis=1)
    keep = np.ones(len(labels), bool) if mask is None else np.asarray(mask, bool).copy()
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


def audit_mask(flags: pd.DataFrame, which: str = "any") -> np.ndarray:
    """Boolean mask of the faces an audit filter keeps: ``any``, ``flagged`` (any flag), ``clean``
    (no flag) or one flag's key (``twin``, ``conflict``, ``blank``)."""
    columns = list(FLAGS)
    any_flag = flags[columns].to_numpy(bool).any(axis=1) if len(flags) else np.zeros(0, bool)
    if which == "any":
        return np.ones(len(flags), bool)
    if which == "flagged":
        return any_flag
    if which == "clean":
        return ~any_flag
    if which in FLAGS:
        return flags[which].to_numpy(bool)
    raise ValueError(f"unknown audit filter {which!r}; expected one of {[k for _, k in AUDIT_FILTERS]}")


def flag_tags(flags: pd.DataFrame, i: int) -> list[str]:
    """The short tags of the flags of row ``i`` ([] when the audit found nothing)."""
    return [FLAGS[key][0] for key in FLAGS if bool(flags[key].iloc[i])]


def page_of(indices: np.ndarray, page: int, page_size: int) -> tuple[np.ndarray, int]:
    """The ``page``-th (0-based) slice of ``indices`` and the number of pages (at least 1)."""
    pages = max(1, math.ceil(len(indices) / page_size))
    page = min(max(page, 0), pages - 1)
    return indices[page * page_size : (page + 1) * page_size], pages


def page_status(total: int, page: int, page_size: int, right: int = 0) -> str:
    """The status line of a 0-based ``page``: 'showing 13-24 of 642', or what to do when nothing matches;
    ``right``: the faces the other filters keep that "errors only" hides (the model gets them right)."""
    if total == 0 and right:
        return f"no mistake: the model gets every face these filters keep right ({right:,}); turn 'errors only' off to see them"
    if total == 0:
        return "no face matches these filters: widen them (class 'all', audit 'any face', errors only off)"
    pages = max(1, math.ceil(total / page_size))
    page = min(max(page, 0), pages - 1)
    first = page * page_size + 1
    return f"showing {first}-{min(total, first + page_size - 1)} of {total:,}"


def most_confused_pairs(cm: np.ndarray, classes, k: int = 5) -> pd.DataFrame:
    """The ``k`` largest off-diagonal cells of a confusion matrix (rows = true class):
    the count and its share of the true class."""
    rows = [{"true": classes[i], "predicted": classes[j], "count": int(cm[i, j]),
             "share of true class": cm[i, j] / cm[i].sum() if cm[i].sum() else 0.0}
            for i in range(len(classes)) for j in range(len(classes)) if i != j]
    return pd.DataFrame(rows).sort_values("count", ascending=False, kind="stable").head(k).reset_index(drop=True)


def confused_pairs(labels: np.ndarray, probs: np.ndarray, n_classes: int, k: int = 6) -> list[tuple[int, int, int]]:
    """The ``k`` most frequent (true, predicted, count) mistakes, most frequent first (no empty pair)."""
    cm = np.zeros((n_classes, n_classes), int)
    np.add.at(cm, (labels, probs.argmax(1)), 1)
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm, axis=None, kind="stable")[:k]
    return [(int(t), int(p), int(cm[t, p])) for t, p in zip(*np.unravel_index(order, cm.shape), strict=True) if cm[t, p]]


# -------------------------------------------------------------------------------------------- drawing


def face_png(image: np.ndarray, size: int = 96) -> bytes:
    """A 48x48 face as a PNG of ``size`` pixels (nearest neighbour, so the pixels stay visible)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, np.uint8)).resize((size, size), Image.NEAREST).save(buf, format="PNG")
    return buf.getvalue()


def figure_png(fig, dpi: int = 90) -> bytes:
    """A ``matplotlib.figure.Figure`` as PNG bytes (through its own Agg canvas: no pyplot)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def plot_faces(images, labels, probs, classes, indices, columns: int = 6, flags: pd.DataFrame | None = None,
               ids=None, title: str | None = None):
    """A grid of faces, each titled with its id, true class, top prediction and audit flags; returns a
    ``matplotlib.figure.Figure`` (not registered with pyplot: show it with ``display(fig)``)."""
    from matplotlib.figure import Figure

    rows = max(1, math.ceil(len(indices) / columns))
    fig = Figure(figsize=(columns * 1.8, rows * 2.2 + (0.4 if title else 0)))
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices, strict=False):
        p = probs[i]
        tags = flag_tags(flags, i) if flags is not None else []
        ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
        ax.set_title(f"#{ids[i] if ids is not None else i} true {classes[labels[i]]}\n{classes[p.argmax()]} {p.max():.0%}"
                     + (f"\n[{', '.join(tags)}]" if tags else ""), fontsize=8, color="C3" if tags else "black")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def pair_gallery(view: View, classes, k_pairs: int = 6, per_pair: int = 6):
    """The static gallery: for each of the ``k_pairs`` most frequent confusions, its ``per_pair`` most
    confident mistakes, one row per pair, with notebook 01's audit flags in red. Returns a Figure."""
    from matplotlib.figure import Figure

    pairs = confused_pairs(view.labels, view.probs, len(classes), k_pairs)
    fig = Figure(figsize=(per_pair * 1.55 + 1.6, max(1, len(pairs)) * 1.95))
    axes = fig.subplots(max(1, len(pairs)), per_pair, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for row, (t, p, count) in enumerate(pairs):
        chosen = select(view.labels, view.probs, t, p)[:per_pair]
        axes[row, 0].text(-0.12, 0.5, f"{classes[t]}\nas {classes[p]}\n({count} faces)", transform=axes[row, 0].transAxes,
                          ha="right", va="center", fontsize=9, fontweight="bold")
        for ax, i in zip(axes[row], chosen, strict=False):
            tags = flag_tags(view.flags, i)
            ax.imshow(view.images[i], cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"#{view.ids[i]} {view.probs[i].max():.0%}" + (f"\n[{', '.join(tags)}]" if tags else ""),
                         fontsize=7.5, color="C3" if tags else "black")
    fig.suptitle("The most confident mistakes of the most frequent confusions (true class as predicted class);\n"
                 "in red, the faces notebook 01's audit flags", fontsize=10)
    fig.tight_layout(rect=(0.09, 0, 1, 1))
    return fig


def details_figure(image, label: int, probs: np.ndarray, classes, title: str, saliency: np.ndarray | None = None):
    """The details of one face: the face, its probabilities (true class marked) and, when given, the
    Grad-CAM maps (2, 48, 48) of the predicted and of the true class side by side. Returns a Figure."""
    from matplotlib.figure import Figure

    predicted = int(np.argmax(probs))
    panels = 2 + (0 if saliency is None else 2)
    fig = Figure(figsize=(3.1 * panels, 3.0))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    axes[0].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[0].set_title(title, fontsize=9)
    axes[0].axis("off")
    colors = ["C2" if k == label else ("C3" if k == predicted else "C0") for k in range(len(classes))]
    axes[1].barh([f"{c} (true)" if k == label else c for k, c in enumerate(classes)], probs, color=colors)
    axes[1].invert_yaxis()
    axes[1].set_xlim(0, 1)
    axes[1].set_title("probabilities (green: true, red: predicted)", fontsize=9)
    axes[1].tick_params(labelsize=8)
    if saliency is not None:
        for ax, cam, k, role in zip(axes[2:], saliency, (predicted, label), ("predicted", "true"), strict=True):
            ax.imshow(image, cmap="gray", vmin=0, vmax=255)
            ax.imshow(cam, cmap="jet", alpha=0.45, vmin=0, vmax=1)
            ax.set_title(f"Grad-CAM, {role} class: {classes[k]}", fontsize=9)
            ax.axis("off")
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------------------------- widget


def _serialised(method):
    """Run a widget callback under the explorer's lock; skip it while the explorer sets its own controls."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        with self._lock:
            if self._quiet:
                return None
            return method(self, *args, **kwargs)

    return run


class MisclassificationExplorer:
    """Choose a split, a true and a predicted class (or jump to a confused pair) and an audit filter,
    sort by confidence, page through the faces, and click one to see its probabilities and the
    Grad-CAM maps of its predicted and true class.

    views: {split name: View} (``make_views``); ``saliency(images (N, 48, 48), classes) -> (N, 48, 48)``.
    The UI is ``self.widget``; every control carries a CSS class ``fer-*`` (the browser test finds them).
    The control bars and the grid (at most ``columns`` faces a row) wrap to the window's width.
    """

    def __init__(self, views: dict[str, View], classes, saliency: Callable[[np.ndarray, list[int]], np.ndarray] | None = None,
                 page_size: int = 12, columns: int = 6, split: str | None = None):
        import ipywidgets as w

        if not views:
            raise ValueError("the explorer needs at least one split")
        self.views, self.classes, self.saliency = views, list(classes), saliency
        self.page_size = page_size
        self._lock = threading.RLock()
        self._quiet = False
        self.selection = np.zeros(0, int)
        self.shown = np.zeros(0, int)
        self.right = 0  # the faces the filters keep that "errors only" hides, when it hides them all
        self.picked: int | None = None  # row of the current view whose details are shown

        # Widths: the split and class menus alike, the others as wide as their longest entry (never cut).
        classes_options = [("all", ALL)] + [(c, i) for i, c in enumerate(self.classes)]
        self.split = w.Dropdown(options=list(views), value=split or ("test" if "test" in views else next(iter(views))),
                                description="split", layout=w.Layout(width="220px"))
        self.true_class = w.Dropdown(options=classes_options, value=ALL, description="true", layout=w.Layout(width="220px"))
        self.predicted_class = w.Dropdown(options=classes_options, value=ALL, description="predicted",
                                          layout=w.Layout(width="220px"))
        self.errors_only = w.Checkbox(value=True, description="errors only", indent=False, layout=w.Layout(width="auto"))
        self.order = w.ToggleButtons(options=[("most confident", True), ("least confident", False)], value=True)
        self.audit = w.Dropdown(options=AUDIT_FILTERS, value="any", description="audit", layout=w.Layout(width="auto"))
        self.pair = w.Dropdown(options=[(NO_PAIR_LABEL, NO_PAIR)], value=NO_PAIR, description="confused",
                               layout=w.Layout(width="auto"))
        self.legend = w.HTML("audit tags, in red on the faces: " + "; ".join(
            f"<span style='color:{RED};font-weight:bold'>[{tag}]</span> {meaning}" for tag, meaning in FLAGS.values()))
        self.prev = w.Button(description="◀ prev", layout=w.Layout(width="80px"))
        self.next = w.Button(description="next ▶", layout=w.Layout(width="80px"))
        self.page = w.BoundedIntText(value=1, min=1, max=1, description="page", continuous_update=True,
                                     layout=w.Layout(width="150px"))
        self.status = w.HTML()
        self.cells = [_FaceButton(k, self._clicked) for k in range(page_size)]
        self.grid = w.GridBox(self.cells, layout=w.Layout(
            grid_template_columns="repeat(auto-fill, 118px)", grid_gap="6px", max_width=f"{columns * 124}px"))
        self.hint = w.HTML("<i>Pick a face: click it to see its probabilities and Grad-CAM maps.</i>")
        self.details_caption = w.HTML(layout=w.Layout(display="none"))
        self.details = w.Image(format="png", layout=w.Layout(display="none"))
        for widget, name in ((self.split, "split"), (self.true_class, "true"), (self.predicted_class, "predicted"),
                             (self.errors_only, "errors"), (self.order, "order"), (self.audit, "audit"),
                             (self.pair, "pair"), (self.legend, "legend"), (self.prev, "prev"), (self.next, "next"),
                             (self.page, "page"), (self.status, "status"), (self.grid, "grid"), (self.hint, "hint"),
                             (self.details, "details"), (self.details_caption, "details-caption")):
            widget.add_class(f"fer-{name}")
        self.split.observe(self._split_changed, names="value")
        for control in (self.true_class, self.predicted_class, self.errors_only, self.order, self.audit):
            control.observe(self._filters_changed, names="value")
        self.pair.observe(self._pair_chosen, names="value")
        self.page.observe(self._page_changed, names="value")
        self.prev.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(+1))

        def bar(*children) -> w.HBox:  # a row of controls that wraps when the window is narrow
            return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap", align_items="center"))

        self.widget = w.VBox([
            bar(self.split, self.true_class, self.predicted_class, self.errors_only),
            bar(self.order, self.audit, self.pair),
            self.legend,
            bar(self.prev, self.page, self.next, self.status),
            self.grid, self.hint, self.details_caption, self.details,
        ])
        self.widget.add_class("fer-explorer")
        with self._lock:
            self._refilter()

    # The view of the chosen split.
    @property
    def view(self) -> View:
        return self.views[self.split.value]

    def _ipython_display_(self):  # ``ui`` as the last line of a cell shows the widget
        from IPython.display import display

        display(self.widget)

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the explorer's callbacks (clicks wait) while a cell measures something, e.g. latency."""
        with self._lock:
            yield

    @contextlib.contextmanager
    def _setting(self) -> Iterator[None]:
        """Set controls without their callbacks running (they would redraw once per control)."""
        quiet, self._quiet = self._quiet, True
        try:
            yield
        finally:
            self._quiet = quiet

    # Callbacks: each runs under the lock, then redraws once.
    @_serialised
    def _split_changed(self, _=None) -> None:
        self.hide_details()  # the rows of another split are other faces
        self._refilter()

    @_serialised
    def _filters_changed(self, _=None) -> None:
        self._refilter()

    @_serialised
    def _pair_chosen(self, change) -> None:
        if change["new"] == NO_PAIR:
            return
        t, p = change["new"]
        with self._setting():
            self.true_class.value, self.predicted_class.value, self.errors_only.value = t, p, True
        self._refilter()

    @_serialised
    def _page_changed(self, _=None) -> None:
        self._show_page()

    @_serialised
    def step(self, delta: int) -> None:
        """Go ``delta`` pages forward (prev/next); clamped to the pages there are."""
        with self._setting():
            self.page.value = min(max(self.page.value + delta, self.page.min), self.page.max)
        self._show_page()

    @_serialised
    def _clicked(self, slot: int) -> None:
        if slot < len(self.shown):
            self.show_details(int(self.shown[slot]))

    # Redraws (called with the lock held).
    def _refilter(self) -> None:
        view = self.view
        mask = audit_mask(view.flags, self.audit.value)
        true_predicted = (self.true_class.value, self.predicted_class.value)
        self.selection = select(view.labels, view.probs, *true_predicted, self.errors_only.value, self.order.value, mask=mask)
        emptied = self.errors_only.value and not len(self.selection)  # e.g. blank faces: the model gets them all right
        self.right = len(select(view.labels, view.probs, *true_predicted, errors_only=False, mask=mask)) if emptied else 0
        pairs = confused_pairs(view.labels[mask], view.probs[mask], len(self.classes))  # counted within the audit filter
        with self._setting():
            self.pair.options = [(NO_PAIR_LABEL, NO_PAIR)] + [
                (f"{self.classes[t]} as {self.classes[p]} ({n})", (t, p)) for t, p, n in pairs]
            named = true_predicted in [v for _, v in self.pair.options] and self.errors_only.value  # the filters name a pair
            self.pair.value = true_predicted if named else NO_PAIR
            self.page.max = page_of(self.selection, 0, self.page_size)[1]
            self.page.value = 1
        self._show_page()

    def _show_page(self) -> None:
        view = self.view
        self.shown, pages = page_of(self.selection, self.page.value - 1, self.page_size)
        status = page_status(len(self.selection), self.page.value - 1, self.page_size, self.right)
        self.status.value = f"<b>{status}</b>" + (f" &nbsp; page {self.page.value} of {pages}" if len(self.selection) else "")
        for slot, cell in enumerate(self.cells):
            if slot < len(self.shown):
                i = int(self.shown[slot])
                cell.show(view.images[i], view.ids[i], self.classes[view.labels[i]],
                          self.classes[view.probs[i].argmax()], float(view.probs[i].max()), flag_tags(view.flags, i))
            else:
                cell.hide()
        self.grid.layout.display = "grid" if len(self.shown) else "none"
        self.prev.disabled = self.page.value <= 1
        self.next.disabled = self.page.value >= pages
        if self.picked is not None and self.picked not in self.shown:
            self.hide_details()  # the picked face left the page: its details would describe a face not shown

    def hide_details(self) -> None:
        self.picked = None
        self.details.layout.display = "none"
        self.details_caption.layout.display = "none"
        self.hint.layout.display = None

    def show_details(self, i: int) -> None:
        """Show the details of row ``i`` of the current view (the face a click picked)."""
        with self._lock:
            view = self.view
            label, predicted = int(view.labels[i]), int(view.probs[i].argmax())
            cams = None
            if self.saliency is not None:
                cams = np.asarray(self.saliency(view.images[[i, i]], [predicted, label]))
            tags = flag_tags(view.flags, i)
            title = f"#{view.ids[i]} ({self.split.value}): true {self.classes[label]}"
            fig = details_figure(view.images[i], label, view.probs[i], self.classes, title, cams)
            self.details.value = figure_png(fig)
            meanings = "; ".join(meaning for key, (tag, meaning) in FLAGS.items() if tag in tags)
            self.details_caption.value = (
                f"<b>#{view.ids[i]}</b>: true <b>{self.classes[label]}</b>, predicted <b>{self.classes[predicted]}</b> "
                f"({view.probs[i].max():.0%})" + (f" &nbsp; <span style='color:{RED}'>audit: {meanings}</span>" if tags else ""))
            self.picked = i
            self.details.layout.display = None
            self.details_caption.layout.display = None
            self.hint.layout.display = "none"


class _FaceButton(anywidget.AnyWidget):
    """One face of the grid, a button: the face over its caption (id, true class, prediction and, in red,
    its audit tags), wrapped to the button's width so nothing is cut off. A click on it picks the face."""

    _esm = """
    export default { render({ model, el }) {
      const button = Object.assign(document.createElement("button"), { className: "fer-pick", title: "show its details" });
      const face = document.createElement("img");
      const caption = document.createElement("div");
      button.append(face, caption);
      el.append(button);
      const show = () => { face.src = model.get("src"); caption.innerHTML = model.get("caption"); };
      model.on("change:src", show);
      model.on("change:caption", show);
      show();
      button.addEventListener("click", () => model.send({ type: "pick" }));
    } };
    """
    _css = """
    .fer-pick { display: flex; flex-direction: column; align-items: center; gap: 3px; width: 118px; height: 100%;
                padding: 4px; cursor: pointer; border: 1px solid var(--jp-border-color2, #ccc); border-radius: 4px;
                background: var(--jp-layout-color1, white); color: var(--jp-ui-font-color1, black);
                font: 11px/1.25 var(--jp-ui-font-family, sans-serif); overflow-wrap: anywhere; }
    .fer-pick:hover { border-color: var(--jp-brand-color1, #1976d2); }
    .fer-pick img { width: 96px; height: 96px; image-rendering: pixelated; }
    """
    src = traitlets.Unicode("").tag(sync=True)  # the face, a PNG as a data: URL
    caption = traitlets.Unicode("").tag(sync=True)  # HTML

    def __init__(self, slot: int, clicked: Callable[[int], None]):
        super().__init__(layout={"display": "none"})
        self.slot, self._clicked = slot, clicked
        self.add_class("fer-face")
        self.on_msg(lambda _widget, _content, _buffers: self.click())

    def click(self) -> None:
        """Pick this face: what a click on it in the browser does."""
        self._clicked(self.slot)

    def show(self, image, face_id, true: str, predicted: str, confidence: float, tags: list[str]) -> None:
        badge = "".join(f" <span style='color:{RED};font-weight:bold'>[{t}]</span>" for t in tags)
        with self.hold_sync():
            self.src = "data:image/png;base64," + base64.b64encode(face_png(image)).decode()
            self.caption = f"<b>#{face_id}</b> true <b>{true}</b><br>{predicted} {confidence:.0%}{badge}"
        self.layout.display = None

    def hide(self) -> None:
        self.layout.display = "none"
