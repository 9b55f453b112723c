"""The misclassification explorer without a browser: selection, paging, the audit join, the widget's
callbacks (driven from Python, also from several threads at once) and the committed notebook's state."""

import re
import threading
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from fer_utils import audit, explorer

CLASSES = ["a", "b", "c"]
NOTEBOOK = Path(__file__).parents[1] / "notebooks" / "05_what_the_model_gets_wrong.ipynb"


def fake_predictions():
    labels = np.array([0, 0, 1, 1, 2, 2])
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1],
                      [0.1, 0.8, 0.1], [0.1, 0.45, 0.45], [0.0, 0.1, 0.9]])
    return labels, probs


def fake_view(n_repeat: int = 1, flags=None) -> explorer.View:
    labels, probs = fake_predictions()
    labels, probs = np.tile(labels, n_repeat), np.tile(probs, (n_repeat, 1))
    images = (np.arange(len(labels))[:, None, None] * np.ones((1, 48, 48))).astype(np.uint8)
    if flags is None:
        flags = pd.DataFrame({k: np.zeros(len(labels), bool) for k in explorer.FLAGS})
    return explorer.View(images, labels, probs, flags, np.arange(100, 100 + len(labels)))


def test_select_filters_by_class_and_mask_and_sorts_by_confidence():
    labels, probs = fake_predictions()
    # errors: #1 (0 -> 1, 0.7), #2 (1 -> 0, 0.6), #4 (2 -> 1, 0.45: argmax takes the first tie)
    np.testing.assert_array_equal(explorer.select(labels, probs), [1, 2, 4])
    np.testing.assert_array_equal(explorer.select(labels, probs, most_confident_first=False), [4, 2, 1])
    np.testing.assert_array_equal(explorer.select(labels, probs, predicted_class=1), [1, 4])
    np.testing.assert_array_equal(explorer.select(labels, probs, true_class=1, errors_only=False), [3, 2])
    mask = np.array([True, False, True, True, True, True])
    np.testing.assert_array_equal(explorer.select(labels, probs, mask=mask), [2, 4])
    assert mask.tolist() == [True, False, True, True, True, True]  # the caller's mask is left alone


def test_audit_mask_and_tags():
    flags = pd.DataFrame({"twin": [True, False, False, False], "conflict": [True, True, False, False],
                          "blank": [False, False, False, True]})
    assert explorer.audit_mask(flags, "any").tolist() == [True] * 4
    assert explorer.audit_mask(flags, "flagged").tolist() == [True, True, False, True]
    assert explorer.audit_mask(flags, "clean").tolist() == [False, False, True, False]
    assert explorer.audit_mask(flags, "conflict").tolist() == [True, True, False, False]
    assert explorer.flag_tags(flags, 0) == ["twin", "conflict"] and explorer.flag_tags(flags, 2) == []
    with pytest.raises(ValueError, match="unknown audit filter"):
        explorer.audit_mask(flags, "noisy")
    assert {key for _, key in explorer.AUDIT_FILTERS} == {"any", "flagged", "clean", *explorer.FLAGS}


def test_page_of_status_and_pairs():
    chunk, pages = explorer.page_of(np.arange(10), page=1, page_size=4)
    assert list(chunk) == [4, 5, 6, 7] and pages == 3
    assert explorer.page_of(np.arange(0), 5, 4)[1] == 1
    assert explorer.page_status(642, 1, 12) == "showing 13-24 of 642"
    assert explorer.page_status(642, 53, 12) == "showing 637-642 of 642"
    assert explorer.page_status(642, 99, 12) == "showing 637-642 of 642"  # clamped like page_of
    assert explorer.page_status(5, 0, 12) == "showing 1-5 of 5"
    assert explorer.page_status(0, 0, 12).startswith("no face matches")
    assert explorer.page_status(0, 0, 12, right=3).startswith("no mistake: the model gets every face these filters keep right (3)")
    cm = np.array([[5, 3, 0], [1, 6, 0], [0, 4, 2]])
    pairs = explorer.most_confused_pairs(cm, CLASSES, k=2)
    assert pairs[["true", "predicted", "count"]].values.tolist() == [["c", "b", 4], ["a", "b", 3]]
    assert pairs["share of true class"][0] == pytest.approx(4 / 6)
    labels, probs = fake_predictions()
    assert explorer.confused_pairs(labels, probs, 3) == [(0, 1, 1), (1, 0, 1), (2, 1, 1)]
    assert explorer.confused_pairs(labels, probs, 3, k=1) == [(0, 1, 1)]


def test_audit_flags_join_notebook_01s_audit():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (4, 48, 48), dtype=np.uint8)
    blank = np.full((48, 48), 128, np.uint8)
    images = np.stack([train[0], train[1], rng.integers(0, 256, (48, 48), dtype=np.uint8), blank])
    labels = np.array([0, 2, 1, 3])
    train_labels = np.array([0, 1, 2, 3])  # train[1] is labelled 1; its copy in ``images`` is labelled 2
    pool = np.concatenate([train, images])
    flags = audit.audit_flags(images, labels, train, pool, np.concatenate([train_labels, labels]))
    assert flags.columns.tolist() == list(explorer.FLAGS)
    assert flags["twin"].tolist() == [True, True, False, False]
    assert flags["conflict"].tolist() == [False, True, False, False]
    assert flags["blank"].tolist() == [False, False, False, True]


