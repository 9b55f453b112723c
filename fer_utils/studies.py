"""The experiment grids of the course, defined once: the notebooks read their records, and
``scripts/run_study.py`` runs them (on the CPU here, or on a GPU where one is lent). A run's record
is ``results/experiments/<study>-<label>.json`` (``record_name``: ``ablation-rotate-seed-2.json``).

Proxy budgets keep each grid rerunnable on a 2-core CPU: half of the training split and
10 epochs per run (``PROXY``). The final model's candidates share the CPU budget of the
shipped model (``CPU_BUDGET_EPOCHS``).
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import numpy as np

from .augment import POLICIES
from .experiments import ExperimentConfig, history_frame

# The CPU-efficient residual network: no residual block at 48x48 (the stem conv only), then
# three stages at 24, 12 and 6 pixels. Same 1.2M parameters as the original report's model,
# 2.5x its training speed on this CPU.
FAST_RESIDUAL = {"widths": [32, 64, 128, 256], "blocks": [0, 1, 1, 1]}

# Only what differs from ExperimentConfig's defaults (batch 128, AdamW, weight decay 5e-4, one-cycle).
PROXY = ExperimentConfig(model="residual_cnn", model_kwargs=FAST_RESIDUAL, epochs=10, lr=2e-3, augment="none",
                         data_fraction=0.5)
SEEDS = (0, 1, 2)


def augmentation_ablation() -> dict[str, ExperimentConfig]:
    """Notebook 02: the same model and budget under every augmentation policy, three seeds each."""
    return {f"{p}, seed {s}": dataclasses.replace(PROXY, augment=p, seed=s) for p in POLICIES for s in SEEDS}


ARCHITECTURES = {
    "MLP": ("mlp", {}),
    "plain CNN, depth 2": ("plain_cnn", {"depth": 2}),
    "plain CNN, depth 4": ("plain_cnn", {"depth": 4}),
    "plain CNN, depth 6": ("plain_cnn", {"depth": 6}),
    "plain CNN, depth 8": ("plain_cnn", {"depth": 8}),
    "plain CNN, depth 6, avg pooling": ("plain_cnn", {"depth": 6, "pooling": "avg"}),
    "plain CNN, depth 6, early downsampling": ("plain_cnn", {"depth": 6, "early_downsample": True}),
    "residual CNN (report size)": ("residual_cnn", {}),
    "residual CNN, no 48x48 block": ("residual_cnn", FAST_RESIDUAL),
    "residual CNN, early downsampling": ("residual_cnn", {"early_downsample": True}),
    "ResNet-18 (torchvision)": ("resnet18", {}),
}


def architecture_comparison() -> dict[str, ExperimentConfig]:
    """Notebook 03: every architecture with the same data, augmentation and budget."""
    return {
        label: dataclasses.replace(PROXY, model=name, model_kwargs=kwargs, augment="hflip+shift")
        for label, (name, kwargs) in ARCHITECTURES.items()
    }


def architecture_findings(accuracy: dict[str, float], noise: float, records: dict | None = None, labels=None) -> dict:
    """Notebook 03's verdicts on the original report's claims, from each architecture's validation
    accuracy (``ARCHITECTURES``' labels; one seed each) and one run's seed sd ``noise``: two single runs
    are told apart beyond 2√2 sd (``stats.difference_threshold``) and, where their ``records`` (by label)
    hold predictions for the validation ``labels``, by McNemar's test as well (``paired_finding``).
    A missing label (fast mode trains two models) counts as NaN."""
    import math

    from .stats import difference_threshold

    threshold = difference_threshold(noise)
    accuracy = {label: accuracy.get(label, math.nan) for label in ARCHITECTURES}
    depths = {kwargs["depth"]: accuracy[label] for label, (name, kwargs) in ARCHITECTURES.items()
              if name == "plain_cnn" and set(kwargs) == {"depth"} and label in accuracy}
    early = {"plain": accuracy["plain CNN, depth 6, early downsampling"],
             "residual": accuracy["residual CNN, early downsampling"]}
    ranked = sorted(accuracy, key=lambda label: (not math.isnan(accuracy[label]), accuracy[label]), reverse=True)
    best_plain_depth = max(depths, key=lambda d: (not math.isnan(depths[d]), depths[d]))

    def paired(better, worse):
        return paired_finding(accuracy, better, worse, threshold, records, labels)

    return {
        "threshold": threshold,
        "depths": depths,
        "deeper_plain": {d: a for d, a in depths.items() if d >= 4},
        "mlp_below_deeper_plain": accuracy["MLP"] < min(a for d, a in depths.items() if d >= 4),  # False on NaN
        "early": early, "early_stuck": all(0.30 <= a <= 0.40 for a in early.values()),
        "pooling": paired("plain CNN, depth 6", "plain CNN, depth 6, avg pooling"),  # max over average pooling
        "best_plain_depth": best_plain_depth,
        "skip": paired("residual CNN (report size)", f"plain CNN, depth {best_plain_depth}"),
        "best": ranked[0], "runner_up": ranked[1],
        "best_over_runner_up": paired(ranked[0], ranked[1]),
    }


def paired_finding(accuracy: dict, better: str, worse: str, threshold: float, records: dict | None = None,
                   labels=None) -> dict:
    """One comparison of two single runs, by label: the gap ``accuracy[better] - accuracy[worse]``,
    McNemar's p where both ``records`` hold ``val_predictions`` for the validation ``labels`` (else
    None), and the verdict, which needs both yardsticks: the two runs' noise ``threshold`` and, where
    it was run, p < 0.05."""
    from .stats import verdict

    pair = [(records or {}).get(label, {}) for label in (better, worse)]
    p = (paired_test(*pair, labels)["p_value"]
         if labels is not None and all("val_predictions" in r for r in pair) else None)
    gap = float(accuracy[better] - accuracy[worse])
    return {"better": better, "worse": worse, "better accuracy": float(accuracy[better]),
            "worse accuracy": float(accuracy[worse]), "gap": gap, "mcnemar p": p, "verdict": verdict(gap, threshold, p)}


# The final model (notebook 04). Its candidates carry the findings of notebooks 02 and 03: the
# plain depth-8 CNN (best at equal cost in notebook 03), the residual CNN for comparison, a deeper
# variant of the better family, notebook 02's best policies, and label smoothing.
# They are compared at the proxy budget on the deduplicated validation split; the best
# CONFIRM_TOP are then trained again at a longer budget, and the best of those is chosen.
SELECTION = dataclasses.replace(
    PROXY, model="plain_cnn", model_kwargs={"depth": 8}, augment="hflip+rotate+shift", label_smoothing=0.1,
    dedup_val=True,
)


def final_recipe_candidates() -> dict[str, ExperimentConfig]:
    """The final model's candidates, at the proxy budget, compared on validation only."""
    return {
        "plain CNN 8, hflip+rotate+shift": SELECTION,
        "plain CNN 8, hflip+shift": dataclasses.replace(SELECTION, augment="hflip+shift"),
        "plain CNN 8, rotate": dataclasses.replace(SELECTION, augment="rotate"),
        "residual CNN, hflip+rotate+shift": dataclasses.replace(SELECTION, model="residual_cnn",
                                                                model_kwargs=FAST_RESIDUAL),
        "plain CNN 10 (deeper), hflip+rotate+shift": dataclasses.replace(SELECTION, model_kwargs={"depth": 10}),
        "plain CNN 8, hflip+rotate+shift, no label smoothing": dataclasses.replace(SELECTION, label_smoothing=0.0),
    }


