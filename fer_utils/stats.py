"""The course's statistics, in one place, computed by statsmodels and scipy: intervals on accuracies,
paired and seed-based tests, and the verdicts they support.

Three yardsticks, for three situations:

* **One accuracy on n images** has a binomial sampling error: ``accuracy_interval`` gives its 95%
  Wilson interval (about +-1.1 points on FER-2013's 7,178 test images, +-1.5 on each half).
* **Two models on the same images** (same validation split, one seed each) are compared image by
  image: ``mcnemar`` counts the images only one of them gets right and tests that split.
* **Two single training runs** also differ by seed: if one run's accuracy has standard deviation
  ``sd`` across seeds, the *difference* of two runs has ``sqrt(2) * sd``, so a difference must exceed
  ``2 * sqrt(2) * sd`` (``difference_threshold``) before it is called beyond noise; with several
  seeds per arm, ``welch`` tests the means. One run's ``sd`` comes from ``seed_sd``: the spread of
  runs that differ only by seed, pooled over the settings that were run with several seeds.

The verdicts these yardsticks support ('holds', 'tie', 'reversed') are the course's
(``fer_utils.course.verdicts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE


def accuracy_interval(correct: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The Wilson score interval (statsmodels) of an accuracy of ``correct`` out of ``n``."""
    from statsmodels.stats.proportion import proportion_confint

    if n <= 0:
        raise ValueError(f"an interval needs at least one image, got n={n}")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be between 0 and n={n}, got {correct}")
    low, high = proportion_confint(correct, n, alpha=1 - confidence, method="wilson")
    return float(low), float(high)


def accuracy_with_interval(y_true, y_pred, confidence: float = CONFIDENCE) -> dict:
    """{'accuracy', 'low', 'high', 'n'}: the accuracy of ``y_pred`` and its Wilson interval."""
    right = np.asarray(y_true) == np.asarray(y_pred)
    low, high = accuracy_interval(int(right.sum()), len(right), confidence)
    return {"accuracy": float(right.mean()), "low": low, "high": high, "n": int(len(right))}


def format_interval(accuracy: float, low: float, high: float, digits: int = 1) -> str:
    """'67.6% [66.5%, 68.7%]': an accuracy with its interval, in percent."""
    return f"{accuracy:.{digits}%} [{low:.{digits}%}, {high:.{digits}%}]"


def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's exact test (statsmodels) of two models' per-image correctness on the same images.

    Returns the discordant counts ('a_only': images only A gets right, 'b_only': only B), the
    accuracy difference A - B and the two-sided p-value (1.0 when they never disagree).
    """
    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"McNemar's test needs two equal-length 1-D correctness vectors, got {a.shape} and {b.shape}")
    return mcnemar_from_counts(int((a & ~b).sum()), int((~a & b).sum()), n=len(a))


def mcnemar_from_counts(a_only: int, b_only: int, n: int | None = None) -> dict:
    """McNemar's exact test from the discordant counts alone (the concordant ones do not enter it)."""
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    p = float(sm_mcnemar([[0, a_only], [b_only, 0]], exact=True).pvalue) if a_only + b_only else 1.0
    out = {"a_only": int(a_only), "b_only": int(b_only), "p_value": p}
    if n:
        out["difference"] = (a_only - b_only) / n
    return out


def welch(a, b) -> float:
    """Two-sided p-value of Welch's t-test (scipy) that runs ``a`` and ``b`` have the same mean
    (NaN with fewer than two runs on either side)."""
    from scipy import stats

    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(stats.ttest_ind(a, b, equal_var=False).pvalue)


def difference_sd(sd: float, runs=(1, 1)):
    """The standard deviation of the difference of two means of independent runs, each run with ``sd``:
    ``sd * sqrt(1/n1 + 1/n2)`` for ``runs = (n1, n2)`` (``sqrt(2) * sd`` for two single runs)."""
    n1, n2 = runs
    return sd * np.sqrt(1 / np.asarray(n1, float) + 1 / np.asarray(n2, float))


def difference_threshold(sd: float, z: float = 2.0, runs=(1, 1)):
    """How far apart two means of ``runs`` seeds must be before the gap is beyond seed noise:
    ``z * difference_sd`` (``2 * sqrt(2) * sd`` for two single runs)."""
    return z * difference_sd(sd, runs)


class SeedNoise(NamedTuple):
    """One run's seed-to-seed standard deviation and its degrees of freedom (runs minus settings)."""

    sd: float
    dof: int


def seed_sd(groups: Iterable[Sequence[float]]) -> SeedNoise:
    """One run's seed-to-seed standard deviation, pooled over settings: each of ``groups`` holds one
    setting's results over seeds (a setting run once adds nothing). The pooled variance is the sum of
    squared deviations from each setting's own mean over runs - settings degrees of freedom: the
    residual variance of a one-way analysis of variance. NaN with no degree of freedom."""
    groups = [np.asarray(g, float) for g in groups]
    dof = int(sum(len(g) - 1 for g in groups if len(g) > 1))
    if dof == 0:
        return SeedNoise(float("nan"), 0)
    squares = sum(float(((g - g.mean()) ** 2).sum()) for g in groups if len(g) > 1)
    return SeedNoise(float(np.sqrt(squares / dof)), dof)


def seed_sd_interval(noise: SeedNoise, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The ``confidence`` interval of the true seed sd behind an estimate pooled over ``noise.dof`` degrees of
    freedom: (dof * sd^2 / variance) follows a chi-square law with dof degrees of freedom (scipy)."""
    from scipy.stats import chi2

    tail = (1 - confidence) / 2
    squares = noise.dof * noise.sd ** 2
    return float(np.sqrt(squares / chi2.ppf(1 - tail, noise.dof))), float(np.sqrt(squares / chi2.ppf(tail, noise.dof)))
