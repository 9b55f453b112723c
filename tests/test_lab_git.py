"""A committed notebook opened and saved in JupyterLab leaves `git status` clean (issue 41): JupyterLab, headless
Chromium (``tests/lab.py``), on a temporary clone of the repository set up as ``make install`` sets up a checkout:
nb-clean as git's filter for notebooks (the Makefile's ``git-filter``), JupyterLab saving no widget state and the
Jupyter server no Python version (``scripts/notebook_widgets.py lab-settings``). No cell is run.

The clone is of the repository's last commit, its notebooks given the metadata ``notebook_widgets.py strip`` gives
(and committed, in the clone): the test checks the mechanism, whatever the committed notebooks carry.
What the test waited for, and the page when it fails: test-artifacts/lab-git/ (ignored by git).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .lab import (
    PAGE_TIMEOUT_S,
    ROOT,
    SERVER_TIMEOUT_S,
    UI_TIMEOUT_S,
    Steps,
    api,
    chromium_page,
    jupyterlab,
    notebook_widgets,
    open_notebook,
    recorded,
    require_browser,
    wait_until,
)

NOTEBOOK = "notebooks/01_data_exploration.ipynb"  # no widget; opened, not run
WIDGET_NOTEBOOK = "notebooks/05_what_the_model_gets_wrong.ipynb"  # the explorer's notebook; opened, not run
ARTIFACTS = ROOT / "test-artifacts" / "lab-git"
BIN = Path(sys.prefix) / "bin"  # this environment's, as the Makefile's $(BIN)
TEST_TIMEOUT_S = SERVER_TIMEOUT_S + 3 * PAGE_TIMEOUT_S + 8 * UI_TIMEOUT_S  # pytest-timeout: only if a deadline fails to fire
# The notebook JupyterLab shows, once it is ready and the kernel's answers are in its metadata: the language (with the
# version JupyterLab saves) and the kernelspec's name (arg: [path, the kernel's display_name]).
LOADED = """([path, display_name]) => {
    const w = window.jupyterapp.shell.currentWidget;
    if (!w || !w.context || w.context.path !== path || !w.context.isReady) return false;
    const kernel = w.sessionContext.session && w.sessionContext.session.kernel;
    const info = w.context.model.getMetadata('language_info'), spec = w.context.model.getMetadata('kernelspec');
    return !!kernel && kernel.connectionStatus === 'connected' && !!info && info.version !== undefined
        && (display_name === null || (!!spec && spec.display_name === display_name));
}"""
OPEN_WIDGETS = "() => Array.from(window.jupyterapp.shell.widgets('main')).filter(w => w.context).map(w => w.context.path)"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path):
    """A clone of the repository, as `make install` leaves a checkout, with the notebooks the test opens given
    JupyterLab's metadata (``strip``, then nb-clean, as `make clean-notebooks` does) and committed; yields its path.

    Sparse (the notebooks and the top-level files): the server runs as ``python -m jupyterlab`` in the clone, which
    puts the clone first on sys.path, and a fer_utils/ there (the last commit's) would stand in for the one installed,
    whose server extension (fer_utils/course/lab_hooks.py) is under test."""
    require_browser()
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    for tool in ("git", "make"):
        if shutil.which(tool) is None:
            pytest.skip(f"no {tool}")
    if not (BIN / "nb-clean").exists():
        pytest.skip(f"no nb-clean in {BIN}")
    repo = tmp_path / "repo"
    git(tmp_path, "clone", "--quiet", "--no-checkout", str(ROOT), str(repo))
    git(repo, "sparse-checkout", "set", "notebooks")
    git(repo, "checkout", "--quiet")
    # The filter, by the Makefile's own recipe (the working tree's Makefile, run in the clone).
    subprocess.run(["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "-C", str(repo), "git-filter",
                    f"BIN={BIN}"], check=True, capture_output=True, text=True)
    assert git(repo, "check-attr", "filter", "--", NOTEBOOK).strip().endswith("filter: nb-clean")
    assert "nb-clean clean" in git(repo, "config", "filter.nb-clean.clean")
    notebooks = [str(repo / NOTEBOOK), str(repo / WIDGET_NOTEBOOK)]
    assert notebook_widgets.main(["strip", *notebooks]) == 0
    subprocess.run([str(BIN / "nb-clean"), "clean", "--preserve-cell-outputs", *notebooks], check=True)
    git(repo, "-c", "user.name=test", "-c", "user.email=test@localhost", "commit", "--quiet", "--allow-empty", "--all",
        "--message", "The notebooks' metadata as JupyterLab writes it")
    assert git(repo, "status", "--porcelain") == ""
    notebook_widgets.write_server_config(tmp_path / "config")  # the server's JUPYTER_CONFIG_DIR (tests/lab.py)
    return repo


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_opening_and_saving_a_notebook_leaves_git_status_clean(checkout, tmp_path):
    from playwright.sync_api import sync_playwright

    repo = checkout
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.txt")]:
        old.unlink()
    console_errors: list[str] = []
    step = Steps()
    page = None

    def status() -> str:
        return git(repo, "status", "--porcelain")

    def loaded(path: str) -> None:
        """Wait until JupyterLab shows ``path`` with its kernel connected and the kernel's answers in its metadata."""
        page.wait_for_function(LOADED, arg=[path, None], timeout=PAGE_TIMEOUT_S * 1000)
        spec = page.evaluate("async () => (await window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.spec)"
                             ".display_name")
        page.wait_for_function(LOADED, arg=[path, spec], timeout=UI_TIMEOUT_S * 1000)

    def save(path: str) -> dict:
        """Save the notebook shown (the save command, as Ctrl+S); wait until the file is written. Returns it."""
        before = (repo / path).stat().st_mtime_ns
        page.evaluate("() => { window.jupyterapp.commands.execute('docmanager:save'); }")  # not awaited: the wait has a deadline
        wait_until(lambda: (repo / path).stat().st_mtime_ns != before
                   and not page.evaluate("() => window.jupyterapp.shell.currentWidget.context.model.dirty"),
                   what=lambda: f"({path} not saved)")
        return json.loads((repo / path).read_text())

    def close(path: str) -> None:
        page.evaluate("path => { for (const w of window.jupyterapp.shell.widgets('main'))"
                      " if (w.context && w.context.path === path) w.close(); }", path)
        wait_until(lambda: path not in page.evaluate(OPEN_WIDGETS), what=lambda: f"(open: {page.evaluate(OPEN_WIDGETS)})")
        for kernel in api(url, token, "/api/kernels"):  # nothing runs in it: spare the machine
            api(url, token, f"/api/kernels/{kernel['id']}", method="DELETE")

    def clean(path: str) -> None:
        found = status()
        assert found == "", f"opening and saving {path} changed the checkout:\n{found}\n{git(repo, 'diff')[:3000]}"

    with jupyterlab(tmp_path, repo) as (url, token), sync_playwright() as p:
        step("Chromium starts")
        context, page = chromium_page(p, tmp_path / "chromium-profile", console_errors)
        with recorded(step, page, console_errors, tmp_path, ARTIFACTS, context):

            step(f"JupyterLab loads {NOTEBOOK}, its kernel connects and JupyterLab takes in its language and spec")
            open_notebook(page, url, token, NOTEBOOK)
            loaded(NOTEBOOK)
            step(f"save {NOTEBOOK}")
            saved = save(NOTEBOOK)
            assert "version" not in saved["metadata"]["language_info"], (
                "the server saved the kernel's Python version: fer_utils.course.lab_hooks not loaded? (lab.log)")
            step(f"close {NOTEBOOK}")
            close(NOTEBOOK)
            step("git status: nothing changed")
            clean(NOTEBOOK)

            step(f"JupyterLab opens {WIDGET_NOTEBOOK}")
            page.evaluate("path => { window.jupyterapp.commands.execute('docmanager:open', {path}); }", WIDGET_NOTEBOOK)
            loaded(WIDGET_NOTEBOOK)
            step(f"save {WIDGET_NOTEBOOK}: no widget state written")
            saved = save(WIDGET_NOTEBOOK)
            assert "widgets" not in saved["metadata"], f"widget state saved: {saved['metadata'].get('widgets')}"
            clean(WIDGET_NOTEBOOK)

            # The other half: a changed cell does show (the checkout does not hide the notebooks from git).
            step("a cell changed and saved: git status lists the notebook")
            page.evaluate("() => { const cell = window.jupyterapp.shell.currentWidget.content.model.cells.get(0);"
                          " cell.sharedModel.setSource(cell.sharedModel.getSource() + ' (edited)'); }")
            saved = save(WIDGET_NOTEBOOK)
            assert "(edited)" in "".join(saved["cells"][0]["source"])
            assert status() == f" M {WIDGET_NOTEBOOK}\n"
            assert "(edited)" in git(repo, "diff")
            step("close")
            close(WIDGET_NOTEBOOK)
            step("done")
    print(f"total {time.monotonic() - step.started:.0f} s\n{step.text()}")