# The findings of notebooks 02 and 03 that the candidates test again: (what, the better, the worse).
CARRIED_FINDINGS = (
    ("the plain CNN over the residual one", "plain CNN 8, hflip+rotate+shift", "residual CNN, hflip+rotate+shift"),
    ("rotations with flips and shifts over flips and shifts alone", "plain CNN 8, hflip+rotate+shift",
     "plain CNN 8, hflip+shift"),
    ("rotations with flips and shifts over rotations alone", "plain CNN 8, hflip+rotate+shift", "plain CNN 8, rotate"),
    ("label smoothing", "plain CNN 8, hflip+rotate+shift", "plain CNN 8, hflip+rotate+shift, no label smoothing"),
    ("a deeper plain CNN over depth 8", "plain CNN 10 (deeper), hflip+rotate+shift", "plain CNN 8, hflip+rotate+shift"),
)


def describe_paired(finding: dict) -> str:
    """A ``paired_finding`` in words: '+0.4 points, McNemar p = 0.52: tie'."""
    p = finding["mcnemar p"]
    return f"{100 * finding['gap']:+.1f} points{'' if p is None else f', McNemar p = {p:.2g}'}: {finding['verdict']}"


def carried_findings(recipes, threshold: float, records: dict | None = None, labels=None) -> list[dict]:
    """How each of CARRIED_FINDINGS fared among the candidates (``recipes_frame``): ``paired_finding``
    for each, the two single runs' gap judged on their noise ``threshold`` and, where their ``records``
    (by label) hold predictions for the validation ``labels``, McNemar's test."""
    acc = recipes["val accuracy"].to_dict()
    return [{"finding": what, **paired_finding(acc, better, worse, threshold, records, labels)}
            for what, better, worse in CARRIED_FINDINGS]


