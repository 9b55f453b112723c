"""The experiment grids of the course, defined once: the notebooks read their records, and
``scripts/run_study.py`` runs them (on the CPU here, or on a GPU where one is lent).

Proxy budgets keep each grid rerunnable on a 2-core CPU: half of the training split and
10 epochs per run (``PROXY``). The final model's candidates share the CPU budget of the
shipped model (``CPU_BUDGET_EPOCHS``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .augment import POLICIES
from .experiments import ExperimentConfig

# The CPU-efficient residual network: no residual block at 48x48 (the stem conv only), then
# three stages at 24, 12 and 6 pixels. Same 1.2M parameters as the original report's model,
# 2.5x its training speed on this CPU.
FAST_RESIDUAL = {"widths": [32, 64, 128, 256], "blocks": [0, 1, 1, 1]}

PROXY = ExperimentConfig(
    model="residual_cnn", model_kwargs=FAST_RESIDUAL, epochs=10, batch_size=128, optimizer="adamw",
    lr=2e-3, weight_decay=5e-4, label_smoothing=0.0, schedule="onecycle", augment="none",
    data_fraction=0.5,
)
SEEDS = (0, 1, 2)


def augmentation_ablation() -> list[ExperimentConfig]:
    """Notebook 02: the same model and budget under every augmentation policy, three seeds each."""
    return [dataclasses.replace(PROXY, augment=p, seed=s) for p in POLICIES for s in SEEDS]


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


# The final model's budget: at most 60 minutes of training on the 2-core CPU. The first shipped
# run measured 142 s per epoch at 48x48 (training plus the validation pass), so 22 such epochs
# (52 min) is the budget every candidate is sized to, leaving room for a slower machine.
CPU_BUDGET_EPOCHS = 22
# The accuracy the final model aims at (the best published single models reach about 73% on
# PrivateTest after hundreds of GPU epochs; the 2013 challenge winner had 71.16%).
TARGET = {"test": 0.70, "PrivateTest": 0.712}
VALIDATION_SHARE = 0.1  # of an epoch's time at 48x48: the validation pass, which always runs at 48


def relative_epoch_cost(size: int) -> float:
    """The CPU time of one training epoch at ``size`` x ``size``, relative to one at 48x48:
    convolution cost grows with the pixel count, the validation pass does not change."""
    return (1 - VALIDATION_SHARE) * (size / 48) ** 2 + VALIDATION_SHARE


def schedule_cost(train_sizes, epochs: int) -> float:
    """The CPU time of ``epochs`` epochs resized over ``train_sizes``, in 48x48 epochs."""
    from .train import epoch_sizes

    return sum(map(relative_epoch_cost, epoch_sizes(train_sizes, epochs)))


def budget_epochs(train_sizes=(), budget: float = CPU_BUDGET_EPOCHS) -> int:
    """How many epochs with progressive resizing over ``train_sizes`` cost ``budget`` 48x48 epochs."""
    epochs = int(budget)
    while schedule_cost(train_sizes, epochs + 1) <= budget:
        epochs += 1
    return epochs


FINAL_BASE = ExperimentConfig(
    model="residual_cnn", model_kwargs=FAST_RESIDUAL, epochs=CPU_BUDGET_EPOCHS, batch_size=128,
    optimizer="adamw", lr=2e-3, weight_decay=5e-4, label_smoothing=0.1, schedule="onecycle",
    augment="hflip+shift", tta=True,
)


def progressive(train_sizes: list[int]) -> ExperimentConfig:
    """The base recipe with progressive resizing, given as many epochs as fit the same budget."""
    return dataclasses.replace(FINAL_BASE, train_sizes=train_sizes, epochs=budget_epochs(train_sizes))


def final_recipe_candidates() -> dict[str, ExperimentConfig]:
    """Recipes compared on the validation split only, each sized to the same CPU time."""
    wider = {"widths": [32, 64, 128, 256], "blocks": [0, 1, 2, 2]}  # 2.7M params, half the speed
    return {
        "base: hflip+shift, label smoothing 0.1": FINAL_BASE,
        "no label smoothing": dataclasses.replace(FINAL_BASE, label_smoothing=0.0),
        "all augmentations": dataclasses.replace(FINAL_BASE, augment="all"),
        "hflip+shift+erase": dataclasses.replace(FINAL_BASE, augment="hflip+shift+erase"),
        "SGD with Nesterov momentum": dataclasses.replace(FINAL_BASE, optimizer="sgd", lr=0.05),
        "deeper (2.7M params)": dataclasses.replace(FINAL_BASE, model_kwargs=wider, epochs=CPU_BUDGET_EPOCHS // 2),
        "progressive resizing 40 -> 48": progressive([40, 48]),
        "progressive resizing 32 -> 40 -> 48": progressive([32, 40, 48]),
        "progressive resizing 24 -> 32 -> 40 -> 48": progressive([24, 32, 40, 48]),
    }


FINAL_NAME = "final_model"


def record_name(study: str, config: ExperimentConfig) -> str:
    """The record name of a grid's run: the study, the model and the config's key."""
    return f"{study}-{config.model}-{config.key()}"


def load_study(study: str, grid: dict[str, ExperimentConfig], directory=None) -> dict[str, dict]:
    """The stored records of a grid, by label (runs without a record are left out); from
    ``directory`` if given, else from where this mode's records go."""
    from .experiments import record_path
    from .storage import load_json

    out = {}
    for label, config in grid.items():
        name = record_name(study, config)
        path = Path(directory) / f"{name}.json" if directory is not None else record_path(name)
        if path.exists():
            out[label] = load_json(path)
    return out


def recipes_frame(directory=None):
    """The final-model candidates that have a record: one row each, best validation accuracy first."""
    import pandas as pd

    rows = [{"recipe": label, "epochs": r["config"]["epochs"],
             "train sizes": " -> ".join(map(str, r["config"].get("train_sizes") or [48])),
             "params": r["params"], "val accuracy": r["val"]["accuracy"],
             "minutes": r["train_seconds"] / 60, "device": r["device"]}
            for label, r in load_study("recipes", final_recipe_candidates(), directory).items()]
    columns = ["recipe", "epochs", "train sizes", "params", "val accuracy", "minutes", "device"]
    return pd.DataFrame(rows, columns=columns).set_index("recipe").sort_values("val accuracy", ascending=False)


def choose_final_recipe() -> tuple[str, ExperimentConfig]:
    """The candidate with the best validation accuracy among the stored 'recipes' records."""
    ranked = recipes_frame()
    if ranked.empty:
        raise FileNotFoundError("no recipe records yet: run `python scripts/run_study.py recipes` first")
    label = ranked.index[0]
    return label, final_recipe_candidates()[label]


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
    return {label: run_experiment(config, name=record_name(study, config), data=data, progress=False)
            for label, config in items}


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
