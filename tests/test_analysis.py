"""Calibration, saliency and the misclassification explorer (driven without a browser)."""

import numpy as np
import pytest

import fer_utils as fu
from fer_utils import calibration, explorer
from fer_utils.saliency import grad_cam


def test_ece_of_a_calibrated_and_an_overconfident_model():
    rng = np.random.default_rng(0)
    n = 20_000
    confidence = rng.uniform(0.5, 1.0, n)
    labels = np.zeros(n, int)
    correct = rng.random(n) < confidence  # right exactly as often as it claims
    probs = np.zeros((n, 2))
    probs[np.arange(n), np.where(correct, 0, 1)] = confidence
    probs[np.arange(n), np.where(correct, 1, 0)] = 1 - confidence
    assert calibration.expected_calibration_error(probs, labels) < 0.03
    wrong = np.tile([[0.05, 0.95]], (100, 1))  # 95% sure, always wrong
    assert calibration.expected_calibration_error(wrong, np.zeros(100, int)) == pytest.approx(0.95)


def test_reliability_table_by_hand():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    labels = np.array([0, 1, 1, 0])
    table = calibration.reliability_table(probs, labels, n_bins=2)
    # bin (0, 0.5]: nothing; bin (0.5, 1]: all four, confidence mean 0.7375, accuracy 0.5
    assert list(table["count"]) == [4]
    assert table["confidence"][0] == pytest.approx(0.7375) and table["accuracy"][0] == 0.5
    assert calibration.expected_calibration_error(probs, labels, n_bins=2) == pytest.approx(0.2375)


def fake_predictions():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                      [0.1, 0.8, 0.1], [0.1, 0.45, 0.45], [0.0, 0.1, 0.9]])
    return labels, probs


def test_select_filters_by_true_and_predicted_class_and_sorts_by_confidence():
    labels, probs = fake_predictions()
    # errors: #1 (0 -> 1, 0.7), #2 (1 -> 0, 0.6), #4 (2 -> 1, 0.45: argmax takes the first tie)
    np.testing.assert_array_equal(explorer.select(labels, probs), [1, 2, 4])
    np.testing.assert_array_equal(explorer.select(labels, probs, most_confident_first=False), [4, 2, 1])
    np.testing.assert_array_equal(explorer.select(labels, probs, predicted_class=1), [1, 4])
    np.testing.assert_array_equal(explorer.select(labels, probs, true_class=1, errors_only=False), [3, 2])


def test_page_of_and_most_confused_pairs():
    chunk, pages = explorer.page_of(np.arange(10), page=1, page_size=4)
    assert list(chunk) == [4, 5, 6, 7] and pages == 3
    assert explorer.page_of(np.arange(0), 5, 4)[1] == 1
    cm = np.array([[5, 3, 0], [1, 6, 0], [0, 4, 2]])
    pairs = explorer.most_confused_pairs(cm, ["a", "b", "c"], k=2)
    assert pairs[["true", "predicted", "count"]].values.tolist() == [["c", "b", 4], ["a", "b", 3]]
    assert pairs["share of true class"][0] == pytest.approx(4 / 6)


def test_the_explorer_widget_follows_its_controls():
    labels, probs = fake_predictions()
    images = np.zeros((6, 48, 48), np.uint8)
    calls = []
    ui = explorer.MisclassificationExplorer(images, labels, probs, ["a", "b", "c"], page_size=2,
                                            saliency=lambda i, c: calls.append((i, c)) or np.zeros((48, 48)))
    assert list(ui.selection) == [1, 2, 4] and list(ui.shown) == [1, 2] and ui.page.max == 2
    assert bytes(ui.grid.value).startswith(b"\x89PNG") and "3 images, page 1 of 2" in ui.status.value
    ui.page.value = 2
    assert list(ui.shown) == [4]
    ui.predicted_class.value = 0
    assert list(ui.selection) == [2] and ui.page.value == 1 and list(ui.shown) == [2]
    ui.pick.value = 2
    assert calls == [(2, 0)]  # the details panel asked for the saliency of the predicted class
    assert bytes(ui.details.value).startswith(b"\x89PNG")
    ui.errors_only.value = False
    assert list(ui.selection) == [0, 2]


def test_grad_cam_gives_one_map_per_image_in_unit_range():
    fu.set_seed(0)
    model = fu.build_model("residual_cnn", widths=[8, 16], blocks=[1, 1])
    images = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    maps = grad_cam(model, images, [0, 3, 6])
    assert maps.shape == (3, 48, 48) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    with pytest.raises(ValueError, match="Grad-CAM needs a CNN"):
        grad_cam(fu.build_model("mlp"), images, [0, 0, 0])