CONFIRM_TOP = 2  # candidates trained again at the longer budget
BUDGET_EPOCHS = (10, 20, 40)  # the chosen recipe's budget curve; the first is the proxy budget
CONFIRM_EPOCHS = BUDGET_EPOCHS[1]
# The accuracy the final model aims at from at most 120 minutes of CPU training, with the chosen
# test-time augmentation and in one pass (what the real-time pipeline and `predict --no-tta` give); the best
# published single networks reach about 73% on PrivateTest after hundreds of GPU epochs.
TARGET = {"test": 0.695, "PrivateTest": 0.705}
TARGET_ONE_PASS = {"test": 0.685, "PrivateTest": 0.695}
CPU_BUDGET_MINUTES = 120
FINAL_NAME = "final_model"
FINAL_TEST_NAME = "final_model_test"  # results/<name>.json: the test metrics with the chosen TTA
FINAL_ONE_PASS_NAME = "final_model_test_one_pass"  # ... and in one pass


# The budget curve at the refit's scale: the chosen family (plain CNN 8, label smoothing 0.1) on the
# whole fitting split (70% of the training set, 20,096 images) with the deduplicated validation split,
# at four budgets up to the one that fills CPU_BUDGET_MINUTES when refit on all 28,709 images (the
# shipped refit took 50 minutes for 25 epochs on 2 cores: 120 minutes buy about 60 epochs,
# ``refit_epochs_in_budget``), under notebook 02's weak policy and the strong one ('all': hflip, rotate,
# shift and erasing) that long schedules are expected to need. The refit keeps the chosen run's
# epochs: it sees each image as often, with 28,709 / 20,096 = 1.43 times the steps.
CURVE = dataclasses.replace(SELECTION, data_fraction=1.0)
CURVE_EPOCHS = (6, 12, 25, 50)
CURVE_POLICIES = ("hflip+shift", "all")


def refit_epochs_in_budget(final_record: dict) -> float:
    """How many epochs of the refit CPU_BUDGET_MINUTES buy, at the pace the shipped refit trained
    (``final_record``: its minutes per epoch on all the training images)."""
    return CPU_BUDGET_MINUTES / (final_record["train_seconds"] / 60 / final_record["epochs_run"])


def curve_label(augment: str, epochs: int, seed: int = 0) -> str:
    """A run's label on the refit-scale budget curve (study "curve"), e.g. 'all, 50 epochs, seed 0'."""
    return f"{augment}, {epochs} epochs, seed {seed}"


def refit_scale_curve(seeds=(0, 1)) -> dict[str, ExperimentConfig]:
    """Every run of the refit-scale budget curve, cheapest first (so that an interrupted grid has its
    short budgets); ``python scripts/run_study.py curve --only LABEL`` runs a part of it."""
    runs = {curve_label(a, e, s): dataclasses.replace(CURVE, augment=a, epochs=e, seed=s)
            for s in seeds for e in CURVE_EPOCHS for a in CURVE_POLICIES}
    return dict(sorted(runs.items(), key=lambda item: (item[1].epochs, item[1].seed)))


def curve_frame(directory=None):
    """The refit-scale budget curve's stored runs, one row each (cheapest first): policy, epochs, seed,
    CPU minutes and validation accuracy."""
    import pandas as pd

    records = load_study("curve", refit_scale_curve(), directory)
    rows = [{"run": label, "augment": r["config"]["augment"], "epochs": r["config"]["epochs"], "seed": r["config"]["seed"],
             "minutes": r["train_seconds"] / 60, "train precision": r["train_precision"],
             "val accuracy": r["val"]["accuracy"]} for label, r in records.items()]
    columns = ["run", "augment", "epochs", "seed", "minutes", "train precision", "val accuracy"]
    return pd.DataFrame(rows, columns=columns).set_index("run")


def curve_settings(curve):
    """``curve_frame``'s runs grouped by setting (policy, epochs): seeds, mean CPU minutes, mean validation accuracy."""
    return (curve.groupby(["augment", "epochs"], sort=False)
            .agg(seeds=("seed", "count"), minutes=("minutes", "mean"), val_accuracy=("val accuracy", "mean"))
            .reset_index().sort_values(["augment", "epochs"], kind="stable", ignore_index=True))


CURVE_RULE = "the cheapest setting within seed noise of the best mean over seeds"


