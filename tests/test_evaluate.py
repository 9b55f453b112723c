import numpy as np
import pytest
import torch
from sklearn import metrics as skm

import fer_utils as fu


@pytest.fixture
def labels():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 7, 500)
    y_pred = np.where(rng.random(500) < 0.6, y_true, rng.integers(0, 7, 500))
    y_pred[y_pred == 1] = 2  # class 1 is never predicted: precision 0/0
    return y_true, y_pred


def test_confusion_matrix_matches_sklearn(labels):
    np.testing.assert_array_equal(fu.confusion_matrix(*labels), skm.confusion_matrix(*labels, labels=range(7)))


def test_per_class_table_matches_sklearns_classification_report(labels):
    table = fu.per_class_table(*labels)
    report = skm.classification_report(*labels, labels=range(7), target_names=fu.CLASSES,
                                       output_dict=True, zero_division=0)
    for row in [*fu.CLASSES, "macro avg", "weighted avg"]:
        for col in ("precision", "recall", "f1-score", "support"):
            assert table.loc[row, col] == pytest.approx(report[row][col], abs=1e-12), (row, col)
    assert table.loc["accuracy", "f1-score"] == pytest.approx(report["accuracy"])
    assert list(table.index) == [*fu.CLASSES, "accuracy", "macro avg", "weighted avg"]


def test_metrics_match_sklearn(labels):
    m = fu.metrics(*labels)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(*labels))
    assert m["macro_f1"] == pytest.approx(skm.f1_score(*labels, average="macro", zero_division=0))
    assert m["weighted_f1"] == pytest.approx(skm.f1_score(*labels, average="weighted", zero_division=0))
    assert m["n"] == 500


def test_predict_proba_gives_distributions_and_flip_tta_averages_both_views():
    model = fu.build_model("plain_cnn", depth=2, width=8).eval()
    images = np.random.default_rng(0).integers(0, 256, (10, 48, 48), dtype=np.uint8)
    probs = fu.predict_proba(model, images, batch_size=4, precision="fp32")
    assert probs.shape == (10, 7)
    np.testing.assert_allclose(probs.sum(1), 1, rtol=1e-5)
    flipped = fu.predict_proba(model, images[:, :, ::-1].copy(), precision="fp32")
    tta = fu.predict_proba(model, images, tta=True, precision="fp32")
    np.testing.assert_allclose(tta, (probs + flipped) / 2, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        direct = torch.softmax(model(fu.to_model_input(torch.from_numpy(images))), 1).numpy()
    np.testing.assert_allclose(probs, direct, rtol=1e-4, atol=1e-6)


def test_evaluation_is_fp32_by_default_on_every_machine():
    model = fu.build_model("plain_cnn", depth=2, width=8).eval()
    images = np.random.default_rng(1).integers(0, 256, (6, 48, 48), dtype=np.uint8)
    np.testing.assert_array_equal(fu.predict_proba(model, images), fu.predict_proba(model, images, precision="fp32"))


def test_ten_crop_tta_averages_the_corner_and_centre_windows_and_their_mirrors():
    model = fu.build_model("plain_cnn", depth=2, width=8).eval()
    images = np.random.default_rng(3).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    k, m = fu.evaluate.TEN_CROP_PX, (48 - fu.evaluate.TEN_CROP_PX) // 2
    windows = [images[:, top : top + k, left : left + k] for top, left in [(0, 0), (0, 48 - k), (48 - k, 0), (48 - k, 48 - k), (m, m)]]
    views = windows + [w[:, :, ::-1] for w in windows]
    expected = np.mean([fu.predict_proba(model, np.ascontiguousarray(v)) for v in views], axis=0)
    np.testing.assert_allclose(fu.predict_proba(model, images, tta="ten-crop"), expected, rtol=1e-4, atol=1e-6)


def test_flip_shift_tta_averages_the_image_its_mirror_and_their_shifted_copies():
    model = fu.build_model("plain_cnn", depth=2, width=8).eval()
    images = np.random.default_rng(2).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    k = fu.evaluate.SHIFT_PX
    views = []  # the border repeats where a shift uncovers pixels
    for img in (images, images[:, :, ::-1]):
        pad = np.pad(img, ((0, 0), (k, k), (k, k)), mode="edge")
        views += [img] + [pad[:, k - dy : k - dy + 48, k - dx : k - dx + 48] for dx, dy in [(k, 0), (-k, 0), (0, k), (0, -k)]]
    expected = np.mean([fu.predict_proba(model, np.ascontiguousarray(v)) for v in views], axis=0)
    np.testing.assert_allclose(fu.predict_proba(model, images, tta="flip+shift"), expected, rtol=1e-4, atol=1e-6)
    # a shift moves content: the pixel at column 10 lands at column 10 + k
    moved = fu.evaluate.shifted(torch.from_numpy(images[:, None].astype(np.float32)), k, 0)
    np.testing.assert_array_equal(moved[:, 0, :, 10 + k].numpy(), images[:, :, 10])
    with pytest.raises(ValueError, match="tta must be one of"):
        fu.predict_proba(model, images, tta="rotate")
