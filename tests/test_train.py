import numpy as np
import pandas as pd
import pytest
import torch

import fer_utils as fu
from fer_utils import train as train_module

TINY = {"name": "plain_cnn", "depth": 2, "width": 16}


def tiny_model():
    fu.set_seed(0)  # the initial weights are part of what a seed fixes
    kwargs = {k: v for k, v in TINY.items() if k != "name"}
    return fu.build_model(TINY["name"], **kwargs)


def config(**overrides):
    base = dict(epochs=4, batch_size=32, lr=1e-2, augment="none", precision="fp32", seed=0)
    return fu.TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def splits(synthetic):
    return fu.train_val_split(synthetic.train, 0.3, seed=0)


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_a_tiny_model_learns_the_synthetic_faces_well_above_chance(splits):
    train, val = splits
    result = fu.fit(tiny_model(), train, val, config(epochs=10, augment="shift"), progress=False)
    assert result.best_val_accuracy > 0.8  # chance is 1/7
    assert isinstance(result.history, pd.DataFrame) and len(result.history) == 10
    assert {"train_loss", "val_accuracy", "images_per_s", "lr"} <= set(result.history.columns)
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]
    assert result.best_epoch == int(result.history["val_accuracy"].idxmax()) + 1
    # the returned model is the best epoch's
    probs = fu.predict_proba(result.model, val.images, precision="fp32")
    assert (probs.argmax(1) == val.labels).mean() == pytest.approx(result.best_val_accuracy)


def test_training_is_deterministic(splits):
    train, val = splits
    a = fu.fit(tiny_model(), train, val, config(epochs=2, augment="all"), progress=False)
    b = fu.fit(tiny_model(), train, val, config(epochs=2, augment="all"), progress=False)
    assert_same_weights(weights(a.model), weights(b.model))


def test_the_clean_training_accuracy_scores_a_fixed_sample_without_augmentation_or_touching_training(splits, monkeypatch):
    train, val = splits
    monkeypatch.setattr(train_module, "CLEAN_TRAIN_SAMPLE", 50)
    sample = train_module.clean_train_sample(train, 50)
    assert len(sample) == 50 and len(train_module.clean_train_sample(train, 10**6)) == len(train)
    assert (sample.images == train_module.clean_train_sample(train, 50).images).all()  # the same faces every time
    result = fu.fit(tiny_model(), train, val, config(epochs=1, augment="all"), progress=False)
    clean = (fu.predict_proba(result.model, sample.images).argmax(1) == sample.labels).mean()
    assert result.history["clean_train_accuracy"].iloc[-1] == pytest.approx(clean)
    # scoring it changes nothing in training: the weights equal those of a run whose scoring is a stub
    # (without validation, the clean sample is all that fit scores)
    scored = fu.fit(tiny_model(), train, None, config(epochs=2, augment="all"), progress=False)
    monkeypatch.setattr(train_module, "predict_proba", lambda model, images, **_: np.full((len(images), 7), 1 / 7, np.float32))
    unscored = fu.fit(tiny_model(), train, None, config(epochs=2, augment="all"), progress=False)
    assert_same_weights(weights(scored.model), weights(unscored.model))


def test_epoch_sizes_split_the_epochs_into_equal_parts():
    assert train_module.epoch_sizes((), 3) == [48, 48, 48]
    assert train_module.epoch_sizes((32, 40, 48), 6) == [32, 32, 40, 40, 48, 48]
    assert train_module.epoch_sizes((32, 48), 5) == [32, 32, 32, 48, 48]


def test_progressive_resizing_trains_small_then_full_size_and_learns(splits, monkeypatch):
    seen = []
    original = torch.nn.functional.interpolate
    monkeypatch.setattr(torch.nn.functional, "interpolate",
                        lambda x, size, **kw: seen.append(size) or original(x, size=size, **kw))
    train, val = splits
    result = fu.fit(tiny_model(), train, val, config(epochs=10, train_sizes=(32, 48)), progress=False)
    assert result.history["train_size"].tolist() == [32] * 5 + [48] * 5
    assert set(seen) == {(32, 32)}  # the 48x48 epochs are not resized
    assert result.best_val_accuracy > 0.8


def test_random_crops_train_on_smaller_windows_and_learn(splits, monkeypatch):
    sides = []
    original = fu.augment.RandomCrop.forward
    monkeypatch.setattr(fu.augment.RandomCrop, "forward", lambda self, x: sides.append(x.shape[-1]) or original(self, x))
    train, val = splits
    result = fu.fit(tiny_model(), train, val, config(epochs=10, crop=40), progress=False)
    assert set(sides) == {48} and result.history["train_size"].tolist() == [40] * 10  # cropped from the 48 px faces
    assert result.best_val_accuracy > 0.8  # validated on the whole faces


@pytest.mark.parametrize("bad", [{"crop": 4}, {"crop": 50}, {"crop": 40, "train_sizes": (32, 48)}])
def test_a_crop_outside_the_face_or_with_resizing_is_refused(bad):
    with pytest.raises(ValueError, match="crop must be 0 or a side from 8 to 48"):
        fu.TrainConfig(**bad)