def paired_test(record_a: dict, record_b: dict, labels) -> dict:
    """McNemar's test between two runs scored on the same validation images (their records'
    ``val_predictions``, against the split's ``labels``): which images only one of them gets right."""
    from .stats import mcnemar

    labels = np.asarray(labels)
    a, b = (np.asarray(r["val_predictions"]) for r in (record_a, record_b))
    if not len(a) == len(b) == len(labels):
        raise ValueError(f"the runs were scored on different images ({len(a)}, {len(b)} predictions, {len(labels)} labels)")
    return mcnemar(a == labels, b == labels)


# Transfer learning (notebook 07): MTCNN's ONet, pretrained on faces, against the same network
# from scratch, at the proxy budget with the final model's augmentation and label smoothing,
# selected and compared on the deduplicated validation split only.
TRANSFER = dataclasses.replace(PROXY, model="onet", model_kwargs={}, augment="hflip+shift", label_smoothing=0.1,
                               dedup_val=True)
TRANSFER_ARMS = {
    "from scratch": {},
    "linear probe (frozen features)": {"pretrained": True, "train": "head"},
    "fine-tune the last layers": {"pretrained": True, "train": "last"},
    "fine-tune all layers": {"pretrained": True},
}
LABEL_FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5, 1.0)  # shares of the fit split, for the label-budget curve
LABEL_SEEDED_FRACTIONS = (0.02, 0.05, 0.1)  # three seeds each; 50% has the comparison's three, the rest one
LABEL_BUDGET_ARMS = ("from scratch", "fine-tune all layers")


def transfer_comparison() -> dict[str, ExperimentConfig]:
    """Notebook 07: each way of using ONet (from scratch, probe, fine-tuning) with three seeds."""
    return {f"{arm}, seed {seed}": dataclasses.replace(TRANSFER, model_kwargs=kwargs, seed=seed)
            for arm, kwargs in TRANSFER_ARMS.items() for seed in SEEDS}


def transfer_seed_sd(records: dict[str, dict]) -> float:
    """One run's seed-to-seed sd in the transfer comparison (``transfer_comparison``'s records, by label):
    the mean over the arms of the sd across each arm's seeds; NaN where no arm has two seeds."""
    import pandas as pd

    runs = pd.DataFrame([{"arm": arm, "val_accuracy": records[label]["val"]["accuracy"]}
                         for arm in TRANSFER_ARMS for seed in SEEDS if (label := f"{arm}, seed {seed}") in records])
    return float(runs.groupby("arm")["val_accuracy"].std().mean())


def label_budget_passes(fraction: float) -> int:
    """Passes over the training faces per epoch for a run on ``fraction`` of the fit split: below the
    proxy's share (half of it), each of the 10 epochs takes the proxy's optimiser steps (25 passes over
    2%, 10 over 5%); one pass at or above it.

    >>> [label_budget_passes(f) for f in LABEL_FRACTIONS]
    [25, 10, 5, 2, 1, 1]
    """
    return max(1, round(TRANSFER.data_fraction / fraction))


def label_budget_seeds(fraction: float) -> tuple[int, ...]:
    return SEEDS if fraction in LABEL_SEEDED_FRACTIONS or fraction == TRANSFER.data_fraction else SEEDS[:1]


def label_budget() -> dict[str, ExperimentConfig]:
    """Notebook 07's label-budget curve: pretrained vs scratch on a growing share of the labels, with
    matched optimiser steps (``label_budget_passes``) and three seeds at the smallest shares. The points at
    the proxy's share are the comparison's runs, under their labels (one record each, not two)."""
    def label(arm: str, fraction: float, seed: int) -> str:
        share = "" if fraction == TRANSFER.data_fraction else f"{fraction:.0%} of the labels, "
        return f"{arm}, {share}seed {seed}"

    return {label(arm, fraction, seed): dataclasses.replace(
                TRANSFER, model_kwargs=TRANSFER_ARMS[arm], data_fraction=fraction,
                passes_per_epoch=label_budget_passes(fraction), seed=seed)
            for arm in LABEL_BUDGET_ARMS for fraction in LABEL_FRACTIONS for seed in label_budget_seeds(fraction)}


