"""fer_utils.course.verdicts: the one rule for comparisons (holds / tie / reversed) and targets (met / missed)."""

import numpy as np
import pytest

import fer_utils as fu
from fer_utils.course import targets
from fer_utils.course.verdicts import (
    COMPARISON_VERDICTS,
    TARGET_VERDICTS,
    gains_frame,
    seeded_gain,
    verdict,
)


def test_a_comparison_needs_every_yardstick_given_to_agree():
    assert verdict(0.02, threshold=0.0116) == "holds"
    assert verdict(-0.02, threshold=0.0116) == "reversed"
    assert verdict(0.01, threshold=0.0116) == "tie"  # +1.0 point: within two runs' noise
    assert verdict(0.02, threshold=0.0116, p_value=0.2) == "tie"  # the paired test disagrees
    assert verdict(0.01, p_value=0.001) == "holds"
    assert verdict(0.0, p_value=0.001) == "tie"
    assert set(COMPARISON_VERDICTS) == {"holds", "tie", "reversed"}
    with pytest.raises(ValueError, match="yardstick"):
        verdict(0.02)


def test_a_target_is_met_on_its_side_of_the_bound():
    at_least, at_most = targets.Target(0.6, "test"), targets.Target(0.05, "test", higher_is_better=False)
    assert [verdict(v, target=at_least) for v in (0.59, 0.6, 0.61)] == ["missed", "met", "met"]
    assert [verdict(v, target=at_most) for v in (0.04, 0.05, 0.06)] == ["met", "met", "missed"]


@pytest.mark.parametrize(("quartiles", "expected"), [
    ((0.8, 0.95), "met"), ((0.9, 1.1), "at the target"), ((1.05, 1.2), "missed"), ((1.0, 1.0), "met")])
def test_a_timing_meets_its_target_by_its_interquartile_range(quartiles, expected):
    ms = targets.Target(1.0, "test", higher_is_better=False)
    assert verdict(sum(quartiles) / 2, target=ms, quartiles=quartiles) == expected
    fps = targets.Target(30.0, "test")  # at least: read off the other side of the range
    assert verdict(0, target=fps, quartiles=(25.0, 35.0)) == "at the target"
    assert verdict(0, target=fps, quartiles=(31.0, 35.0)) == "met"
    assert expected in TARGET_VERDICTS


def test_every_target_the_course_states_says_where_it_comes_from():
    stated = [*targets.FINAL_MODEL_TTA.values(), *targets.FINAL_MODEL_ONE_PASS.values(), *targets.PIPELINE.values()]
    assert all(isinstance(t, targets.Target) and len(t.source) > 20 for t in stated)
    assert targets.VIDEO_END_TO_END in targets.PIPELINE.values()


def test_a_change_trained_from_several_seeds_holds_only_where_every_pair_and_the_mean_agree():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 2000)
    right = lambda share: np.where(rng.random(2000) < share, labels, (labels + 1) % 7)  # noqa: E731
    predicted = {"with 0": right(0.70), "without 0": right(0.60), "with 1": right(0.69), "without 1": right(0.61)}
    pairs = {"seed 0": ("with 0", "without 0"), "seed 1": ("with 1", "without 1")}
    found = seeded_gain(labels, predicted, pairs, threshold=0.01)
    for seed, (a, b) in pairs.items():
        assert found["pairs"][seed] == fu.stats.mcnemar(predicted[a] == labels, predicted[b] == labels)
    gain = np.mean([(predicted[a] == labels).mean() - (predicted[b] == labels).mean() for a, b in pairs.values()])
    assert found["mean gain"]["difference"] == pytest.approx(gain) and found["mean gain"]["verdict"] == "holds"
    assert found["accuracy"]["with 0"] == fu.stats.accuracy_with_interval(labels, predicted["with 0"])
    assert seeded_gain(labels, predicted, pairs, threshold=0.2)["mean gain"]["verdict"] == "tie"  # inside the seed noise
    predicted["with 1"] = predicted["without 1"].copy()  # one seed gains nothing: its p = 1 keeps the verdict a tie
    tied = seeded_gain(labels, predicted, pairs, threshold=0.01)
    assert tied["mean gain"]["verdict"] == "tie"
    table = gains_frame({"change": {"seeds": [0, 1], "one pass": found, "TTA flip": tied}})
    assert list(table.index) == [("change", "one pass"), ("change", "TTA flip")]
    p0 = found["pairs"]["seed 0"]["p_value"]
    assert table.loc[("change", "one pass"), "seed 0"] == f"{100 * found['pairs']['seed 0']['difference']:+.2f} (p = {p0:.2g})"
    assert table.loc[("change", "TTA flip"), "seed 1"] == "+0.00 (p = 1)"
    assert list(table["verdict"]) == ["holds", "tie"]
