"""Notebook 02: the augmentation ablation, every policy with the same model and budget, three seeds each.

Its runs also give the course its seed noise: the spread of runs that differ only by seed
(``seed_runs``, pooled by ``fer_utils.stats.seed_sd``), the yardstick of every single-run comparison.
"""

from __future__ import annotations

import dataclasses

from ..config import POLICIES, ExperimentConfig
from ..experiments import history_frame
from ..stats import seed_sd, welch
from .records import PROXY, SEEDS, load_study
from .verdicts import verdict


def augmentation_ablation() -> dict[str, ExperimentConfig]:
    """Notebook 02: the same model and budget under every augmentation policy, three seeds each."""
    return {f"{p}, seed {s}": dataclasses.replace(PROXY, augment=p, seed=s) for p in POLICIES for s in SEEDS}


def seed_runs(directory=None) -> list[list[float]]:
    """The ablation's validation accuracies grouped by policy (three seeds each): what
    ``fer_utils.stats.seed_sd`` pools into one run's seed-to-seed standard deviation."""
    by_policy: dict[str, list[float]] = {}
    for r in load_study("ablation", augmentation_ablation(), directory).values():
        by_policy.setdefault(r["config"]["augment"], []).append(r["val"]["accuracy"])
    return list(by_policy.values())


def compare_to_baseline(frame, group: str, value: str, baseline: str, alpha: float = 0.05):
    """Mean and standard deviation of ``value`` per ``group`` across seeds, the difference from
    ``baseline``'s mean, and Welch's t-test of that difference: beyond seed-to-seed noise where its verdict
    (``verdicts.verdict``) is not a tie."""
    import pandas as pd

    base = frame.loc[frame[group] == baseline, value].to_numpy()
    rows = []
    for name, values in frame.groupby(group, sort=False)[value]:
        v = values.to_numpy()
        p = welch(v, base) if name != baseline else float("nan")
        difference = v.mean() - base.mean()
        rows.append({group: name, "mean": v.mean(), "std": v.std(ddof=1) if len(v) > 1 else float("nan"),
                     "runs": len(v), "difference": difference, "p_value": p,
                     "beyond_noise": verdict(difference, p_value=p, alpha=alpha) != "tie"})
    return pd.DataFrame(rows).set_index(group)


def ablation_findings(frame, table, baseline: str = "none") -> dict:
    """Notebook 02's verdicts from its runs (``frame``: one row per run, columns augment and val_accuracy)
    and ``compare_to_baseline``'s ``table``: the policies that help or hurt beyond seed noise (Welch's
    test against ``baseline``), the best policy by mean and Welch's test against the runner-up, and the
    weakest policy other than the baseline."""
    beyond = table[table["beyond_noise"]]
    best = table["mean"].idxmax()
    runner_up = table.drop(index=best)["mean"].idxmax()
    runs = {policy: frame.loc[frame["augment"] == policy, "val_accuracy"] for policy in (best, runner_up)}
    best_p = welch(runs[best], runs[runner_up])
    return {"helps": beyond.loc[beyond["difference"] > 0, "difference"].to_dict(),
            "hurts": beyond.loc[beyond["difference"] < 0, "difference"].to_dict(),
            "best": best, "runner_up": runner_up, "best_p": best_p, "best_beyond_noise": verdict(table.loc[best, "mean"] - table.loc[runner_up, "mean"], p_value=best_p) != "tie",
            "weakest": table.drop(index=baseline)["mean"].idxmin(),
            "seed_sd": seed_sd(frame.groupby("augment")["val_accuracy"].apply(list)).sd}


def learning_curves(records: dict[str, dict]):
    """The runs' histories stacked, one row per run and epoch, with each run's augment and seed."""
    import pandas as pd

    return pd.concat([history_frame(r).assign(augment=r["config"]["augment"], seed=r["config"]["seed"])
                      for r in records.values()])


def last_epoch_gap(curves, train_column: str = "clean_train_accuracy") -> dict:
    """Training minus validation accuracy in the last epoch, averaged over seeds, per policy (``curves``:
    one row per run and epoch, columns augment, epoch, ``train_column``, val_accuracy). By default the
    training accuracy is ``fit``'s score on a fixed sample of training images without augmentation (how
    much the model memorised); ``"train_accuracy"`` is the one on the augmented batches it trained on."""
    last = curves[curves["epoch"] == curves["epoch"].max()]
    return (last[train_column] - last["val_accuracy"]).groupby(last["augment"]).mean().to_dict()
