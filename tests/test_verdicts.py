"""fer_utils.course.verdicts: the one rule for comparisons (holds / tie / reversed) and targets (met / missed)."""

import pytest

from fer_utils.course import targets
from fer_utils.course.verdicts import COMPARISON_VERDICTS, TARGET_VERDICTS, verdict


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
