"""scripts/notebook_widgets.py: committed notebooks carry no widget state; JupyterLab saves a valid one."""

import nbformat

import fer_utils as fu

from .scripts import load_script

notebook_widgets = load_script("notebook_widgets")
NOTEBOOK = fu.PROJECT_ROOT / "notebooks" / "05_what_the_model_gets_wrong.ipynb"


def test_strip_widgets_leaves_no_state_and_a_note():
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    cell = nbformat.v4.new_code_cell("ui", outputs=[nbformat.v4.new_output(
        "display_data", data={notebook_widgets.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "VBox(...)"})])
    nb.cells.append(cell)
    assert notebook_widgets.strip_widgets(nb) == 1
    assert "widgets" not in nb.metadata and cell.outputs[0]["data"] == {"text/plain": notebook_widgets.STATIC_NOTE}
    assert notebook_widgets.strip_widgets(nb) == 0


def test_the_committed_notebook_carries_no_widget_state():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "widgets" not in nb.metadata
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if notebook_widgets.WIDGET_VIEW in o.get("data", {})]
    assert views == [], "run `python scripts/notebook_widgets.py strip notebooks/05_what_the_model_gets_wrong.ipynb` (CONTRIBUTING.md)"


def test_lab_settings_make_jupyterlab_save_the_widget_state(tmp_path):
    import json

    (tmp_path / "overrides.json").write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "x"}}))
    assert notebook_widgets.main(["lab-settings", "--dir", str(tmp_path)]) == 0
    settings = json.loads((tmp_path / "overrides.json").read_text())
    assert settings["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": True}
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "x"}  # merged, not replaced


def test_each_widget_keeps_its_own_note():
    def widget_cell(source):
        return nbformat.v4.new_code_cell(source, outputs=[nbformat.v4.new_output(
            "display_data", data={notebook_widgets.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "Widget(...)"})])

    nb = nbformat.v4.new_notebook(cells=[widget_cell("ui = fu.explorer.MisclassificationExplorer(views)\nui"),
                                         widget_cell("camera = fu.camera.CameraWidget()\ncamera")])
    assert notebook_widgets.strip_widgets(nb) == 2
    explorer_note, camera_note = (c.outputs[0]["data"]["text/plain"] for c in nb.cells)
    assert explorer_note == notebook_widgets.STATIC_NOTE and "galleries" in explorer_note
    assert camera_note == notebook_widgets.NOTES["CameraWidget"] and "galleries" not in camera_note


def test_a_rerun_that_changes_nothing_leaves_the_outputs_as_they_were():
    import pandas as pd

    def executed():  # one run: pandas draws a new uuid for each table and prints a memory address
        style = pd.DataFrame({"a": [1.5, 2.5]}).style.format("{:.1f}").highlight_max()
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("table", id="table", outputs=[nbformat.v4.new_output(
            "execute_result", data={"text/html": style.to_html(), "text/plain": repr(style)}, execution_count=1)])])

    first, second = executed(), executed()
    assert nbformat.writes(first) != nbformat.writes(second)
    assert notebook_widgets.stable_outputs(first) == notebook_widgets.stable_outputs(second) == 1
    assert nbformat.writes(first) == nbformat.writes(second)
    html = first.cells[0].outputs[0]["data"]["text/html"]
    assert 'id="T_c0t0_row1_col0"' in html and "#T_c0t0_row1_col0" in html  # the style still reaches its cell
    assert first.cells[0].outputs[0]["data"]["text/plain"] == "<pandas.io.formats.style.Styler>"