def test_ema_keeps_the_moving_average_of_the_weights_the_plain_run_passes_through(splits, monkeypatch):
    train, _ = splits
    steps = []  # the plain run's weights (and BatchNorm statistics) after every step
    real_step = torch.optim.AdamW.step
    plain_model = tiny_model()

    def record(self, *a, **k):
        out = real_step(self, *a, **k)
        steps.append({name: v.detach().clone() for name, v in plain_model.state_dict().items()})
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", record)
    plain = fu.fit(plain_model, train, None, config(epochs=2, channels_last=False), progress=False)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    averaged = fu.fit(tiny_model(), train, None, config(epochs=2, channels_last=False, ema=0.9), progress=False)
    for name, value in averaged.model.state_dict().items():
        if not value.is_floating_point():
            continue
        expected = steps[0][name]  # the average starts at the weights after the first step
        for step in steps[1:]:  # BatchNorm's statistics are averaged alike
            expected = 0.9 * expected + 0.1 * step[name]
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-6, msg=name)
    assert not all(torch.equal(a, b) for a, b in zip(averaged.model.state_dict().values(), plain.model.state_dict().values(),
                                                     strict=True))  # the average, not the last weights


def test_an_ema_run_learns_and_a_bad_decay_is_refused(splits):
    train, val = splits
    assert fu.fit(tiny_model(), train, val, config(epochs=10, ema=0.9), progress=False).best_val_accuracy > 0.8
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match=r"ema must be in \[0, 1\)"):
            fu.TrainConfig(ema=bad)


@pytest.mark.parametrize(("optimizer", "schedule"), [("sgd", "cosine"), ("adamw", "plateau"), ("adamw", "constant")])
def test_optimizers_and_schedules_train(splits, optimizer, schedule):
    train, val = splits
    result = fu.fit(tiny_model(), train, val, config(epochs=3, optimizer=optimizer, schedule=schedule,
                                                     lr=0.05 if optimizer == "sgd" else 1e-2,
                                                     label_smoothing=0.1), progress=False)
    assert result.history["train_loss"].iloc[-1] < result.history["train_loss"].iloc[0]


def test_early_stopping_watches_validation_accuracy(splits):
    train, val = splits
    result = fu.fit(tiny_model(), train, val, config(epochs=30, lr=1e-9, schedule="constant", patience=2),
                    progress=False)
    assert len(result.history) < 30
    assert result.history["val_accuracy"].iloc[result.best_epoch:].max() <= result.best_val_accuracy


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_resume_after_an_interruption_reaches_the_same_weights(splits, tmp_path, monkeypatch, ema):
    train, val = splits
    cfg = config(epochs=4, augment="all", ema=ema)
    full = fu.fit(tiny_model(), train, val, cfg, run_dir=tmp_path / "full", progress=False)

    real_save = train_module.save_torch
    calls = {"n": 0}

    def save_then_die(path, obj):
        real_save(path, obj)
        calls["n"] += 1
        if calls["n"] == 2:
            raise Interrupt  # as if the process died right after epoch 2's checkpoint

    monkeypatch.setattr(train_module, "save_torch", save_then_die)
    with pytest.raises(Interrupt):
        fu.fit(tiny_model(), train, val, cfg, run_dir=tmp_path / "cut", progress=False)
    monkeypatch.setattr(train_module, "save_torch", real_save)
    resumed = fu.fit(tiny_model(), train, val, cfg, run_dir=tmp_path / "cut", resume=True, progress=False)

    assert_same_weights(weights(full.model), weights(resumed.model))
    pd.testing.assert_frame_equal(
        full.history.drop(columns=["images_per_s", "seconds"]),
        resumed.history.drop(columns=["images_per_s", "seconds"]),
    )


