import numpy as np
import pandas as pd
import pytest
from scipy import stats

import fer_utils as fu
from fer_utils import studies


def test_compare_to_baseline_reports_means_stds_and_welchs_test():
    frame = pd.DataFrame({"policy": ["none"] * 3 + ["flip"] * 3 + ["same"] * 3,
                          "acc": [0.50, 0.51, 0.49, 0.60, 0.61, 0.59, 0.50, 0.52, 0.48]})
    table = studies.compare_to_baseline(frame, "policy", "acc", "none")
    assert table.loc["flip", "mean"] == pytest.approx(0.60)
    assert table.loc["flip", "std"] == pytest.approx(np.std([0.60, 0.61, 0.59], ddof=1))
    assert table.loc["flip", "difference"] == pytest.approx(0.10)
    assert table.loc["flip", "p_value"] == pytest.approx(
        stats.ttest_ind([0.60, 0.61, 0.59], [0.50, 0.51, 0.49], equal_var=False).pvalue)
    assert table.loc["flip", "beyond_noise"] and not table.loc["same", "beyond_noise"]
    assert np.isnan(table.loc["none", "p_value"])


def test_grids_cover_what_the_notebooks_compare():
    ablation = studies.augmentation_ablation()
    assert {c.augment for c in ablation} == set(fu.POLICIES) and len(ablation) == 3 * len(fu.POLICIES)
    assert len({c.key() for c in ablation}) == len(ablation)
    archs = studies.architecture_comparison()
    assert {c.model for c in archs.values()} == set(fu.MODELS)
    assert len({(c.epochs, c.data_fraction, c.augment) for c in archs.values()}) == 1  # same budget for all


def test_final_candidates_share_one_cpu_budget():
    assert studies.relative_epoch_cost(48) == pytest.approx(1.0)
    assert studies.relative_epoch_cost(24) < studies.relative_epoch_cost(32) < 1
    assert studies.schedule_cost((32, 48), 4) == pytest.approx(2 * studies.relative_epoch_cost(32) + 2)
    for label, config in studies.final_recipe_candidates().items():
        cost = studies.schedule_cost(config.train_sizes, config.epochs)
        one_more = studies.schedule_cost(config.train_sizes, config.epochs + 1)
        if config.model_kwargs == studies.FAST_RESIDUAL:
            assert cost <= studies.CPU_BUDGET_EPOCHS < one_more, label
        if config.train_sizes:
            assert config.epochs > studies.CPU_BUDGET_EPOCHS and config.train_sizes[-1] == 48, label


def test_recipes_frame_ranks_the_stored_candidates_and_matches_the_choice(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_RESULTS_DIR", str(tmp_path))
    candidates = studies.final_recipe_candidates()
    labels = list(candidates)[:3]
    for accuracy, label in zip([0.60, 0.63, 0.61], labels, strict=True):
        config = candidates[label]
        fu.save_record(studies.record_name("recipes", config), {
            "config": config.to_dict(), "params": 1, "val": {"accuracy": accuracy},
            "train_seconds": 60.0, "device": "cpu"}, tmp_path / "experiments")
    frame = studies.recipes_frame()
    assert list(frame.index) == [labels[1], labels[2], labels[0]]
    assert frame["val accuracy"].tolist() == [0.63, 0.61, 0.60]
    assert studies.choose_final_recipe() == (labels[1], candidates[labels[1]])
    assert frame.equals(studies.recipes_frame(tmp_path / "experiments"))
    assert studies.recipes_frame(tmp_path / "elsewhere").empty


def test_run_grid_in_fast_mode_trains_a_few_tiny_runs(synthetic, monkeypatch):
    monkeypatch.setenv("FER_FAST", "1")
    grid = {f"seed {s}": fu.ExperimentConfig(model="plain_cnn", model_kwargs={"depth": 2, "width": 16}, seed=s,
                                             batch_size=4, schedule="constant", precision="fp32")
            for s in range(3)}
    records = studies.run_grid("test", grid, data=synthetic)
    assert list(records) == ["seed 0", "seed 1"]
    assert all(r["epochs_run"] == 1 and r["fast_mode"] for r in records.values())
    assert list(studies.run_grid("test", grid, data=synthetic, fast_labels=["seed 2"])) == ["seed 2"]
