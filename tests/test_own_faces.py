"""Notebook 09's study (fer_utils.course.own_faces): the stand-in camera, the pool/evaluation split, the draws of
k labelled faces, the verdicts against k = 0, and the whole study on a tiny synthetic input."""

import dataclasses
import json

import numpy as np
import pytest

import fer_utils as fu
from fer_utils.course import own_faces

CAMERA = own_faces.ANOTHER_CAMERA


def faces(n: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48), dtype=np.uint8)


def test_the_camera_keeps_the_shape_and_treats_a_face_alike_in_any_batch():
    batch = faces()
    out = own_faces.through_camera(batch)
    assert out.shape == batch.shape and out.dtype == np.uint8
    assert np.array_equal(out, own_faces.through_camera(batch))  # deterministic
    assert np.array_equal(out[5], own_faces.through_camera(batch[5:6])[0])  # whatever the batch around it
    assert np.array_equal(out[::-1], own_faces.through_camera(batch[::-1]))
    other_seed = own_faces.through_camera(batch, dataclasses.replace(CAMERA, seed=1))
    assert not np.array_equal(out, other_seed)  # the seed draws the noise


def test_the_camera_darkens_adds_noise_and_loses_detail():
    grey = np.full((1, 48, 48), 128, np.uint8)
    out = own_faces.through_camera(grey).astype(float)
    assert out.mean() == pytest.approx(255 * (128 / 255) ** CAMERA.gamma, abs=1.0)  # gamma > 1: darker mid-tones
    assert out.std() == pytest.approx(CAMERA.noise_sd, rel=0.15)  # the sensor noise, on a flat face
    checks = (np.indices((48, 48)).sum(0) % 2 * 255).astype(np.uint8)[None]  # the finest detail 48 px can hold
    clean = dataclasses.replace(CAMERA, gamma=1.0, noise_sd=0.0)
    assert own_faces.through_camera(checks, clean).std() < 0.1 * checks.std()  # gone at 24 px
    smooth = np.tile(np.linspace(0, 255, 48), (48, 1)).astype(np.uint8)[None]  # a gradient survives
    assert np.abs(own_faces.through_camera(smooth, clean).astype(int) - smooth).max() <= 6
    assert "24 px" in CAMERA.describe()


def test_pool_and_evaluation_are_disjoint_stratified_and_cover_every_face():
    labels = np.repeat(np.arange(7), [300, 30, 200, 500, 250, 240, 150])
    pool, evaluation = own_faces.pool_and_evaluation(labels, 600, seed=0)
    assert len(evaluation) == 600 and not set(pool) & set(evaluation)
    assert sorted([*pool, *evaluation]) == list(range(len(labels)))
    expected = np.bincount(labels) * 600 / len(labels)
    assert np.abs(np.bincount(labels[evaluation], minlength=7) - expected).max() <= 1
    assert np.array_equal(evaluation, own_faces.pool_and_evaluation(labels, 600, seed=0)[1])  # one fixed split
    assert not np.array_equal(evaluation, own_faces.pool_and_evaluation(labels, 600, seed=1)[1])


def test_k_faces_per_class_come_from_the_pool_nested_by_seed():
    labels = np.repeat(np.arange(7), 40)
    pool, _ = own_faces.pool_and_evaluation(labels, 70)
    five, ten = (own_faces.draw_labelled(labels, pool, k, seed=3) for k in (5, 10))
    assert np.array_equal(np.bincount(labels[ten]), [10] * 7) and set(ten) <= set(pool)
    assert set(five) <= set(ten)  # a seed's 10 faces hold its 5
    assert not np.array_equal(five, own_faces.draw_labelled(labels, pool, 5, seed=4))
    with pytest.raises(ValueError, match="fewer than k = 31"):
        own_faces.draw_labelled(labels, pool, 31, seed=0)
    train, val = own_faces.inner_split(labels, five, seed=0)
    assert sorted([*train, *val]) == sorted(five) and not set(train) & set(val)
    assert set(labels[val]) == set(range(7)) and len(val) == 7  # max(classes, 20% of 35)
    assert len(own_faces.inner_split(labels, ten, seed=0)[1]) == 14


