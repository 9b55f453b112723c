"""Widget state and run-to-run noise in the committed notebooks (see CONTRIBUTING.md, convention 9).

    python scripts/notebook_widgets.py strip notebooks/*.ipynb   # before committing: no widget state, stable outputs,
                                                                 # the metadata JupyterLab writes
    python scripts/notebook_widgets.py lab-settings              # JupyterLab saves no widget state and no Python version
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat

from fer_utils.course.lab_hooks import NOTES, STATIC_NOTE, WIDGET_VIEW, strip_widgets  # noqa: F401 (used by tests)

# The notebook metadata JupyterLab writes when it saves a notebook run by this environment's kernel: the kernelspec
# (`jupyter kernelspec list`: ipykernel's python3) and the kernel's language_info, less its Python's exact version
# (fer_utils/course/lab_hooks.py removes it on save, nb-clean on commit). A committed notebook carries exactly these, so
# that opening and saving it changes nothing.
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py", "mimetype": "text/x-python",
                 "name": "python", "nbconvert_exporter": "python", "pygments_lexer": "ipython3"}


def lab_metadata(nb) -> bool:
    """Give a notebook (an nbformat node) the kernelspec and language_info that JupyterLab writes (``KERNELSPEC``,
    ``LANGUAGE_INFO``), keeping its other metadata. Returns whether they changed."""
    before = (nb.metadata.get("kernelspec"), nb.metadata.get("language_info"))
    nb.metadata["kernelspec"] = nbformat.from_dict(KERNELSPEC)
    nb.metadata["language_info"] = nbformat.from_dict(LANGUAGE_INFO)
    return before != (KERNELSPEC, LANGUAGE_INFO)


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


# JupyterLab saves no widget state with a notebook. A saved state reopens as controls with no kernel behind them,
# which look live and do nothing; without it, a notebook saved after a run reopens with "Error displaying widget:
# model not found" until the widget's cell is run again. And a notebook opened and saved without a run gets no
# empty state block (which `git status` would show).
LAB_SETTINGS = {"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False}}
# The Jupyter server drops the kernel's Python version from a notebook before saving it: fer_utils/course/lab_hooks.py, a
# server extension, enabled by a file of its own in jupyter_server_config.d (where servers find their extensions).
SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {"fer_utils.course.lab_hooks": True}}}
SERVER_CONFIG_NAME = "fer-course.json"


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


def write_server_config(folder=None):
    """Write ``SERVER_CONFIG`` to ``jupyter_server_config.d/fer-course.json`` in the Jupyter config folder ``folder``
    (default: this environment's ``etc/jupyter``, which every Jupyter server started from it reads; a test's server
    reads its ``JUPYTER_CONFIG_DIR``)."""
    path = Path(folder or Path(sys.prefix, "etc", "jupyter")) / "jupyter_server_config.d" / SERVER_CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(SERVER_CONFIG, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None, prog: str = "python scripts/notebook_widgets.py") -> int:
    """``strip NOTEBOOK...``: remove the widget state of notebooks in place, make their outputs stable
    (``stable_outputs``) and give them the metadata JupyterLab writes (``lab_metadata``), before committing them;
    ``lab-settings [--dir DIR] [--config-dir DIR]``: make JupyterLab save no widget state (``overrides.json`` in
    DIR) and the Jupyter server save no Python version (``jupyter_server_config.d`` in the config DIR)."""
    parser = argparse.ArgumentParser(prog=prog, description=main.__doc__)
    parser.add_argument("command", choices=["strip", "lab-settings"])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--dir", default=None, help="lab-settings: the folder of overrides.json")
    parser.add_argument("--config-dir", default=None, help="lab-settings: the Jupyter config folder of the server's hook")
    args = parser.parse_args(argv)
    if args.command == "lab-settings":
        print(f"JupyterLab settings: {write_lab_settings(args.dir)}")
        print(f"Jupyter server config: {write_server_config(args.config_dir)}")
        return 0
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        before = nbformat.writes(nb)
        had_state = "widgets" in nb.metadata
        removed = strip_widgets(nb)
        stabilised = stable_outputs(nb)
        relabelled = lab_metadata(nb)
        if nbformat.writes(nb) != before:
            nbformat.write(nb, path)
            done = [f"removed {removed} widget view(s){' and the widget state' if had_state else ''}"] if removed or had_state else []
            done += [f"{stabilised} output(s) made stable"] if stabilised else []
            done += ["metadata set to JupyterLab's"] if relabelled else []
            print(f"{path}: {'; '.join(done) or 'rewritten'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
