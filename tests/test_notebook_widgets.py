"""scripts/notebook_widgets.py: committed notebooks carry no widget state and the metadata JupyterLab writes;
JupyterLab saves no widget state and no Python version (fer_utils/course/lab_hooks.py)."""

import nbformat

import fer_utils as fu

from .scripts import load_script

notebook_widgets = load_script("notebook_widgets")
NOTEBOOK = fu.PROJECT_ROOT / "notebooks" / "05_what_the_model_gets_wrong.ipynb"


def test_strip_widgets_leaves_no_state_and_a_note():
    nb = nbformat.v4.new_notebook(metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    def widget_output(text):
        return nbformat.v4.new_output("display_data", data={notebook_widgets.WIDGET_VIEW: {"model_id": "abc"},
                                                           "text/plain": text})

    cell = nbformat.v4.new_code_cell("ui = fu.explorer.MisclassificationExplorer(views)\nui",
                                     outputs=[widget_output("VBox(...)")])
    progress = nbformat.v4.new_code_cell("probs = stored_probabilities(...)", outputs=[
        nbformat.v4.new_output("stream", text="computing...\n"), widget_output("HBox(children=(FloatProgress(...)))")])
    nb.cells += [cell, progress]
    assert notebook_widgets.strip_widgets(nb) == 2
    assert "widgets" not in nb.metadata and cell.outputs[0]["data"] == {"text/plain": notebook_widgets.STATIC_NOTE}
    assert [o["output_type"] for o in progress.outputs] == ["stream"]  # a progress bar's view: dropped, not a note
    assert notebook_widgets.strip_widgets(nb) == 0


def test_the_committed_notebook_carries_no_widget_state():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert "widgets" not in nb.metadata
    views = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if notebook_widgets.WIDGET_VIEW in o.get("data", {})]
    assert views == [], "run `python scripts/notebook_widgets.py strip notebooks/05_what_the_model_gets_wrong.ipynb` (CONTRIBUTING.md)"


def test_lab_settings_make_jupyterlab_save_no_widget_state_and_no_python_version(tmp_path):
    import json

    (tmp_path / "overrides.json").write_text(json.dumps({"@jupyterlab/apputils-extension:themes": {"theme": "x"}}))
    assert notebook_widgets.main(["lab-settings", "--dir", str(tmp_path), "--config-dir", str(tmp_path / "etc")]) == 0
    settings = json.loads((tmp_path / "overrides.json").read_text())
    assert settings["@jupyter-widgets/jupyterlab-manager:plugin"] == {"saveState": False}
    assert settings["@jupyterlab/apputils-extension:themes"] == {"theme": "x"}  # merged, not replaced
    server = json.loads((tmp_path / "etc" / "jupyter_server_config.d" / "fer-course.json").read_text())
    assert server == {"ServerApp": {"jpserver_extensions": {"fer_utils.course.lab_hooks": True}}}


def test_the_server_extension_saves_no_python_version_and_no_widget_before_a_save():
    import importlib

    hooks = importlib.import_module("fer_utils.course.lab_hooks")
    assert hooks._jupyter_server_extension_points() == [{"module": "fer_utils.course.lab_hooks"}]
    info = {**notebook_widgets.LANGUAGE_INFO, "version": "3.11.7"}
    view = {"output_type": "display_data", "metadata": {},
            "data": {hooks.WIDGET_VIEW: {"model_id": "abc"}, "text/plain": "VBox(...)"}}
    content = nbformat.v4.new_notebook(metadata={"language_info": info, "kernelspec": notebook_widgets.KERNELSPEC,
                                                 "widgets": {"application/vnd.jupyter.widget-state+json": {}}})
    content.cells = [nbformat.v4.new_code_cell("ui = fu.explorer.MisclassificationExplorer(views)\nui", outputs=[view])]
    model = {"type": "notebook", "content": dict(content)}
    hooks.before_save(model=model, path="x.ipynb", contents_manager=None)
    saved = model["content"]
    assert saved["metadata"] == {"language_info": notebook_widgets.LANGUAGE_INFO, "kernelspec": notebook_widgets.KERNELSPEC}
    assert saved["cells"][0]["outputs"][0]["data"] == {"text/plain": hooks.STATIC_NOTE}  # reopened: the note, not dead controls
    text = {"type": "file", "content": "version"}
    hooks.before_save(model=text, path="x.txt", contents_manager=None)  # other files: untouched
    assert text == {"type": "file", "content": "version"}

    class Manager:  # what the server gives the extension: its contents manager, to register the hook with
        def __init__(self):
            self.hooks = []

        def register_pre_save_hook(self, hook):
            self.hooks.append(hook)

    server = type("Server", (), {"contents_manager": Manager()})()
    hooks._load_jupyter_server_extension(server)
    assert server.contents_manager.hooks == [hooks.before_save]


def test_the_metadata_is_what_jupyterlab_writes_for_this_environments_kernel():
    """JupyterLab writes the kernelspec of the kernel it runs (`jupyter kernelspec list`) and the language_info of the
    kernel's reply, whose version the server drops: the committed notebooks carry exactly those."""
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert notebook_widgets.KERNELSPEC == {"display_name": spec.display_name, "language": spec.language, "name": "python3"}
    reply = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    assert notebook_widgets.LANGUAGE_INFO == reply

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                                            "language_info": {"name": "python", "version": "3.10.0"}, "authors": ["x"]})
    assert notebook_widgets.lab_metadata(nb)
    assert nb.metadata == {"kernelspec": notebook_widgets.KERNELSPEC, "language_info": notebook_widgets.LANGUAGE_INFO,
                           "authors": ["x"]}  # other metadata kept
    assert not notebook_widgets.lab_metadata(nb)


def test_the_committed_notebooks_carry_the_metadata_jupyterlab_writes():
    """Else a notebook opened and saved in JupyterLab, no cell changed, shows in `git status` (CONTRIBUTING.md, 9)."""
    paths = sorted([*(fu.PROJECT_ROOT / "notebooks").glob("[0-9]*.ipynb"), *(fu.PROJECT_ROOT / "solutions").glob("[0-9]*.ipynb")])
    assert paths

    def as_jupyterlab_writes(path) -> bool:
        metadata = nbformat.read(path, as_version=4).metadata
        return (metadata.get("kernelspec"), metadata.get("language_info")) == (notebook_widgets.KERNELSPEC,
                                                                               notebook_widgets.LANGUAGE_INFO)

    differ = [p.name for p in paths if not as_jupyterlab_writes(p)]
    assert differ == [], "run `make clean-notebooks` (scripts/notebook_widgets.py strip, then nb-clean)"


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
