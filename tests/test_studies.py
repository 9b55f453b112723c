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


def test_run_grid_in_fast_mode_trains_a_few_tiny_runs(synthetic, monkeypatch):
    monkeypatch.setenv("FER_FAST", "1")
    grid = {f"seed {s}": fu.ExperimentConfig(model="plain_cnn", model_kwargs={"depth": 2, "width": 16}, seed=s,
                                             batch_size=4, schedule="constant", precision="fp32")
            for s in range(3)}
    records = studies.run_grid("test", grid, data=synthetic)
    assert list(records) == ["seed 0", "seed 1"]
    assert all(r["epochs_run"] == 1 and r["fast_mode"] for r in records.values())
    assert list(studies.run_grid("test", grid, data=synthetic, fast_labels=["seed 2"])) == ["seed 2"]