def label_budget_frame(records: dict[str, dict]):
    """The label-budget curve's records, one row each: arm, share of labels, seed, training faces, the
    faces seen per epoch (training faces x passes: the same optimiser steps below the proxy's share), val_accuracy."""
    import pandas as pd

    arm = {json.dumps(kwargs, sort_keys=True): name for name, kwargs in TRANSFER_ARMS.items()}
    rows = [{"arm": arm[json.dumps(r["config"]["model_kwargs"], sort_keys=True)],
             "share of labels": r["config"]["data_fraction"], "seed": r["config"]["seed"], "training faces": r["n_train"],
             "faces per epoch": r["n_train"] * r["config"].get("passes_per_epoch", 1),
             "val_accuracy": r["val"]["accuracy"]} for r in records.values()]
    columns = ["arm", "share of labels", "seed", "training faces", "faces per epoch", "val_accuracy"]
    return pd.DataFrame(rows, columns=columns).sort_values(["arm", "share of labels", "seed"], ignore_index=True)


def pretraining_gains(points, seed_sd: float):
    """Per share of labels: each arm's mean over seeds, the gain of fine-tuning over scratch, and its verdict.

    Where both arms have two seeds or more the gain is judged by Welch's t-test over the seeds; at a
    single seed, against the noise of the difference of two single runs (2 sqrt(2) ``seed_sd``).
    ``points`` is ``label_budget_frame``'s table.
    """
    import pandas as pd

    from .stats import difference_threshold, verdict, welch

    scratch, tuned = LABEL_BUDGET_ARMS
    rows = []
    for share, group in points.groupby("share of labels"):
        a = group.loc[group["arm"] == tuned, "val_accuracy"].to_numpy()
        b = group.loc[group["arm"] == scratch, "val_accuracy"].to_numpy()
        if not len(a) or not len(b):
            continue
        gain = a.mean() - b.mean()
        seeded = min(len(a), len(b)) >= 2
        p = welch(a, b) if seeded else float("nan")
        rows.append({"share of labels": share, "training faces": int(group["training faces"].iloc[0]),
                     "seeds": min(len(a), len(b)), scratch: b.mean(), tuned: a.mean(), "gain": gain, "p_value": p,
                     "test": "Welch" if seeded else "2√2 seed sd",
                     "verdict": verdict(gain, p_value=p) if seeded else verdict(gain, difference_threshold(seed_sd))})
    return pd.DataFrame(rows).set_index("share of labels")


def transfer_findings(arms, gains, seed_sd: float, plain_accuracy: float) -> dict:
    """Notebook 07's verdicts: each way of using ONet against training it from scratch (``arms``:
    ``compare_to_baseline``'s table over three seeds, judged by Welch's test), where pretraining pays on
    the label-budget curve (``pretraining_gains``' table), and whether the final model's family, one run of
    ``plain_accuracy`` at the same budget and split, beats ONet's best arm beyond seed noise (one run
    against a mean of that arm's runs, with one run's seed sd ``seed_sd``)."""
    from .stats import difference_threshold, verdict

    scratch = LABEL_BUDGET_ARMS[0]
    verdicts = {arm: verdict(row["difference"], p_value=row["p_value"]) for arm, row in arms.drop(index=scratch).iterrows()}
    best = arms["mean"].idxmax()
    plain_gap = plain_accuracy - arms.loc[best, "mean"]
    plain_threshold = difference_threshold(seed_sd, runs=(1, int(arms.loc[best, "runs"])))
    return {
        "verdicts": verdicts,
        "beat_scratch": [a for a, v in verdicts.items() if v == "holds"],
        "level_with_scratch": [a for a, v in verdicts.items() if v == "tie"],
        "below_scratch": [a for a, v in verdicts.items() if v == "reversed"],
        "best": best,
        "gain_most_at": float(gains["gain"].idxmax()) if len(gains) else float("nan"),
        "gain_holds_at": [float(s) for s in gains.index[gains["verdict"] == "holds"]],
        "plain_gap": float(plain_gap), "plain_threshold": float(plain_threshold),
        "plain_verdict": verdict(plain_gap, plain_threshold),
    }


def record_name(study: str, label: str) -> str:
    """A run's record name, from its study and its label in the grid: a name to find the file by.

    >>> record_name("ablation", "rotate, seed 2")
    'ablation-rotate-seed-2'
    """
    words = re.sub(r"[^a-z0-9+.]+", "-", str(label).lower().replace("%", "pct")).strip("-")
    return f"{study}-{words}"


def load_study(study: str, grid: dict[str, ExperimentConfig], directory=None) -> dict[str, dict]:
    """The stored records of a grid, by label; runs without a record, or whose record was made by
    another config, are left out. From ``directory`` if given, else from where this mode's records go."""
    from .experiments import record_path
    from .storage import load_json

    out = {}
    for label, config in grid.items():
        name = record_name(study, label)
        path = Path(directory) / f"{name}.json" if directory is not None else record_path(name)
        if path.exists():
            record = load_json(path)
            if record["config"] == config.to_dict():
                out[label] = record
    return out


