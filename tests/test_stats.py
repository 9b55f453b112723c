"""fer_utils.stats against scipy, statsmodels and simulation."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sp

import fer_utils as fu
from fer_utils import stats


def test_the_accuracy_interval_is_wilsons_and_as_wide_as_the_course_says():
    low, high = stats.accuracy_interval(4852, 7178)  # the shipped model on the full test set
    ref = sp.binomtest(4852, 7178).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert high - low == pytest.approx(2 * 0.0108, abs=0.001)  # about +-1.1 points on 7,178 images
    half_low, half_high = stats.accuracy_interval(2469, 3589)
    assert half_high - half_low == pytest.approx(2 * 0.0152, abs=0.001)  # +-1.5 on each half
    assert stats.accuracy_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)
    assert stats.accuracy_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)


def test_accuracy_with_interval_counts_right_answers():
    y = np.array([0, 1, 2, 3, 4, 5, 6, 0, 1, 2])
    pred = y.copy()
    pred[:3] = 6
    out = stats.accuracy_with_interval(y, pred)
    assert out["accuracy"] == 0.7 and out["n"] == 10
    assert (out["low"], out["high"]) == stats.accuracy_interval(7, 10)
    assert stats.format_interval(out["accuracy"], out["low"], out["high"]).startswith("70.0% [")


@pytest.mark.parametrize("correct, n", [(11, 10), (-1, 10), (0, 0)])
def test_impossible_counts_are_refused(correct, n):
    with pytest.raises(ValueError):
        stats.accuracy_interval(correct, n)


def test_mcnemar_is_the_exact_binomial_test_on_the_images_where_the_models_disagree():
    rng = np.random.default_rng(0)
    a = rng.random(2000) < 0.66
    b = np.where(rng.random(2000) < 0.1, ~a, a)  # B disagrees with A on about 10% of the images
    b[:40] = False  # ... and misses 40 more
    out = stats.mcnemar(a, b)
    assert out["a_only"] == int((a & ~b).sum()) and out["b_only"] == int((~a & b).sum())
    ref = sp.binomtest(out["a_only"], out["a_only"] + out["b_only"], 0.5).pvalue
    assert out["p_value"] == pytest.approx(ref, rel=1e-9)
    assert out["difference"] == pytest.approx(a.mean() - b.mean())
    assert stats.mcnemar(a, a)["p_value"] == 1.0  # never disagree: no evidence either way
    with pytest.raises(ValueError, match="equal-length"):
        stats.mcnemar(a, b[:-1])


def test_welch_matches_scipy_and_needs_two_runs_a_side():
    a, b = [0.62, 0.63, 0.615], [0.60, 0.605, 0.598]
    assert stats.welch(a, b) == pytest.approx(sp.ttest_ind(a, b, equal_var=False).pvalue)
    assert np.isnan(stats.welch([0.6], b))


def test_the_difference_of_two_single_runs_is_sqrt_2_noisier_than_one():
    rng = np.random.default_rng(1)
    sd = 0.004
    runs = rng.normal(0.6, sd, size=(200_000, 2))  # pairs of runs with no real difference
    gaps = runs[:, 0] - runs[:, 1]
    assert gaps.std() == pytest.approx(stats.difference_sd(sd), rel=0.01)
    # the 2 * sqrt(2) * sd threshold calls a no-difference pair "beyond noise" 4.6% of the time ...
    assert np.mean(np.abs(gaps) > stats.difference_threshold(sd)) == pytest.approx(2 * sp.norm.sf(2), abs=0.003)
    # ... a 2 * sd threshold (one run's noise) three times as often
    assert np.mean(np.abs(gaps) > 2 * sd) == pytest.approx(2 * sp.norm.sf(np.sqrt(2)), abs=0.003)


def test_the_interval_is_the_wilson_score_formula():
    for k, n in [(46, 100), (0, 20), (20, 20), (1795, 1800)]:
        p, z = k / n, sp.norm.ppf(0.975)
        centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
        half = z / (1 + z**2 / n) * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
        assert stats.accuracy_interval(k, n) == pytest.approx((centre - half, centre + half), abs=1e-9)


def test_mcnemar_from_counts_is_two_sided():
    assert stats.mcnemar_from_counts(10, 2)["p_value"] == pytest.approx(2 * sp.binom.cdf(2, 12, 0.5))  # 158 / 4096
    assert stats.mcnemar_from_counts(5, 5)["p_value"] == pytest.approx(1.0)
    assert stats.mcnemar_from_counts(0, 0)["p_value"] == 1.0


def test_the_seed_noise_is_the_residual_sd_of_a_one_way_anova():
    import statsmodels.formula.api as smf

    rng = np.random.default_rng(3)
    groups = [rng.normal(mean, 0.01, size) for mean, size in ((0.6, 3), (0.62, 3), (0.55, 2), (0.58, 1))]
    noise = stats.seed_sd(groups)
    frame = pd.DataFrame({"setting": [i for i, g in enumerate(groups) for _ in g], "accuracy": np.concatenate(groups)})
    fit = smf.ols("accuracy ~ C(setting)", data=frame).fit()  # one mean per setting; the rest is seed noise
    assert noise.sd == pytest.approx(np.sqrt(fit.mse_resid)) and noise.dof == fit.df_resid == 5
    assert stats.seed_sd([[0.6, 0.62]]).sd == pytest.approx(np.std([0.6, 0.62], ddof=1))  # one setting: its sd
    assert np.isnan(stats.seed_sd([[0.6], [0.7]]).sd) and stats.seed_sd([[0.6]]).dof == 0  # no setting repeated


def test_the_course_seed_noise_pools_notebook_02s_three_seeds_per_policy():
    frame = fu.records_frame(list(fu.course.records.load_study("ablation", fu.course.ablation.augmentation_ablation(),
                                                               fu.RESULTS_DIR / "experiments").values()))
    noise = stats.seed_sd(fu.course.ablation.seed_runs(fu.RESULTS_DIR / "experiments"))
    assert noise.sd == pytest.approx(np.sqrt(frame.groupby("augment")["val_accuracy"].var().mean()))  # 3 seeds each
    assert noise.dof == len(frame) - frame["augment"].nunique() == 14
    assert 0 < noise.sd < 0.01  # under a point: why a one-point gap between two runs needs care


def test_the_noise_of_a_difference_of_means_shrinks_with_the_seeds():
    rng = np.random.default_rng(1)
    sd = 0.01
    gaps = rng.normal(0, sd, (100_000, 3)).mean(1) - rng.normal(0, sd, 100_000)  # a mean of 3 runs against one run
    assert gaps.std() == pytest.approx(stats.difference_sd(sd, runs=(3, 1)), rel=0.01)
    assert stats.difference_threshold(sd, runs=(1, 1)) == pytest.approx(stats.difference_threshold(sd))
    assert list(stats.difference_threshold(sd, runs=(np.array([1, 2]), 2))) == pytest.approx(
        [2 * sd * np.sqrt(1.5), 2 * sd])


def test_the_seed_sd_interval_covers_the_true_sd_95_times_in_100():
    rng = np.random.default_rng(0)
    true_sd, covered = 0.004, 0
    for _ in range(4000):
        groups = rng.normal(0.55, true_sd, (7, 3)) + rng.normal(0, 0.05, (7, 1))  # 7 settings x 3 seeds, 14 dof
        low, high = fu.stats.seed_sd_interval(fu.stats.seed_sd(groups))
        covered += low <= true_sd <= high
    assert 0.94 <= covered / 4000 <= 0.96
    noise = fu.stats.SeedNoise(0.0034, 14)
    low, high = fu.stats.seed_sd_interval(noise)
    assert low < noise.sd < high and high / low > 2  # 14 degrees of freedom leave the sd uncertain by a factor of two
