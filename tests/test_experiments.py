import dataclasses

import pytest

import fer_utils as fu
from fer_utils import experiments


def tiny_config(**overrides):
    return fu.ExperimentConfig(
        model="plain_cnn", model_kwargs={"depth": 2, "width": 16}, epochs=3, batch_size=32, lr=1e-2,
        augment="none", precision="fp32", **overrides,
    )


def test_a_record_holds_config_history_metrics_and_is_reused(synthetic, monkeypatch):
    record = fu.run_experiment(tiny_config(), data=synthetic, progress=False)
    assert record["config"] == tiny_config().to_dict()
    assert len(record["history"]) == 3 and record["epochs_run"] == 3
    assert "test" not in record  # the test set is used once, for the chosen model only
    assert record["train_precision"] == "torch.float32"
    assert record["params"] > 0 and record["flops"] > 0 and record["train_seconds"] > 0
    # one predicted class per validation image, in split order: what a paired test between runs needs
    _, val, _ = experiments.split_data(synthetic, tiny_config())
    predictions = record["val_predictions"]
    assert len(predictions) == record["n_val"] == len(val) and set(predictions) <= set(range(7))
    assert record["val"]["accuracy"] == pytest.approx((val.labels == predictions).mean())

    def no_training(*args, **kwargs):
        raise AssertionError("a stored record should be reused, not retrained")

    monkeypatch.setattr(experiments, "fit", no_training)
    assert fu.run_experiment(tiny_config(), data=synthetic) == record
    monkeypatch.setenv("FER_RETRAIN", "1")
    with pytest.raises(AssertionError, match="reused"):
        fu.run_experiment(tiny_config(), data=synthetic)


def test_fast_mode_uses_one_epoch_and_keeps_records_apart(synthetic, monkeypatch, tmp_path):
    monkeypatch.setenv("FER_FAST", "1")
    # 3% of the synthetic training split is a single batch: too short for the one-cycle schedule
    record = fu.run_experiment(tiny_config(schedule="constant"), data=synthetic, progress=False)
    assert record["epochs_run"] == 1 and record["fast_mode"] is True
    assert (tmp_path / "results" / "fast" / "experiments" / f"{record['name']}.json").exists()
    assert not (tmp_path / "results" / "experiments").exists()


def test_the_same_config_has_the_same_key_and_another_one_not():
    import hashlib
    import json

    config = tiny_config()  # the key is the config's own hash, not Python's (salted per process) hash
    assert config.key() == hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    assert fu.ExperimentConfig.from_dict(config.to_dict()).key() == config.key()
    assert tiny_config().key() != tiny_config(seed=1).key()
    with pytest.raises(ValueError, match="unknown experiment config keys"):
        fu.ExperimentConfig.from_dict({"modell": "mlp"})


def test_one_config_class_drives_fit_and_round_trips_through_json():
    config = tiny_config(train_sizes=[32, 48])
    assert isinstance(config, fu.TrainConfig)  # fit takes the experiment config itself: no field is dropped
    assert config.train_sizes == (32, 48)  # a JSON or CLI list becomes the tuple
    data = config.to_dict()
    assert list(data)[:2] == ["model", "model_kwargs"] and data["train_sizes"] == [32, 48]
    later = set(fu.config.LATER_FIELDS)  # left out at their defaults (test_train)
    assert set(data) == {f.name for f in dataclasses.fields(fu.ExperimentConfig)} - later
    assert fu.ExperimentConfig.from_dict(data) == config
    assert {f.name for f in dataclasses.fields(fu.TrainConfig)} - later < set(data)


def test_records_frame_has_one_row_per_record(synthetic):
    records = [fu.run_experiment(tiny_config(seed=s), data=synthetic, progress=False) for s in (0, 1)]
    frame = fu.records_frame(records)
    assert list(frame["seed"]) == [0, 1]
    assert frame["val_accuracy"].between(0, 1).all()


def test_evaluate_test_reports_every_test_subset_when_asked(synthetic):
    record = fu.run_experiment(tiny_config(), data=synthetic, progress=False, evaluate_test=True)
    assert set(record["test"]) == {"test", "PublicTest", "PrivateTest"}
    assert record["test"]["PublicTest"]["n"] + record["test"]["PrivateTest"]["n"] == record["test"]["test"]["n"]


