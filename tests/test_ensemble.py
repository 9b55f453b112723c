"""Seed ensembles: the mean of the members' probabilities, stored in half precision, the study's
configs, its validation record checked against a direct computation, and its errors."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

import fer_utils as fu
from fer_utils.course import ensemble as ens
from fer_utils.models import ensemble_of

SMALL = {"name": "plain_cnn", "kwargs": {"depth": 3, "width": 8}}


def trained_alike(n: int) -> list[torch.nn.Module]:
    """``n`` small models of one architecture, each from its own seed."""
    models = []
    for seed in range(n):
        fu.set_seed(seed)
        models.append(fu.build_model(SMALL["name"], **SMALL["kwargs"]).eval())
    return models


def test_an_ensemble_returns_the_log_of_its_members_mean_probabilities():
    members = trained_alike(3)
    model = ensemble_of(members)
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad():
        expected = torch.stack([torch.softmax(m(x), dim=1) for m in members]).mean(0)
        got = model(x)
    torch.testing.assert_close(torch.softmax(got, dim=1), expected)
    torch.testing.assert_close(got.exp().sum(1), torch.ones(4))  # already log-probabilities
    assert model.fer_spec == {"name": "ensemble", "kwargs": {"members": [SMALL] * 3}}
    with pytest.raises(ValueError, match="at least one member"):
        fu.build_model("ensemble", members=[])


def test_a_half_precision_checkpoint_is_half_the_size_and_loads_back_into_float32(tmp_path):
    model = ensemble_of(trained_alike(2))
    full = fu.save_model(tmp_path / "full.pt", model)
    half = fu.save_model(tmp_path / "half.pt", model, half=True)
    weights = {name: sum(t.nbytes for t in fu.checkpoints.read_checkpoint(path)["state_dict"].values())
               for name, path in (("full", full), ("half", half))}
    assert weights["half"] < 0.55 * weights["full"]  # float16 weights (the step counters stay int64)
    loaded = fu.load_model(half)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    faces = np.random.default_rng(0).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    np.testing.assert_allclose(fu.predict_proba(loaded, faces), fu.predict_proba(model, faces), atol=2e-3)


def test_size_curve_scores_the_mean_of_the_first_k_members():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(7), size=(4, 50))
    labels = rng.integers(0, 7, 50)
    expected = [float((probs[:k].mean(0).argmax(1) == labels).mean()) for k in range(1, 5)]
    assert ens.size_curve(probs, labels) == pytest.approx(expected)


def test_the_members_are_the_chosen_setting_on_the_fitting_split_and_the_shipped_config_on_everything():
    grid = ens.member_grid()
    _, final = fu.course.final_model.final_config(fu.RESULTS_DIR / "experiments")
    fitting = [c for label, c in grid.items() if label.startswith("fitting split")]
    refit = [c for label, c in grid.items() if label.startswith("all training images")]
    assert [c.seed for c in fitting] == list(range(ens.MEMBERS))
    # The shipped model is seed 0 of the refit; the others are its config from the next seeds.
    assert refit == [dataclasses.replace(final, seed=s) for s in range(1, ens.MEMBERS)]
    curve = fu.course.final_model.refit_scale_curve()[fu.course.final_model.curve_label(final.augment, final.epochs, 0)]
    assert dataclasses.replace(fitting[0], tta=curve.tta) == curve  # the curve's chosen run, seed 0
    assert all(c.val_fraction > 0 and c.dedup_val for c in fitting)


def test_validation_study_matches_a_direct_computation_and_build_joins_the_shipped_model_and_the_refits(synthetic, tmp_path):
    config = fu.ExperimentConfig(model=SMALL["name"], model_kwargs=SMALL["kwargs"], epochs=1, tta="flip")
    grid = {**{ens.member_label("fitting", s): dataclasses.replace(config, seed=s, val_fraction=0.3) for s in (0, 1)},
            **{ens.member_label("refit", s): dataclasses.replace(config, seed=s, val_fraction=0.0) for s in (1, 2)}}
    with pytest.raises(FileNotFoundError, match="run_study.py ensemble"):
        ens.validation_study(synthetic, grid)
    models = trained_alike(3)  # by seed
    for label in grid:
        fu.save_model(fu.course.records.weights_path(ens.STUDY, label), models[grid[label].seed])
    members = models[:2]  # the fitting split's
    record = ens.validation_study(synthetic, grid)
    val = fu.experiments.split_data(synthetic, grid[ens.member_label("fitting", 0)])[1]
    probs = np.stack([fu.predict_proba(m, val.images, tta="flip") for m in members])
    assert record["n_val"] == len(val) and record["members"] == 2
    assert record["member_accuracy"] == pytest.approx([(p.argmax(1) == val.labels).mean() for p in probs])
    assert record["ensemble"]["accuracy"] == pytest.approx((probs.mean(0).argmax(1) == val.labels).mean())
    assert record["size_curve"][-1] == pytest.approx(record["ensemble"]["accuracy"])
    assert ens.validation_record() == fu.load_json(fu.records_dir() / "ensemble_validation.json")
    with pytest.raises(fu.CheckpointError, match="no checkpoint"):
        ens.build(grid)  # the shipped model is missing
    shipped = fu.save_model(tmp_path / "shipped.pt", models[0])
    path = ens.build(grid, shipped=shipped)
    assert path == fu.records_dir() / "final_ensemble.pt"
    expected = probs_one_pass(models, val.images)  # the shipped model (seed 0), then the refits' seeds 1 and 2
    np.testing.assert_allclose(fu.predict_proba(fu.load_model(path), val.images), expected, atol=2e-3)
    assert fu.checkpoints.read_checkpoint(path)["members"][1:] == [label for label in grid if label.startswith("all training")]


def probs_one_pass(members, images):
    return np.stack([fu.predict_proba(m, images) for m in members]).mean(0)


@pytest.mark.parametrize(("a_only", "b_only", "expected"), [(60, 20, True), (20, 60, False), (11, 9, False)])
def test_the_ensemble_is_chosen_only_when_it_beats_its_first_member_beyond_chance(a_only, b_only, expected):
    record = {"mcnemar_vs_first": fu.stats.mcnemar_from_counts(a_only, b_only)}
    assert ens.wins(record) is expected


def test_predict_uses_the_model_the_shipped_manifest_names(tmp_path, monkeypatch):
    manifest = tmp_path / "shipped_models.json"
    monkeypatch.setattr(ens, "ENSEMBLE_PATH", tmp_path / "final_ensemble.pt")
    assert fu.checkpoints.photo_checkpoint(manifest) == fu.checkpoints.DEFAULT_MODEL  # no manifest
    for counts, chosen in (((20, 60), fu.checkpoints.DEFAULT_MODEL), ((60, 20), ens.ENSEMBLE_PATH)):
        study = {"members": 2, "n_val": 100, "mcnemar_vs_first": fu.stats.mcnemar_from_counts(*counts, n=100)}
        ens.ship(study, manifest)  # fixed once, when the models are shipped
        assert fu.load_json(manifest)["photos"] == fu.paths.project_relative(chosen)
        fu.save_model(ens.ENSEMBLE_PATH, ensemble_of(trained_alike(2)))
        assert fu.checkpoints.photo_checkpoint(manifest) == chosen
        ens.ENSEMBLE_PATH.unlink()
        assert fu.checkpoints.photo_checkpoint(manifest) == fu.checkpoints.DEFAULT_MODEL  # named but missing


def test_the_shipped_manifest_agrees_with_the_validation_study_and_predict_reads_no_study():
    study = ens.validation_record(fu.RESULTS_DIR)
    expected = ens.ENSEMBLE_PATH if ens.wins(study) else fu.checkpoints.DEFAULT_MODEL
    assert fu.checkpoints.photo_checkpoint() == expected
    code = ("import sys, fer_utils.cli, fer_utils.checkpoints as c; c.photo_checkpoint(); "
            "print([m for m in sys.modules if '.course' in m])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