def test_make_views_builds_every_split_with_stable_ids(synthetic):
    data = synthetic
    test = data.test
    # a test face copied into the training set with another label: a twin and a conflict
    data.train.images[0] = test.images[3]
    probs = np.eye(7)[(test.labels + 1) % 7]  # every test face wrong
    val = data.train.subset(np.arange(10, 20))
    views = explorer.make_views(data, probs, val, np.eye(7)[val.labels], fitting_images=data.train.images[20:])
    assert list(views) == list(explorer.SPLITS)
    assert len(views["test"].labels) == len(test)
    assert len(views["PublicTest"].labels) + len(views["PrivateTest"].labels) == len(test)
    np.testing.assert_array_equal(views["PublicTest"].ids, np.flatnonzero(test.sources == "PublicTest"))
    twins = views["test"].flags["twin"].to_numpy()
    assert twins[3] and (data.train.labels[0] != test.labels[3]) == views["test"].flags["conflict"][3]
    assert 3 not in views["deduplicated test"].ids and len(views["deduplicated test"].ids) == (~twins).sum()
    assert not views["validation"].flags["twin"].any()
    assert len(views["validation"].labels) == 10
    with pytest.raises(ValueError, match="one row per face"):
        explorer.View(val.images, val.labels[:3], probs[:10], views["validation"].flags, np.arange(10))


def make_ui(view=None, **kwargs):
    calls = []

    def saliency(images, classes):
        calls.append(list(classes))
        return np.zeros((len(images), 48, 48))

    views = {"validation": fake_view(), "test": view or fake_view(n_repeat=2)}
    return explorer.MisclassificationExplorer(views, CLASSES, saliency=saliency, page_size=2, **kwargs), calls


def shown_ids(ui):
    return [re.search(r"#\d+", cell.caption).group() for cell in ui.cells if cell.layout.display != "none"]


def test_the_explorer_pages_with_buttons_and_typing():
    ui, _ = make_ui()
    assert ui.split.value == "test"
    # errors of the doubled fake set: rows 1, 7 (0.7), 2, 8 (0.6), 4, 10 (0.45)
    assert list(ui.selection) == [1, 7, 2, 8, 4, 10] and list(ui.shown) == [1, 7]
    assert shown_ids(ui) == ["#101", "#107"] and "showing 1-2 of 6" in ui.status.value
    assert ui.page.max == 3 and ui.page.continuous_update and ui.prev.disabled and not ui.next.disabled
    first = ui.cells[0].src
    assert first.startswith("data:image/png;base64,")
    ui.next.click()
    assert ui.page.value == 2 and list(ui.shown) == [2, 8] and "showing 3-4 of 6" in ui.status.value
    assert ui.cells[0].src != first and not ui.prev.disabled
    ui.next.click()
    ui.next.click()  # past the last page: stays there
    assert ui.page.value == 3 and ui.next.disabled and shown_ids(ui) == ["#104", "#110"]
    ui.page.value = 1  # typing a page number
    assert shown_ids(ui) == ["#101", "#107"]
    ui.prev.click()
    assert ui.page.value == 1


def test_the_explorer_filters_hide_empty_panels_and_jump_to_pairs():
    ui, _ = make_ui()
    ui.next.click()
    ui.predicted_class.value = 0
    assert list(ui.selection) == [2, 8] and ui.page.value == 1 and ui.page.max == 1 and ui.pair.value == explorer.NO_PAIR
    ui.true_class.value = 1
    assert list(ui.selection) == [2, 8] and ui.pair.value == (1, 0)  # the filters name a confused pair: the pair menu shows it
    ui.errors_only.value = False
    assert list(ui.selection) == [2, 8] and ui.pair.value == explorer.NO_PAIR
    ui.predicted_class.value = explorer.ALL
    assert list(ui.selection) == [3, 9, 2, 8]
    ui.true_class.value = 2
    ui.predicted_class.value = 0  # nothing: no grid, no empty image, a hint in the status
    assert len(ui.selection) == 0 and ui.grid.layout.display == "none"
    assert "no face matches" in ui.status.value and shown_ids(ui) == []
    ui.pair.value = (0, 1)
    assert (ui.true_class.value, ui.predicted_class.value, ui.errors_only.value) == (0, 1, True)
    assert list(ui.selection) == [1, 7] and ui.grid.layout.display == "grid"
    ui.order.value = False
    assert list(ui.selection) == [1, 7]  # equal confidence: stable order