def test_resume_refuses_a_checkpoint_of_another_config(splits, tmp_path):
    train, val = splits
    fu.fit(tiny_model(), train, val, config(epochs=1), run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        fu.fit(tiny_model(), train, val, config(epochs=1, lr=0.5), run_dir=tmp_path, resume=True, progress=False)


def test_bad_optimizer_and_schedule_names_are_errors(splits):
    train, val = splits
    with pytest.raises(ValueError, match="optimizer must be"):
        fu.fit(tiny_model(), train, val, config(optimizer="adam"), progress=False)
    with pytest.raises(ValueError, match="schedule must be"):
        fu.fit(tiny_model(), train, val, config(schedule="linear"), progress=False)
    with pytest.raises(ValueError, match="precision must be"):
        fu.fit(tiny_model(), train, val, config(precision="int8"), progress=False)


def test_bf16_autocast_trains_when_asked(splits):
    train, val = splits
    result = fu.fit(tiny_model(), train, val, config(epochs=2, precision="bf16"), progress=False)
    assert np.isfinite(result.history["train_loss"]).all()


def test_passes_per_epoch_take_more_steps_between_two_validations(splits, monkeypatch):
    train, val = splits
    steps = []
    step = torch.optim.AdamW.step
    monkeypatch.setattr(torch.optim.AdamW, "step", lambda self, *a, **k: (steps.append(1), step(self, *a, **k))[1])
    one = fu.fit(tiny_model(), train, val, config(epochs=2), progress=False)
    n_one = len(steps)
    three = fu.fit(tiny_model(), train, val, config(epochs=2, passes_per_epoch=3), progress=False)
    batches = lambda n: -(-n // 32)  # noqa: E731 (batches of 32, the passes' images shuffled into one stream)
    assert n_one == 2 * batches(len(train)) and len(steps) - n_one == 2 * batches(3 * len(train))
    assert len(one.history) == len(three.history) == 2  # still one validation per epoch
    with pytest.raises(ValueError, match="passes_per_epoch"):
        config(passes_per_epoch=0)


def test_a_field_added_later_is_stored_only_away_from_its_default():
    """Records made before ``passes_per_epoch`` existed keep matching their configs, and their keys."""
    plain, passes = fu.ExperimentConfig(), fu.ExperimentConfig(passes_per_epoch=5)
    assert "passes_per_epoch" not in plain.to_dict() and passes.to_dict()["passes_per_epoch"] == 5
    assert fu.ExperimentConfig.from_dict(passes.to_dict()) == passes
    assert fu.ExperimentConfig.from_dict(plain.to_dict()).passes_per_epoch == 1
    assert plain.key() != passes.key()


def test_the_distillation_loss_is_hintons_mix_of_labels_and_softened_teacher_probabilities():
    torch.manual_seed(0)
    logits, labels = torch.randn(5, 7), torch.randint(0, 7, (5,))
    teacher = torch.softmax(torch.randn(5, 7), 1)
    ce = torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1)
    assert train_module.distillation_loss(logits, labels, label_smoothing=0.1) == pytest.approx(ce.item())
    assert train_module.distillation_loss(logits, labels, teacher, 0.0) == pytest.approx(
        torch.nn.functional.cross_entropy(logits, labels).item())
    T, w = 3.0, 0.7
    soft_teacher = teacher ** (1 / T) / (teacher ** (1 / T)).sum(1, keepdim=True)  # p^(1/T), renormalised
    student = torch.softmax(logits / T, 1)
    kl = (soft_teacher * (soft_teacher.log() - student.log())).sum(1).mean()  # KL(teacher || student), by hand
    expected = (1 - w) * torch.nn.functional.cross_entropy(logits, labels) + w * T**2 * kl
    assert train_module.distillation_loss(logits, labels, teacher, w, T) == pytest.approx(expected.item(), rel=1e-5)
    assert train_module.distillation_loss(logits, labels, torch.softmax(logits, 1), 1.0, T).item() == pytest.approx(0, abs=1e-6)


def test_a_distilled_student_follows_its_teacher_not_the_labels(splits):
    train, val = splits
    teacher_class = (train.labels + 1) % 7  # a teacher that is always wrong, confidently
    soft = np.full((len(train), 7), 0.01, np.float32)
    soft[np.arange(len(train)), teacher_class] = 0.94
    result = fu.fit(tiny_model(), train, None, config(epochs=10, augment="shift", distill=1.0, temperature=2.0),
                    progress=False, soft_targets=soft)
    predicted = fu.predict_proba(result.model, train.images, precision="fp32").argmax(1)
    assert (predicted == teacher_class).mean() > 0.7 and (predicted == train.labels).mean() < 0.15
    with pytest.raises(ValueError, match="soft targets"):
        fu.fit(tiny_model(), train, None, config(epochs=1, distill=0.5), progress=False)
    with pytest.raises(ValueError, match="distill must be"):
        config(distill=1.5)


def test_mixup_blends_each_batch_with_its_labels_and_a_tiny_model_still_learns(splits, monkeypatch):
    train, val = splits
    seen = []

    def recording_loss(logits, labels, *args, **kwargs):
        seen.append(labels)
        return torch.nn.functional.cross_entropy(logits, labels)

    monkeypatch.setattr(train_module, "distillation_loss", recording_loss)
    fu.fit(tiny_model(), train, None, config(epochs=1, mixup=0.4), progress=False)
    targets = torch.cat(seen)
    assert targets.shape == (len(train), 7)  # one row of blended labels per training image
    assert torch.allclose(targets.sum(1), torch.ones(len(targets)))  # probabilities: each row a blend of two labels
    assert ((targets > 0).sum(1) <= 2).all() and ((targets > 0).sum(1) == 2).any()
    monkeypatch.undo()
    result = fu.fit(tiny_model(), train, val, config(epochs=10, augment="shift", mixup=0.4), progress=False)
    assert result.best_val_accuracy > 0.8
    assert "mixup" not in fu.ExperimentConfig().to_dict() and fu.ExperimentConfig(mixup=0.2).to_dict()["mixup"] == 0.2
    with pytest.raises(ValueError, match="mixup"):
        config(mixup=0.2, distill=0.5)
