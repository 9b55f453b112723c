"""What the course's notebooks carry when they are saved or committed, and the Jupyter server extension that
applies it on every save (``make install`` enables it in the environment: ``scripts/notebook_widgets.py
lab-settings``).

* **No widget state and no widget view.** A saved view points to a widget model that only a live kernel has: the
  reopened notebook would show controls that do nothing. Each view becomes a plain-text note instead (the
  widget's own, ``NOTES``; a progress bar's view is dropped), which is what a reader without a kernel sees.
* **No Python version.** When a kernel starts, JupyterLab copies its Python's exact version into the notebook
  (``metadata.language_info.version``). The committed notebooks carry none (every student's Python differs), and
  git's clean filter (nb-clean, set up by ``make install``) hides that line from ``git diff`` but not from
  ``git status``: git takes a file whose size differs from the staged one for modified without running the filter.

So a notebook opened and saved with no cell changed is the committed file, byte for byte.
"""

from __future__ import annotations

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_NOTE = ("The interactive explorer needs a live kernel: run the notebook (in JupyterLab or Jupyter Notebook) "
               "to use it. Without one, the static galleries below show the most confident mistakes.")
# A widget's note, by the class its cell makes. Any other widget view (a progress bar) is dropped: without a kernel it
# shows nothing.
NOTES = {"MisclassificationExplorer": STATIC_NOTE,
         "CameraWidget": ("The camera widget needs a live kernel and a camera in your browser: run this section in "
                          "JupyterLab (or Jupyter Notebook) and press Start.")}


def strip_widgets(nb) -> int:
    """Make a notebook (an nbformat node) carry no widget state: drop ``metadata.widgets`` and, in
    every output, the widget view, keeping a plain-text note where the cell makes a widget of ``NOTES``
    (its note), else dropping the output (a progress bar's). Returns the number of widget views removed."""
    nb.metadata.pop("widgets", None)
    removed = 0
    for cell in nb.cells:
        note = next((text for name, text in NOTES.items() if name in cell.get("source", "")), None)
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                removed += 1
                if note is None:
                    continue
                del data[WIDGET_VIEW]
                data["text/plain"] = note
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept
    return removed


def before_save(model: dict, **_) -> None:
    """A contents manager's pre-save hook: a notebook about to be saved loses its widget state and views
    (``strip_widgets``) and its kernel's Python version (``model``: the contents model; other files are left
    as they are)."""
    if model.get("type") != "notebook" or not isinstance(model.get("content"), dict):
        return
    nb = nbformat.from_dict(model["content"])
    strip_widgets(nb)
    nb.metadata.get("language_info", {}).pop("version", None)
    model["content"] = nb


def _jupyter_server_extension_points() -> list[dict]:
    return [{"module": "fer_utils.course.lab_hooks"}]


def _load_jupyter_server_extension(serverapp) -> None:
    serverapp.contents_manager.register_pre_save_hook(before_save)