N = 400
LABELS = np.zeros(N, int)  # every evaluation face is class 0; k = 0 gets the first half right
BASE = np.r_[np.zeros(N // 2, int), np.ones(N // 2, int)]


def run(k, seed, gained: int, lost: int = 0) -> dict:
    """A run that gets ``gained`` faces right that k = 0 gets wrong and ``lost`` the other way (the same on clean faces
    as k = 0)."""
    p = BASE.copy()
    p[N // 2: N // 2 + gained], p[:lost] = 0, 1
    accuracy = float((p == LABELS).mean())
    return {"k": k, "seed": seed, "shifted": {"accuracy": accuracy}, "clean": {"accuracy": 0.5},
            "predictions": {"shifted": own_faces.encode(p), "clean": own_faces.encode(BASE)}}


def test_a_k_holds_only_beyond_the_seed_spread_with_every_seed_significant():
    runs = [{**run(0, None, 0), "seed": None},
            *(run(5, s, g, lost) for s, (g, lost) in enumerate(((0, 4), (4, 0), (0, 0)))),  # 49%, 51%, 50%
            *(run(50, s, g) for s, g in enumerate((20, 24, 28))),  # 55%, 56%, 57%
            *(run(20, s, g, lost) for s, (g, lost) in enumerate(((16, 0), (60, 40), (24, 0))))]  # seed 1: p > 0.05
    rows, noise = own_faces.curve_rows(runs, LABELS)
    assert [r["k"] for r in rows] == [5, 20, 50] and noise["dof"] == 6
    assert noise["sd"] == pytest.approx(fu.stats.seed_sd([[0.49, 0.51, 0.50], [0.54, 0.55, 0.56], [0.55, 0.56, 0.57]]).sd)
    by_k = {r["k"]: r for r in rows}
    assert by_k[50]["threshold"] == pytest.approx(2 * noise["sd"] / np.sqrt(3))  # k = 0 has no seed noise
    assert by_k[50]["gain"] == pytest.approx(0.06) and by_k[50]["mean"] == pytest.approx(0.56)
    assert by_k[50]["verdict"] == "holds" and max(by_k[50]["p_values"]) < 0.05
    assert by_k[5]["verdict"] == "tie"  # within the spread
    assert by_k[20]["gain"] > by_k[20]["threshold"] and by_k[20]["p_values"][1] > 0.05 and by_k[20]["verdict"] == "tie"
    clean, _ = own_faces.curve_rows(runs, LABELS, "clean")
    assert all(r["gain"] == 0 and r["verdict"] == "tie" for r in clean)


def test_predictions_are_kept_as_digits():
    classes = np.array([0, 6, 3, 3, 1])
    assert own_faces.encode(classes) == "06331"
    assert np.array_equal(own_faces.decode("06331"), classes)


def test_the_study_runs_end_to_end_on_a_tiny_synthetic_input(synthetic, tmp_path):
    model = fu.save_model(tmp_path / "base.pt", fu.build_model("plain_cnn", depth=2, width=8))
    settings = own_faces.settings() | {"k": [2, 3], "seeds": [0, 1], "evaluation_faces": 28,
                                       "recipe": dataclasses.replace(fu.config.FINETUNE_RECIPE, epochs=2).to_dict()}
    lines = []
    record = own_faces.measure(synthetic, settings, model_path=model, progress=lines.append)
    json.dumps(record)  # stored as JSON
    counts = record["faces_count"]
    assert counts["evaluation"] == 28 and counts["pool"] + 28 == counts["validation"] == record["shift"]["clean"]["n"]
    assert [(r["k"], r["seed"]) for r in record["runs"]] == [(0, None), (2, 0), (2, 1), (3, 0), (3, 1)]
    assert all(r[part]["n"] == 28 and len(r["predictions"][part]) == 28 for r in record["runs"] for part in ("shifted", "clean"))
    labels = own_faces.decode(counts["evaluation labels"])
    for r in record["runs"]:
        assert (own_faces.decode(r["predictions"]["shifted"]) == labels).mean() == pytest.approx(r["shifted"]["accuracy"])
    assert [r["k"] for r in record["curve"]] == [r["k"] for r in record["forgetting"]] == [2, 3]
    assert all(r["verdict"] in fu.course.verdicts.COMPARISON_VERDICTS for r in record["curve"] + record["forgetting"])
    assert record["runs"][1]["train_faces"] + record["runs"][1]["validation_faces"] == 14
    assert record["shift"]["mcnemar"]["difference"] == pytest.approx(
        record["shift"]["clean"]["accuracy"] - record["shift"]["shifted"]["accuracy"])
    assert len(lines) == 5  # the shift, then one line a run


def test_the_demo_folder_skips_a_class_the_pool_is_short_of():
    labels = np.repeat(np.arange(7), [40, 4, 40, 40, 40, 40, 40])
    demo = own_faces.demo_faces(labels, np.arange(len(labels)), per_class=8)
    assert np.array_equal(np.bincount(labels[demo], minlength=7), [8, 0, 8, 8, 8, 8, 8])
    assert np.array_equal(demo, own_faces.draw_labelled(labels, np.flatnonzero(labels != 1), 8, seed=100))  # its own seed
