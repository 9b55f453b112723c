"""Emotions over time: the per-frame CSV that ``python -m fer_utils video`` writes, as the main
face's emotion probabilities against time, smoothed, and plotted.

The main face of a frame is its largest box (the person nearest the camera). A frame without a
face is a gap in the timeline, not a zero. Smoothing is a centred rolling mean over
``smooth_s`` seconds: single-frame flickers (a blink, a detection on a turned head) fade, while a
change of expression that lasts longer than the window stays.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .config import CLASSES
from .storage import atomic_write

SMOOTH_S = 0.5


def main_face(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per frame of a ``video`` CSV (every frame from the first to the last): time and the
    probabilities of the frame's largest face, NaN where the frame has no face."""
    probabilities = [f"p_{c}" for c in CLASSES]
    missing = {"frame", "time_s", "w", "h", *probabilities} - set(rows.columns)
    if missing:
        raise ValueError(f"not a `video` CSV: the columns {sorted(missing)} are missing")
    if rows.empty:
        raise ValueError("the video CSV holds no face: there is no timeline to draw")
    largest = (rows.assign(area=rows["w"] * rows["h"]).sort_values(["frame", "area"], ascending=[True, False])
               .drop_duplicates("frame").set_index("frame"))
    frames = pd.RangeIndex(int(rows["frame"].min()), int(rows["frame"].max()) + 1, name="frame")
    out = largest.reindex(frames)[["time_s", *probabilities]]
    # frames without a face keep their time: the CSV's times are frame / fps
    step = float(np.nanmedian(np.diff(largest["time_s"].to_numpy()) / np.diff(largest.index.to_numpy()))) if len(largest) > 1 else 0.0
    out["time_s"] = out["time_s"].fillna(pd.Series(out.index * step, index=out.index))
    return out.rename(columns=dict(zip(probabilities, CLASSES, strict=True)))


def timeline(csv_path: str | os.PathLike, smooth_s: float = SMOOTH_S) -> pd.DataFrame:
    """The main face's emotion probabilities against time (index ``time_s``; one column per class),
    each smoothed by a centred rolling mean over ``smooth_s`` seconds."""
    per_frame = main_face(pd.read_csv(csv_path))
    times = per_frame["time_s"].to_numpy()
    fps = 1 / np.median(np.diff(times)) if len(times) > 1 and np.median(np.diff(times)) > 0 else 1.0
    window = max(1, round(smooth_s * fps))
    smoothed = per_frame[list(CLASSES)].rolling(window, center=True, min_periods=1).mean()
    smoothed.loc[per_frame[list(CLASSES)].isna().all(axis=1)] = np.nan  # keep the gaps
    return smoothed.set_index(pd.Index(times, name="time_s"))


def plot_timeline(frame: pd.DataFrame, path: str | os.PathLike | None = None, title: str = ""):
    """Each emotion's smoothed probability against time (``timeline``'s frame); saved as a PNG to
    ``path`` (atomically) when given. Returns the matplotlib Figure (made without pyplot)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.6), layout="constrained")
    ax = fig.add_subplot()
    for k, emotion in enumerate(CLASSES):
        ax.plot(frame.index, frame[emotion], label=emotion, color=f"C{k}", lw=1.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("probability (smoothed)")
    ax.set_ylim(0, 1)
    ax.set_title(title or "Emotions of the main face over time", fontsize=10)
    ax.legend(ncol=len(CLASSES), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False)
    ax.grid(alpha=0.3)
    if path is not None:
        atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=120))
    return fig
