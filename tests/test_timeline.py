"""Emotions over time from a `video` CSV: the main face, smoothing, gaps, the plot."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import fer_utils as fu
from fer_utils import timeline

CLASSES = list(fu.CLASSES)


def video_csv(path, frames=20, fps=10.0, gap=()):
    """Two faces per frame: a small one always 'angry', a large one 'neutral' that turns 'happy' at
    frame 10; frames in ``gap`` have no face."""
    rows = []
    for f in range(frames):
        if f in gap:
            continue
        big = np.eye(7)[CLASSES.index("happy" if f >= frames // 2 else "neutral")]
        small = np.eye(7)[CLASSES.index("angry")]
        for i, (box, p) in enumerate([((10, 10, 20, 20), small), ((100, 50, 80, 80), big)]):
            rows.append({"frame": f, "time_s": f / fps, "face": i, "x": box[0], "y": box[1], "w": box[2], "h": box[3],
                         "emotion": CLASSES[int(p.argmax())], **{f"p_{c}": v for c, v in zip(CLASSES, p, strict=True)}})
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_the_main_face_is_the_largest_and_gaps_stay_gaps(tmp_path):
    rows = pd.read_csv(video_csv(tmp_path / "v.csv", gap=(4, 5)))
    per_frame = timeline.main_face(rows)
    assert list(per_frame.index) == list(range(20)) and per_frame["angry"].max() == 0  # never the small face
    assert per_frame.loc[[4, 5], CLASSES].isna().all().all()
    assert per_frame.loc[5, "time_s"] == pytest.approx(0.5)  # a gap keeps its time
    with pytest.raises(ValueError, match="missing"):
        timeline.main_face(rows.drop(columns="w"))
    with pytest.raises(ValueError, match="no face"):
        timeline.main_face(rows.iloc[:0])


def test_smoothing_is_a_centred_mean_over_the_window(tmp_path):
    frame = timeline.timeline(video_csv(tmp_path / "v.csv", fps=10.0), smooth_s=0.5)  # a 5-frame window
    assert frame.index.name == "time_s" and list(frame.columns) == CLASSES
    np.testing.assert_allclose(frame[CLASSES].sum(axis=1), 1.0)
    happy = frame["happy"].to_numpy()
    assert happy[0] == 0 and happy[-1] == 1 and happy[10] == pytest.approx(3 / 5)  # frames 8-12: three happy
    assert np.all(np.diff(happy) >= 0)  # the step is softened, not moved
    raw = timeline.timeline(video_csv(tmp_path / "w.csv"), smooth_s=0.0)
    assert raw["happy"].tolist() == [0.0] * 10 + [1.0] * 10


def test_the_plot_is_written_as_a_png(tmp_path):
    frame = timeline.timeline(video_csv(tmp_path / "v.csv", gap=(3,)))
    fig = timeline.plot_timeline(frame, tmp_path / "plot.png", title="test")
    assert {t.get_text() for t in fig.axes[0].get_legend().get_texts()} == set(CLASSES)
    with Image.open(tmp_path / "plot.png") as image:
        assert image.format == "PNG" and image.size[0] > 500
