"""Widget state and run-to-run noise in the committed notebooks (see CONTRIBUTING.md, convention 9).

    python scripts/notebook_widgets.py strip notebooks/*.ipynb   # before committing: no widget state, stable outputs
    python scripts/notebook_widgets.py lab-settings              # JupyterLab saves a valid state locally
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
STATIC_NOTE = ("The interactive explorer needs a live kernel: run the notebook (in JupyterLab or Jupyter Notebook) "
               "to use it. Without one, the static galleries below show the most confident mistakes.")
# A widget's own note, by the class its cell makes; the explorer's (STATIC_NOTE) otherwise.
NOTES = {"CameraWidget": ("The camera widget needs a live kernel and a camera in your browser: run this section in "
                          "JupyterLab (or Jupyter Notebook) and press Start.")}


def strip_widgets(nb) -> int:
    """Make a notebook (an nbformat node) carry no widget state: drop ``metadata.widgets`` and, in
    every output, the widget view (a reference to a model that only a live kernel has), keeping a
    plain-text note: the widget's own (``NOTES``, by the class named in the cell), else ``STATIC_NOTE``.
    Returns the number of widget views removed. See CONTRIBUTING.md."""
    nb.metadata.pop("widgets", None)
    removed = 0
    for cell in nb.cells:
        note = next((text for name, text in NOTES.items() if name in cell.get("source", "")), STATIC_NOTE)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                data["text/plain"] = note
                removed += 1
    return removed


# pandas' Styler names each table's HTML ids after a random uuid, and its text form after a memory address:
# both change on every run, though the table does not.
STYLER_ID = re.compile(r"\bT_([0-9a-f]{5})(?=[_\s\"])")
STYLER_REPR = re.compile(r"<pandas\.io\.formats\.style\.Styler( object)? at 0x[0-9a-f]+>")


def stable_outputs(nb) -> int:
    """Give every Styler table in ``nb``'s outputs ids numbered by its place in the notebook (``T_c3t0``: cell 3,
    its first table) and a text form without a memory address, so that a rerun that changes nothing leaves the
    notebook unchanged. Returns the number of outputs changed."""
    changed = 0
    for c, cell in enumerate(nb.cells):
        tables: dict[str, str] = {}
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            before = (data.get("text/html"), data.get("text/plain"))
            if "text/html" in data:
                html = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                data["text/html"] = STYLER_ID.sub(
                    lambda m, tables=tables, c=c: "T_" + tables.setdefault(m.group(1), f"c{c}t{len(tables)}"), html)
            if "text/plain" in data:
                text = "".join(data["text/plain"]) if isinstance(data["text/plain"], list) else data["text/plain"]
                data["text/plain"] = STYLER_REPR.sub("<pandas.io.formats.style.Styler>", text)
            changed += (data.get("text/html"), data.get("text/plain")) != before
    return changed


# JupyterLab saves the state of the live widgets with the notebook, so a notebook saved after a run
# reopens showing them (inert until rerun) instead of "Error displaying widget: model not found".
LAB_SETTINGS = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True}}


def write_lab_settings(folder=None):
    """Merge ``LAB_SETTINGS`` into JupyterLab's ``overrides.json`` in ``folder`` (default: this
    environment's ``share/jupyter/lab/settings``, which every JupyterLab started from it reads)."""
    path = Path(folder or Path(sys.prefix, "share", "jupyter", "lab", "settings")) / "overrides.json"
    settings = json.loads(path.read_text()) if path.exists() else {}
    for plugin, values in LAB_SETTINGS.items():
        settings.setdefault(plugin, {}).update(values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None, prog: str = "python scripts/notebook_widgets.py") -> int:
    """``strip NOTEBOOK...``: remove the widget state of notebooks in place and make their outputs stable
    (``stable_outputs``), before committing them;
    ``lab-settings [--dir DIR]``: make JupyterLab save a valid widget state with notebooks."""
    parser = argparse.ArgumentParser(prog=prog, description=main.__doc__)
    parser.add_argument("command", choices=["strip", "lab-settings"])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--dir", default=None, help="lab-settings: the folder of overrides.json")
    args = parser.parse_args(argv)
    if args.command == "lab-settings":
        print(f"JupyterLab settings: {write_lab_settings(args.dir)}")
        return 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        had_state = "widgets" in nb.metadata
        removed = strip_widgets(nb)
        before = nbformat.writes(nb)
        stable_outputs(nb)
        if removed or had_state or nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            print(f"{path}: removed {removed} widget view(s){' and the widget state' if had_state else ''}; "
                  "Styler ids and reprs made stable")
    return 0



if __name__ == "__main__":
    sys.exit(main())