def test_the_deduplicated_validation_split_has_no_twin_in_the_training_part(synthetic):
    # Plant exact copies of training images in the validation part of the split.
    train, val = fu.train_val_split(synthetic.train, 0.3, seed=0)
    twins = synthetic.train.images.copy()
    val_rows = [int(i) for i, p in enumerate(synthetic.train.paths) if p in set(val.paths)][:5]
    train_rows = [int(i) for i, p in enumerate(synthetic.train.paths) if p in set(train.paths)][:5]
    twins[val_rows] = twins[train_rows]
    data = dataclasses.replace(synthetic, train=dataclasses.replace(synthetic.train, images=twins))
    _, leaky, _ = experiments.split_data(data, tiny_config())
    fit_part, clean, _ = experiments.split_data(data, tiny_config(dedup_val=True))
    assert len(leaky) - len(clean) == 5
    assert not fu.audit.has_exact_twin(clean.images, fit_part.images).any()
    assert fu.audit.has_exact_twin(leaky.images, fit_part.images).sum() == 5


def test_val_fraction_zero_trains_on_every_training_image_without_validation(synthetic):
    record = fu.run_experiment(tiny_config(val_fraction=0.0), data=synthetic, progress=False)
    assert record["n_train"] == len(synthetic.train) and record["n_val"] == 0 and record["val"] is None
    assert record["best_epoch"] == 3  # without validation the model is the last epoch's
    assert "val_accuracy" not in record["history"][0]


def test_full_validation_is_the_split_the_records_score_also_in_fast_mode(synthetic, monkeypatch):
    config = tiny_config(dedup_val=True)
    whole = experiments.full_validation(synthetic, config)
    _, val, _ = experiments.split_data(synthetic, config)
    assert list(whole.paths) == list(val.paths)  # full mode: the same split
    monkeypatch.setenv("FER_FAST", "1")
    _, small, _ = experiments.split_data(synthetic, config)
    assert len(small) < len(whole) and list(experiments.full_validation(synthetic, config).paths) == list(whole.paths)
    with pytest.raises(ValueError, match="no validation split"):
        experiments.full_validation(synthetic, tiny_config(val_fraction=0.0))


def test_a_record_is_reused_only_while_it_was_made_with_the_same_config(tmp_path, monkeypatch):
    path = tmp_path / "record.json"
    assert fu.storage.stored(path, config={"a": 1}) is None  # nothing stored
    fu.save_json(path, {"config": {"a": 1}, "value": 3})
    assert fu.storage.stored(path, config={"a": 1})["value"] == 3
    assert fu.storage.stored(path, config={"a": 2}) is None and fu.storage.stored(path, settings={"a": 1}) is None
    monkeypatch.setenv(fu.storage.RETRAIN_ENV, "1")
    assert fu.storage.retrain_requested()
    monkeypatch.setenv(fu.storage.RETRAIN_ENV, "0")
    assert not fu.storage.retrain_requested()


def test_a_teachers_soft_targets_are_cached_and_made_again_when_the_teacher_changes(synthetic, monkeypatch, tmp_path):
    teacher = tmp_path / "teacher.pt"
    fu.save_model(teacher, fu.build_model("plain_cnn", depth=2, width=16))
    config = tiny_config(distill=0.5, temperature=2.0, teacher=str(teacher), tta="flip")
    train = experiments.split_data(synthetic, config)[0]
    cache = tmp_path / "run" / "teacher_targets.npz"
    made, probs = experiments.teacher_targets(config, train, cache=cache)
    assert probs.shape == (len(train), 7) and probs.sum(1) == pytest.approx(1, abs=1e-5)
    assert made["sha256"] == fu.storage.file_sha256(teacher) and made["tta"] == "flip" and cache.is_file()

    calls = []
    real = experiments.predict_proba
    monkeypatch.setattr(experiments, "predict_proba", lambda *a, **k: calls.append(1) or real(*a, **k))
    again, cached = experiments.teacher_targets(config, train, cache=cache)
    assert calls == [] and again == made and (cached == probs).all()  # read back, not computed
    experiments.teacher_targets(dataclasses.replace(config, tta="none"), train, cache=cache)
    assert calls == [1]  # another TTA: made again
    fu.save_model(teacher, fu.build_model("plain_cnn", depth=3, width=16))
    experiments.teacher_targets(config, train, cache=cache)
    assert calls == [1, 1]  # another teacher: made again
