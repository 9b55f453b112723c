"""fer_utils.figures: the majority-class reference line of every accuracy plot; every committed figure is made by code."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import fer_utils as fu  # noqa: E402


def test_the_majority_share_is_the_accuracy_of_always_answering_the_commonest_class():
    labels = np.array([3, 3, 3, 0, 1, 3, 6, 6])
    cls, share = fu.figures.majority_share(labels)
    assert cls == 3 and share == pytest.approx((labels == 3).mean())


@pytest.mark.parametrize("axis", ["x", "y"])
def test_the_majority_line_is_drawn_at_the_share_in_the_plots_units(axis):
    classes = list(fu.CLASSES)
    fig, ax = plt.subplots()
    line = fu.figures.majority_line(ax, np.array([3, 3, 1, 0]), classes, axis=axis)
    values = line.get_ydata() if axis == "y" else line.get_xdata()
    assert np.allclose(values, 50.0)
    assert "happy" in line.get_label() and "50.0%" in line.get_label()
    plt.close(fig)


def test_every_committed_figure_is_written_by_a_notebook():
    import nbformat

    code = ["\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
            for path in sorted((fu.PROJECT_ROOT / "notebooks").glob("*.ipynb"))]
    code = [source for source in code if "save_fig(" in source]  # a name may reach save_fig through a helper
    orphans = [p.name for p in sorted(fu.FIGURES_DIR.glob("*.png"))
               if not any(f'"{p.stem}"' in source for source in code)]
    assert orphans == [], f"figures no notebook's save_fig writes (delete them, or add their code): {orphans}"