def test_the_explorer_filters_by_the_audit():
    flags = pd.DataFrame({"twin": [False] * 12, "conflict": [False] * 12, "blank": [False] * 12})
    flags.loc[7, "twin"] = True
    flags.loc[4, "conflict"] = True
    ui, _ = make_ui(view=fake_view(n_repeat=2, flags=flags))
    assert "[twin]" in ui.cells[1].caption and "[" not in ui.cells[0].caption
    ui.audit.value = "flagged"
    assert list(ui.selection) == [7, 4]
    ui.audit.value = "conflict"
    assert list(ui.selection) == [4]
    ui.audit.value = "clean"
    assert list(ui.selection) == [1, 2, 8, 10]


def test_clicking_a_face_shows_its_details_with_two_grad_cams():
    before = plt.get_fignums()
    ui, calls = make_ui()
    assert ui.details.layout.display == "none" and ui.hint.layout.display != "none"  # no empty image
    assert "Pick a face" in ui.hint.value
    ui.cells[1].click()  # row 7: true a, predicted b
    assert ui.picked == 7 and calls == [[1, 0]]  # Grad-CAM of the predicted, then the true class
    assert bytes(ui.details.value).startswith(b"\x89PNG") and ui.details.layout.display != "none"
    assert ui.hint.layout.display == "none" and "#107" in ui.details_caption.value
    ui.split.value = "validation"  # another split: its ids mean other faces, so the details go
    assert ui.picked is None and ui.details.layout.display == "none" and list(ui.selection) == [1, 2, 4]
    assert plt.get_fignums() == before  # nothing drawn through pyplot


def test_a_click_in_the_browser_on_a_face_picks_it():
    ui, calls = make_ui()
    ui.cells[1]._handle_custom_msg({"type": "pick"}, [])  # the message the face's button sends
    assert ui.picked == 7 and calls == [[1, 0]]


def test_the_details_follow_the_filters_and_pages():
    ui, _ = make_ui()
    ui.cells[0].click()  # row 1: true a, predicted b
    ui.true_class.value = 0  # the face still shows: its details stay
    assert ui.picked == 1 and ui.details.layout.display != "none"
    ui.predicted_class.value = 2  # nothing matches: no details of a face that is gone
    assert "no face matches" in ui.status.value and ui.picked is None
    assert ui.details.layout.display == "none" and ui.details_caption.layout.display == "none"
    assert ui.hint.layout.display != "none"
    ui.predicted_class.value = explorer.ALL
    ui.cells[0].click()
    ui.errors_only.value = False  # row 1 leaves the first page
    assert 1 not in ui.shown and ui.picked is None and ui.details.layout.display == "none"
    ui.cells[0].click()
    ui.next.click()  # another page
    assert ui.picked is None and ui.details.layout.display == "none"


def test_pair_counts_follow_the_audit_and_an_empty_errors_only_says_why():
    flags = pd.DataFrame({k: np.zeros(12, bool) for k in explorer.FLAGS})
    flags.loc[[1, 4, 7], "twin"] = True  # two a-as-b mistakes, one c-as-b
    flags.loc[[0, 6], "blank"] = True  # predicted right
    ui, _ = make_ui(view=fake_view(n_repeat=2, flags=flags))
    assert [label for label, _ in ui.pair.options[1:]] == ["a as b (2)", "b as a (2)", "c as b (2)"]
    ui.audit.value = "twin"
    assert [label for label, _ in ui.pair.options[1:]] == ["a as b (2)", "c as b (1)"]
    ui.audit.value = "blank"  # the model gets both blank faces right: errors only leaves nothing, and says so
    assert [label for label, _ in ui.pair.options] == [explorer.NO_PAIR_LABEL]
    assert len(ui.selection) == 0 and "every face these filters keep right (2)" in ui.status.value
    ui.errors_only.value = False
    assert sorted(ui.selection) == [0, 6]


def test_callbacks_from_several_threads_leave_a_consistent_page():
    ui, _ = make_ui(view=fake_view(n_repeat=20))
    errors = []

    def hammer(seed):
        rng = np.random.default_rng(seed)
        try:
            for _ in range(10):
                action = rng.integers(4)
                if action == 0:
                    ui.next.click()
                elif action == 1:
                    ui.prev.click()
                elif action == 2:
                    ui.cells[int(rng.integers(2))].click()
                else:
                    ui.predicted_class.value = int(rng.choice([explorer.ALL, 0, 1]))
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    expected, pages = explorer.page_of(ui.selection, ui.page.value - 1, ui.page_size)
    assert list(ui.shown) == list(expected) and ui.page.max == pages
    assert shown_ids(ui) == [f"#{ui.view.ids[i]}" for i in expected]
    assert ui.picked is None or ui.picked in ui.shown


def test_static_figures_are_not_pyplot_figures():
    before = plt.get_fignums()
    view = fake_view(n_repeat=2)
    fig = explorer.pair_gallery(view, CLASSES, k_pairs=3, per_pair=2)
    assert isinstance(fig, Figure) and explorer.figure_png(fig).startswith(b"\x89PNG")
    grid = explorer.plot_faces(view.images, view.labels, view.probs, CLASSES, [1, 2], flags=view.flags, ids=view.ids)
    assert isinstance(grid, Figure) and "#101" in grid.axes[0].get_title()
    assert plt.get_fignums() == before
