"""The course's one verdict rule, for comparisons and for targets, and the paired comparisons it judges.

* **A comparison** of A with B (a difference A - B) is 'holds' when it is positive and beyond noise,
  'reversed' when negative and beyond noise, else 'tie'. Beyond noise means past every yardstick given:
  the seed noise of two single runs (``threshold``, 2√2 sd: ``fer_utils.stats.difference_threshold``)
  and, where a paired test was run on the same images, McNemar's p < 0.05.
* **A target** (``targets.Target``) is 'met' or 'missed'; a timing given with its interquartile range
  is 'met' when three quarters of the calls are within the target, 'missed' when three quarters miss it,
  and 'at the target' when the range straddles it (a noisy median a hair either side decides nothing).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..stats import ALPHA, accuracy_with_interval, mcnemar
from .targets import Target

COMPARISON_VERDICTS = ("holds", "tie", "reversed")
TARGET_VERDICTS = ("met", "at the target", "missed")


def verdict(value: float, threshold: float | None = None, p_value: float | None = None, alpha: float = ALPHA, *,
            target: Target | None = None, quartiles=None) -> str:
    """The verdict on ``value``: a difference A - B judged by its yardsticks (``threshold``, ``p_value``),
    or, with ``target``, a result judged against it (``quartiles``: (q1, q3) of a timing's spread)."""
    if target is not None:
        def within(v: float) -> bool:
            return v >= target.value if target.higher_is_better else v <= target.value

        if quartiles is None:
            return "met" if within(value) else "missed"
        low, high = sorted(quartiles)
        worst, best = (low, high) if target.higher_is_better else (high, low)
        return "met" if within(worst) else "missed" if not within(best) else "at the target"
    if threshold is None and p_value is None:
        raise ValueError("a verdict needs a yardstick: a noise threshold, a p-value, both, or a target")
    beyond = (threshold is None or abs(value) > threshold) and (p_value is None or p_value < alpha)
    if not beyond or value == 0:
        return "tie"
    return "holds" if value > 0 else "reversed"


def paired_test(record_a: dict, record_b: dict, labels) -> dict:
    """McNemar's test between two runs scored on the same validation images (their records'
    ``val_predictions``, against the split's ``labels``): which images only one of them gets right."""
    labels = np.asarray(labels)
    a, b = (np.asarray(r["val_predictions"]) for r in (record_a, record_b))
    if not len(a) == len(b) == len(labels):
        raise ValueError(f"the runs were scored on different images ({len(a)}, {len(b)} predictions, {len(labels)} labels)")
    return mcnemar(a == labels, b == labels)


def paired_finding(accuracy: dict, better: str, worse: str, threshold: float, records: dict | None = None,
                   labels=None) -> dict:
    """One comparison of two single runs, by label: the gap ``accuracy[better] - accuracy[worse]``,
    McNemar's p where both ``records`` hold ``val_predictions`` for the validation ``labels`` (else
    None), and the verdict, which needs both yardsticks: the two runs' noise ``threshold`` and, where
    it was run, p < 0.05."""
    pair = [(records or {}).get(label, {}) for label in (better, worse)]
    p = (paired_test(*pair, labels)["p_value"]
         if labels is not None and all("val_predictions" in r for r in pair) else None)
    gap = float(accuracy[better] - accuracy[worse])
    return {"better": better, "worse": worse, "better accuracy": float(accuracy[better]),
            "worse accuracy": float(accuracy[worse]), "gap": gap, "mcnemar p": p, "verdict": verdict(gap, threshold, p)}


def describe_paired(finding: dict) -> str:
    """A ``paired_finding`` in words: '+0.4 points, McNemar p = 0.52: tie'."""
    p = finding["mcnemar p"]
    return f"{100 * finding['gap']:+.1f} points{'' if p is None else f', McNemar p = {p:.2g}'}: {finding['verdict']}"


def seeded_gain(labels, predicted: dict, pairs: dict, threshold: float) -> dict:
    """A change trained from several seeds, each run against the run of its seed without it, on the same
    images: ``predicted`` holds each run's (N,) predicted classes by label, ``pairs`` maps a seed's name to
    its (with, without) labels. Returns the accuracies with intervals, McNemar's test per pair, and the mean
    gain over the seeds, whose verdict needs every pair's p < 0.05 and the mean past ``threshold`` (the
    seed yardstick of means over that many seeds)."""
    labels = np.asarray(labels)
    tests = {seed: mcnemar(predicted[a] == labels, predicted[b] == labels) for seed, (a, b) in pairs.items()}
    gain = float(np.mean([test["difference"] for test in tests.values()]))
    p_values = [test["p_value"] for test in tests.values()]
    return {"accuracy": {name: accuracy_with_interval(labels, p) for name, p in predicted.items()},
            "pairs": tests,
            "mean gain": {"difference": gain, "p_values": p_values, "verdict": verdict(gain, threshold, max(p_values))}}


def judged_views(study: dict) -> list[str]:
    """The views of a study judged by ``seeded_gain`` ('one pass', the TTA, ...): its parts with a mean gain."""
    return [view for view, part in study.items() if isinstance(part, dict) and "mean gain" in part]


def gains_frame(studies: dict[str, dict]) -> pd.DataFrame:
    """Studies judged by ``seeded_gain`` (records by name, each with one part per view: 'one pass', the TTA, ...) as
    one table: a row per study and view, with each seed's gain in points and its McNemar p, the mean gain and the
    verdict."""
    rows = {}
    for name, study in studies.items():
        for view in judged_views(study):
            pairs, gain = study[view]["pairs"], study[view]["mean gain"]
            rows[(name, view)] = {**{seed: f"{100 * t['difference']:+.2f} (p = {t['p_value']:.2g})" for seed, t in pairs.items()},
                                  "mean gain": f"{100 * gain['difference']:+.2f}", "verdict": gain["verdict"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.names = ["study", "view"]
    return frame


def holds_in_one_pass(validation: dict, seeds) -> bool:
    """Whether a change judged by ``seeded_gain`` on validation (a study's record, with its ``seeds`` and a 'one pass'
    part) *holds* in one pass over exactly ``seeds``: the rule that lets such a change into the shipped model."""
    return validation.get("seeds") == list(seeds) and validation["one pass"]["mean gain"]["verdict"] == "holds"
