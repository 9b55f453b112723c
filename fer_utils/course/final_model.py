"""Notebook 04: the final model. Its candidates carry the findings of notebooks 02 and 03, are compared
at the proxy budget on the deduplicated validation split, the best are confirmed at a longer budget,
the chosen family's budget curve is run at the refit's scale, and the shipped model is that choice
refit on all the training images, tested once.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ..config import TTA_MODES, ExperimentConfig
from ..evaluate import predict_proba
from ..experiments import twin_metrics, with_interval
from ..stats import difference_threshold, seed_sd
from ..storage import load_json, records_dir
from .records import FAST_RESIDUAL, PROXY, load_study
from .targets import FINAL_MODEL_ONE_PASS, FINAL_MODEL_TTA
from .verdicts import paired_finding, verdict

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


def _frame(records: dict[str, dict]):
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
    return (Path(directory).parent if directory is not None else records_dir()) / "final_tta.json"


def choose_tta(model, val) -> dict:
    """Validation accuracy of ``model`` under every TTA mode, and the best mode (the cheaper on ties)."""
    accuracy = {mode: float((predict_proba(model, val.images, tta=mode).argmax(1) == val.labels).mean())
                for mode in TTA_MODES}
    return {"val_accuracy": accuracy, "chosen": max(TTA_MODES, key=lambda m: (accuracy[m], -TTA_MODES.index(m)))}


def curve_choice(directory=None, runs=None) -> dict:
    """The refit-scale curve's choice on validation: the cheapest setting (fewest epochs) whose mean
    validation accuracy over its seeds is within seed noise of the best mean, so that a longer run must
    win by more than noise (the one-standard-error rule). The noise is the seed-to-seed sd pooled over
    the settings run with two seeds or more (``fer_utils.stats.seed_sd``): means of n1 and n2 runs are within
    noise when they differ by at most 2 sd sqrt(1/n1 + 1/n2). With no repeated setting, the best mean (the fewer epochs on a tie).
    Chosen from all stored runs, or from those labelled in ``runs`` (the curve as it stood)."""
    curve = curve_frame(directory)
    if runs is not None:
        curve = curve[curve.index.isin(list(runs))]
    if curve.empty:
        raise FileNotFoundError("the refit-scale budget curve has no runs yet: run `python scripts/run_study.py curve`")
    means = curve.groupby(["augment", "epochs"])["val accuracy"].agg(["mean", "count"]).reset_index()
    noise = seed_sd(curve.groupby(["augment", "epochs"])["val accuracy"].apply(list))
    best = means.sort_values(["mean", "epochs"], ascending=[False, True]).iloc[0]
    chosen = best
    if noise.dof:
        margin = difference_threshold(noise.sd, runs=(means["count"], best["count"]))
        within = means[best["mean"] - means["mean"] <= margin]
        chosen = within.sort_values(["epochs", "mean"], ascending=[True, False]).iloc[0]
    return {"augment": str(chosen["augment"]), "epochs": int(chosen["epochs"]), "val_accuracy": float(chosen["mean"]),
            "seeds": int(chosen["count"]), "seed_sd": noise.sd,
            "best_mean": {"augment": str(best["augment"]), "epochs": int(best["epochs"]),
                          "val_accuracy": float(best["mean"]), "seeds": int(best["count"])},
            "chosen_from": curve["val accuracy"].to_dict()}


def final_config(directory=None, curve_runs=None) -> tuple[str, ExperimentConfig]:
    """The shipped model's config: the chosen recipe refit on all the training images (no validation
    split) with the policy and epochs of the refit-scale curve's best run (``curve_choice``, over
    ``curve_runs`` if given), and the test-time augmentation chosen on validation
    (``results/final_tta.json``). The refit keeps the chosen run's epochs, so it takes
    28,709 / 20,096 = 1.43 times its optimiser steps."""
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
    ``one_pass`` (``evaluate_checkpoint``'s metrics by split): against ``targets.FINAL_MODEL_TTA`` and
    ``FINAL_MODEL_ONE_PASS``, each split's accuracy, 95% interval, its verdict and whether its interval reaches the target; the
    proxy budget curve's last gain (``budget_frame``) and its verdict against two single runs' noise
    ``threshold``; and the ``hardest`` classes by F1 on the full test set (with the TTA)."""
    def against(table: dict, targets: dict) -> dict:
        splits = {}
        for split, target in targets.items():
            m = with_interval(table[split])
            splits[split] = {"accuracy": m["accuracy"], "low": m["low"], "high": m["high"], "target": target.value,
                             "verdict": verdict(m["accuracy"], target=target),
                             "interval_reaches": verdict(m["high"], target=target) == "met"}
        return {"met": all(s["verdict"] == "met" for s in splits.values()), "splits": splits}

    gains = budget_curve["val accuracy"].diff().dropna()
    last_gain = float(gains.iloc[-1]) if len(gains) else float("nan")
    f1 = {key.removeprefix("f1_"): value for key, value in metrics["test"].items() if key.startswith("f1_")}
    return {"tta": against(metrics, FINAL_MODEL_TTA), "one_pass": against(one_pass, FINAL_MODEL_ONE_PASS),
            "budget_last_gain": last_gain,
            "budget_verdict": verdict(last_gain, threshold) if len(gains) else "no longer budget",
            "hardest": sorted(f1, key=f1.get)[:hardest]}


def refit_follows_curve(final_record: dict, directory=None) -> dict:
    """Whether the shipped model still has the refit-scale curve's best setting: the choice stored
    in its record when it was refit ('then'), the curve's choice over every run stored now ('now'),
    and 'current' (the same policy and epochs). A curve that grows after the refit can overtake it."""
    then, now = final_record["choice"], curve_choice(directory)
    return {"then": then, "now": now, "current": (then["augment"], then["epochs"]) == (now["augment"], now["epochs"])}


def twin_finding(metrics: dict) -> str:
    """Notebook 04's sentence on the test faces that have an exact twin in training, from an
    ``evaluate_checkpoint`` record's metrics: their accuracy against the others', each with its interval, and
    what the overlap (or not) of the intervals says; '' where no test face has a twin (a small fast-mode set)."""
    twins, others = twin_metrics(metrics), with_interval(metrics["deduplicated"])
    if not twins["n"]:
        return ""
    memory = twins["low"] > others["high"]
    return (f"The {twins['n']:,} test images with an exact twin in training get {twins['accuracy']:.1%} "
            f"[{twins['low']:.1%}, {twins['high']:.1%}] right, the other {others['n']:,} {others['accuracy']:.1%} "
            f"[{others['low']:.1%}, {others['high']:.1%}]: "
            + ("the intervals do not overlap, so the model answers the twins partly from memory, and the full test set "
               "flatters it; " if memory else "the intervals overlap; ")
            + f"disgust's F1 is {metrics['test']['f1_disgust']:.2f} with them and {metrics['deduplicated']['f1_disgust']:.2f} "
            "without. The deduplicated row is the estimate for new faces.")
