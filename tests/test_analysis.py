"""Calibration, saliency and the misclassification explorer (driven without a browser)."""

import numpy as np
import pytest

import fer_utils as fu
from fer_utils import calibration
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


def test_grad_cam_gives_one_map_per_image_in_unit_range():
    fu.set_seed(0)
    model = fu.build_model("residual_cnn", widths=[8, 16], blocks=[1, 1])
    images = np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8)
    maps = grad_cam(model, images, [0, 3, 6])
    assert maps.shape == (3, 48, 48) and maps.min() >= 0 and maps.max() <= 1 + 1e-6
    with pytest.raises(ValueError, match="Grad-CAM needs a CNN"):
        grad_cam(fu.build_model("mlp"), images, [0, 0, 0])


def test_saliency_examples_are_confident_correct_allowed_and_never_alike():
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (6, 48, 48), dtype=np.uint8)
    images = np.concatenate([faces, faces[:1], faces[:1]])  # images 6 and 7 copy image 0
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 0])
    p_true = np.array([0.7, 0.6, 0.2, 0.9, 0.8, 0.55, 0.95, 0.9])  # image 2 is a mistake
    probs = np.zeros((8, 2))
    probs[np.arange(8), labels], probs[np.arange(8), 1 - labels] = p_true, 1 - p_true
    allowed = np.ones(8, bool)
    allowed[3] = False  # e.g. a test image with a twin in the training set
    chosen = fu.saliency.distinct_confident_examples(images, labels, probs, per_class=2, allowed=allowed)
    # class 0: the copy 6 is the most confident, its twins 7 and 0 are skipped, 2 is wrong: then 1
    # class 1: 3 is not allowed, so 4 and 5
    assert chosen.tolist() == [6, 1, 4, 5]


def test_the_grad_cam_overview_is_readable_at_page_width():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    titles = [f"surprise\n{k}%" for k in range(14)]
    fig = fu.saliency.overview_figure(np.zeros((14, 48, 48), np.uint8), np.zeros((14, 48, 48)), titles)
    # notebook 05's 14 faces were one 1,981-pixel row with 8-point titles: about 4 pixels high at page width
    assert fig.get_size_inches()[0] * fig.dpi <= 1000 and fig.dpi == 100
    faces = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in faces] == titles
    assert min(ax.title.get_fontsize() for ax in faces) >= 12 and fig.get_suptitle()
    assert plt.get_fignums() == before  # not a pyplot figure
