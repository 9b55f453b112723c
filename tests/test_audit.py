import numpy as np

import fer_utils as fu
from fer_utils import audit
from fer_utils.data import FER2013, Split


def split(images, labels, source):
    n = len(images)
    return Split(np.asarray(images, np.uint8), np.asarray(labels, np.int64), np.asarray([source] * n),
                 np.asarray([f"{source}_{i}.jpg" for i in range(n)]))


def known_dataset():
    """Train: a, a (same label), b, c (angry), c (happy), blank. Test: a, d, e, e."""
    rng = np.random.default_rng(0)
    a, b, c, d, e = (rng.integers(0, 256, (48, 48)) for _ in range(5))
    blank = np.full((48, 48), 7)
    train = split([a, a, b, c, c, blank], [1, 1, 2, 0, 3, 4], "Training")
    test = split([a, d, e, e], [1, 5, 6, 6], "PublicTest")
    return FER2013(train=train, test=test, classes=fu.CLASSES, location=None)


def test_exact_duplicate_groups_are_found_with_their_kind_and_label_conflicts():
    data = known_dataset()
    groups = audit.duplicate_groups(data, audit.pixel_hashes(np.concatenate([data.train.images, data.test.images])))
    by_rows = {tuple(r): g for r, g in zip(groups["rows"], groups.to_dict("records"), strict=True)}
    assert set(by_rows) == {(0, 1, 6), (3, 4), (8, 9)}
    assert by_rows[(0, 1, 6)]["kind"] == "train and test" and not by_rows[(0, 1, 6)]["conflicting_labels"]
    assert by_rows[(3, 4)]["kind"] == "within train" and by_rows[(3, 4)]["conflicting_labels"]
    assert by_rows[(3, 4)]["labels"] == ["angry", "happy"]
    assert by_rows[(8, 9)]["kind"] == "within test"
    summary = audit.audit_summary(groups)
    assert summary.loc["within train", "conflicting groups"] == 1
    assert summary.loc["train and test", "images"] == 3


def test_blank_images_and_the_deduplicated_test_set():
    data = known_dataset()
    np.testing.assert_array_equal(audit.near_constant(data.train.images), [0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(audit.deduplicated_test_mask(data), [False, True, True, True])


def test_perceptual_hash_groups_a_slightly_changed_copy_that_exact_hashing_misses():
    rng = np.random.default_rng(1)
    face = np.clip(rng.normal(128, 40, (48, 48)), 0, 255).astype(np.uint8)
    face[10:30, 10:30] = 250  # structure that survives small changes
    brighter = np.clip(face.astype(int) + 3, 0, 255).astype(np.uint8)
    other = rng.integers(0, 256, (48, 48)).astype(np.uint8)
    images = np.stack([face, brighter, other])
    assert len(audit._group_by_key(audit.pixel_hashes(images))) == 0
    groups = audit._group_by_key(audit.perceptual_hashes(images))
    assert [g.tolist() for g in groups] == [[0, 1]]


def test_near_duplicate_groups_leave_out_exact_copies_and_blank_images():
    data = known_dataset()
    images = np.concatenate([data.train.images, data.test.images])
    exact = audit.duplicate_groups(data, audit.pixel_hashes(images))
    near = audit.near_duplicate_groups(data, exact, audit.near_constant(images))
    assert near.empty and list(near.columns) == list(exact.columns)