def _frame(records: dict[str, dict]):
    import pandas as pd

    rows = [{"recipe": label, "model": r["config"]["model"], "params": r["params"], "augment": r["config"]["augment"],
             "label smoothing": r["config"]["label_smoothing"], "epochs": r["config"]["epochs"],
             "val accuracy": r["val"]["accuracy"], "minutes": r["train_seconds"] / 60, "device": r["device"]}
            for label, r in records.items()]
    columns = ["recipe", "model", "params", "augment", "label smoothing", "epochs", "val accuracy", "minutes", "device"]
    return pd.DataFrame(rows, columns=columns).set_index("recipe").sort_values("val accuracy", ascending=False)


def recipes_frame(directory=None):
    """The candidates that have a record at the proxy budget: one row each, best validation accuracy first."""
    return _frame(load_study("recipes", final_recipe_candidates(), directory))


def confirmation_grid(directory=None) -> dict[str, ExperimentConfig]:
    """The best CONFIRM_TOP candidates at the proxy budget, at CONFIRM_EPOCHS."""
    top = recipes_frame(directory).index[:CONFIRM_TOP]
    candidates = final_recipe_candidates()
    return {label: dataclasses.replace(candidates[label], epochs=CONFIRM_EPOCHS) for label in top}


def budget_label(recipe: str, epochs: int) -> str:
    """The label of a candidate's run at a longer budget (study "budget")."""
    return f"{recipe}, {epochs} epochs"


def confirmation_records(directory=None) -> dict[str, dict]:
    """The confirmed candidates' records at the longer budget, by candidate label."""
    grid = confirmation_grid(directory)
    stored = load_study("budget", {budget_label(recipe, c.epochs): c for recipe, c in grid.items()}, directory)
    return {recipe: stored[budget_label(recipe, c.epochs)] for recipe, c in grid.items()
            if budget_label(recipe, c.epochs) in stored}


def confirmation_frame(directory=None):
    """The confirmed candidates at the longer budget, one row each, best validation accuracy first."""
    return _frame(confirmation_records(directory))


def choose_final_recipe(directory=None) -> tuple[str, ExperimentConfig]:
    """The candidate (label, proxy config) with the best validation accuracy at the longer budget."""
    if recipes_frame(directory).empty:
        raise FileNotFoundError("no recipe records yet: run `python scripts/run_study.py recipes` first")
    confirmed = confirmation_frame(directory)
    if len(confirmed) < min(CONFIRM_TOP, len(recipes_frame(directory))):
        raise FileNotFoundError("the best candidates are not confirmed yet: run `python scripts/run_study.py recipes`")
    label = confirmed.index[0]
    return label, final_recipe_candidates()[label]


def budget_grid(directory=None) -> dict[int, ExperimentConfig]:
    """The chosen recipe at every budget of BUDGET_EPOCHS (same data, validation only)."""
    _, config = choose_final_recipe(directory)
    return {epochs: dataclasses.replace(config, epochs=epochs) for epochs in BUDGET_EPOCHS}


def budget_frame(directory=None):
    """The budget curve: epochs, CPU minutes and validation accuracy of the chosen recipe."""
    import pandas as pd

    label, _ = choose_final_recipe(directory)
    grid = budget_grid(directory)
    stored = {**load_study("recipes", {label: grid[BUDGET_EPOCHS[0]]}, directory),
              **load_study("budget", {budget_label(label, e): c for e, c in grid.items() if e != BUDGET_EPOCHS[0]},
                           directory)}
    rows = [{"epochs": r["config"]["epochs"], "minutes": r["train_seconds"] / 60, "images seen": r["n_train"] * r["epochs_run"],
             "val accuracy": r["val"]["accuracy"], "name": r["name"]}
            for r in sorted(stored.values(), key=lambda r: r["config"]["epochs"])]
    return pd.DataFrame(rows, columns=["epochs", "minutes", "images seen", "val accuracy", "name"]).set_index("epochs")


def tta_record_path(directory=None) -> Path:
    """Where the test-time augmentation choice is stored (beside the experiments folder ``directory``)."""
    from .storage import records_dir

    return (Path(directory).parent if directory is not None else records_dir()) / "final_tta.json"


def choose_tta(model, val) -> dict:
    """Validation accuracy of ``model`` under every TTA mode, and the best mode (the cheaper on ties)."""
    from .evaluate import TTA_MODES, predict_proba

    accuracy = {mode: float((predict_proba(model, val.images, tta=mode).argmax(1) == val.labels).mean())
                for mode in TTA_MODES}
    return {"val_accuracy": accuracy, "chosen": max(TTA_MODES, key=lambda m: (accuracy[m], -TTA_MODES.index(m)))}


