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
  seeds per arm, ``welch`` tests the means.

``verdict`` turns a difference and its yardstick into 'holds', 'tie' or 'reversed'.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
VERDICTS = ("holds", "tie", "reversed")


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


def verdict(difference: float, threshold: float | None = None, p_value: float | None = None,
            alpha: float = ALPHA) -> str:
    """'holds' (positive and beyond noise), 'reversed' (negative and beyond noise) or 'tie'.

    Beyond noise means ``abs(difference) > threshold`` (seed yardstick) and, where a paired test
    was run, ``p_value < alpha``; every test given must agree.
    """
    if threshold is None and p_value is None:
        raise ValueError("a verdict needs a yardstick: a noise threshold, a p-value or both")
    beyond = (threshold is None or abs(difference) > threshold) and (p_value is None or p_value < alpha)
    if not beyond or difference == 0:
        return "tie"
    return "holds" if difference > 0 else "reversed"