def curve_choice(directory=None, runs=None) -> dict:
    """The refit-scale curve's choice on validation: the cheapest setting (fewest epochs) whose mean
    validation accuracy over its seeds is within seed noise of the best mean, so that a longer run must
    win by more than noise (the one-standard-error rule). The noise is the seed-to-seed sd pooled over
    the settings run with two seeds or more: means of n1 and n2 runs are within noise when they differ by
    at most 2 sd sqrt(1/n1 + 1/n2). With no repeated setting, the best mean (the fewer epochs on a tie).
    Chosen from all stored runs, or from those labelled in ``runs`` (the curve as it stood)."""
    curve = curve_frame(directory)
    if runs is not None:
        curve = curve[curve.index.isin(list(runs))]
    if curve.empty:
        raise FileNotFoundError("the refit-scale budget curve has no runs yet: run `python scripts/run_study.py curve`")
    from .stats import difference_threshold

    means = curve.groupby(["augment", "epochs"])["val accuracy"].agg(["mean", "count", "var"]).reset_index()
    repeated = means[means["count"] >= 2]
    seed_sd = (float(np.sqrt((repeated["var"] * (repeated["count"] - 1)).sum() / (repeated["count"] - 1).sum()))
               if len(repeated) else float("nan"))
    best = means.sort_values(["mean", "epochs"], ascending=[False, True]).iloc[0]
    chosen = best
    if np.isfinite(seed_sd):
        margin = difference_threshold(seed_sd, runs=(means["count"], best["count"]))
        within = means[best["mean"] - means["mean"] <= margin]
        chosen = within.sort_values(["epochs", "mean"], ascending=[True, False]).iloc[0]
    return {"augment": str(chosen["augment"]), "epochs": int(chosen["epochs"]), "val_accuracy": float(chosen["mean"]),
            "seeds": int(chosen["count"]), "seed_sd": seed_sd,
            "best_mean": {"augment": str(best["augment"]), "epochs": int(best["epochs"]),
                          "val_accuracy": float(best["mean"]), "seeds": int(best["count"])},
            "chosen_from": curve["val accuracy"].to_dict()}


def final_config(directory=None, curve_runs=None) -> tuple[str, ExperimentConfig]:
    """The shipped model's config: the chosen recipe refit on all the training images (no validation
    split) with the policy and epochs of the refit-scale curve's best run (``curve_choice``, over
    ``curve_runs`` if given), and the test-time augmentation chosen on validation
    (``results/final_tta.json``). The refit keeps the chosen run's epochs, so it takes
    28,709 / 20,096 = 1.43 times its optimiser steps."""
    from .storage import load_json

    label, config = choose_final_recipe(directory)
    choice = curve_choice(directory, curve_runs)
    tta_path = tta_record_path(directory)
    if not tta_path.exists():
        raise FileNotFoundError("the TTA choice is missing: run `python scripts/run_study.py recipes`")
    tta = load_json(tta_path)["chosen"]
    return label, dataclasses.replace(config, augment=choice["augment"], epochs=choice["epochs"], val_fraction=0.0,
                                      data_fraction=1.0, dedup_val=False, tta=tta)


def final_model_findings(metrics: dict, one_pass: dict, budget_curve, threshold: float, hardest: int = 3) -> dict:
    """Notebook 04's verdicts on the shipped model, from its test ``metrics`` with the chosen TTA and in
    ``one_pass`` (``evaluate_checkpoint``'s metrics by split): for TARGET and TARGET_ONE_PASS, each
    target split's accuracy, 95% interval, whether it is met and whether its interval reaches it; the
    proxy budget curve's last gain (``budget_frame``) and its verdict against two single runs' noise
    ``threshold``; and the ``hardest`` classes by F1 on the full test set (with the TTA)."""
    from .experiments import with_interval
    from .stats import verdict

    def against(table: dict, target: dict) -> dict:
        splits = {}
        for split, goal in target.items():
            m = with_interval(table[split])
            splits[split] = {"accuracy": m["accuracy"], "low": m["low"], "high": m["high"], "target": goal,
                             "met": m["accuracy"] >= goal, "interval_reaches": m["high"] >= goal}
        return {"met": all(s["met"] for s in splits.values()), "splits": splits}

    gains = budget_curve["val accuracy"].diff().dropna()
    last_gain = float(gains.iloc[-1]) if len(gains) else float("nan")
    f1 = {key.removeprefix("f1_"): value for key, value in metrics["test"].items() if key.startswith("f1_")}
    return {"tta": against(metrics, TARGET), "one_pass": against(one_pass, TARGET_ONE_PASS),
            "budget_last_gain": last_gain,
            "budget_verdict": verdict(last_gain, threshold) if len(gains) else "no longer budget",
            "hardest": sorted(f1, key=f1.get)[:hardest]}


def refit_follows_curve(final_record: dict, directory=None) -> dict:
    """Whether the shipped model still has the refit-scale curve's best setting: the choice stored
    in its record when it was refit ('then'), the curve's choice over every run stored now ('now'),
    and 'current' (the same policy and epochs). A curve that grows after the refit can overtake it."""
    then, now = final_record["choice"], curve_choice(directory)
    return {"then": then, "now": now, "current": (then["augment"], then["epochs"]) == (now["augment"], now["epochs"])}


FAST_GRID_RUNS = 2  # in fast mode (CI) a notebook trains this many runs of its grid, tiny ones


def run_grid(study: str, grid: dict[str, ExperimentConfig], data=None, fast_labels=None) -> dict[str, dict]:
    """The records of a grid, by label: stored ones are loaded, missing ones are trained.

    In fast mode only the runs named in ``fast_labels`` (default: the first ``FAST_GRID_RUNS``)
    are made, each on a small subset for one epoch, so that a notebook exercises the whole path
    in CI within seconds.
    """
    from .experiments import run_experiment
    from .runtime import fast_mode

    items = list(grid.items())
    if fast_mode():
        items = [(k, grid[k]) for k in fast_labels] if fast_labels else items[:FAST_GRID_RUNS]
    return {label: run_experiment(config, name=record_name(study, label), data=data, progress=False)
            for label, config in items}


def ablation_findings(frame, table, baseline: str = "none") -> dict:
    """Notebook 02's verdicts from its runs (``frame``: one row per run, columns augment and val_accuracy)
    and ``compare_to_baseline``'s ``table``: the policies that help or hurt beyond seed noise (Welch's
    test against ``baseline``), the best policy by mean and Welch's test against the runner-up, and the
    weakest policy other than the baseline."""
    from .stats import ALPHA, welch

    beyond = table[table["beyond_noise"]]
    best = table["mean"].idxmax()
    runner_up = table.drop(index=best)["mean"].idxmax()
    runs = {policy: frame.loc[frame["augment"] == policy, "val_accuracy"] for policy in (best, runner_up)}
    best_p = welch(runs[best], runs[runner_up])
    return {"helps": beyond.loc[beyond["difference"] > 0, "difference"].to_dict(),
            "hurts": beyond.loc[beyond["difference"] < 0, "difference"].to_dict(),
            "best": best, "runner_up": runner_up, "best_p": best_p, "best_beyond_noise": bool(best_p < ALPHA),
            "weakest": table.drop(index=baseline)["mean"].idxmin(), "seed_sd": float(table["std"].mean())}


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


def seed_sd(directory=None) -> float:
    """One run's seed-to-seed standard deviation of validation accuracy: notebook 02's ablation (three
    seeds per policy), the standard deviation of each policy averaged over the policies."""
    import numpy as np

    records = load_study("ablation", augmentation_ablation(), directory)
    by_policy: dict[str, list[float]] = {}
    for r in records.values():
        by_policy.setdefault(r["config"]["augment"], []).append(r["val"]["accuracy"])
    return float(np.mean([np.std(v, ddof=1) for v in by_policy.values() if len(v) > 1]))


def compare_to_baseline(frame, group: str, value: str, baseline: str, alpha: float = 0.05):
    """Mean and standard deviation of ``value`` per ``group`` across seeds, the difference from
    ``baseline``'s mean, and Welch's t-test of that difference (is it beyond seed-to-seed noise?)."""
    import pandas as pd
    from scipy import stats

    base = frame.loc[frame[group] == baseline, value].to_numpy()
    rows = []
    for name, values in frame.groupby(group, sort=False)[value]:
        v = values.to_numpy()
        p = float(stats.ttest_ind(v, base, equal_var=False).pvalue) if name != baseline and len(v) > 1 else float("nan")
        rows.append({group: name, "mean": v.mean(), "std": v.std(ddof=1) if len(v) > 1 else float("nan"),
                     "runs": len(v), "difference": v.mean() - base.mean(), "p_value": p,
                     "beyond_noise": bool(p < alpha)})
    return pd.DataFrame(rows).set_index(group)
