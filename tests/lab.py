"""What the browser tests share: a JupyterLab server on a folder of notebooks, headless Chromium driven by
Playwright (the system's browser; browsers are never downloaded), and waits on conditions with deadlines.

Skipped when Chromium or Playwright is missing, unless FER_REQUIRE_BROWSER=1 (CI sets it), where a missing
browser fails. Every step a test waits for is logged with its time (``Steps``); when a test fails,
``record_failure`` writes what it was waiting for (with the kernel's state, the cells not yet run, the
browser's console errors and the server's log) beside a screenshot.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from fer_utils.paths import DatasetNotFoundError, find_dataset

from .scripts import load_script

notebook_widgets = load_script("notebook_widgets")

ROOT = Path(__file__).parents[1]
CHROMIUM = Path(os.environ.get("FER_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Deadlines, not waits: each returns as soon as its condition holds. Sized for a busy 2-core machine (load 4-6).
SERVER_TIMEOUT_S = 300  # JupyterLab answers its API
PAGE_TIMEOUT_S = 300  # Chromium starts, JupyterLab loads, the kernel connects
UI_TIMEOUT_S = 180  # one interaction: the kernel handles a widget event and the page shows its result
NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.context.model.toJSON()"


def require_browser() -> None:
    """Skip (or, with FER_REQUIRE_BROWSER=1, fail) without Chromium, Playwright or the dataset."""
    def require(condition: bool, why: str) -> None:
        if condition:
            return
        if os.environ.get("FER_REQUIRE_BROWSER") == "1":
            pytest.fail(f"FER_REQUIRE_BROWSER=1 but {why} (.ci/run installs it)")
        pytest.skip(why)

    require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        require(False, "Playwright for Python is not installed (pip install playwright)")
    try:
        find_dataset()
    except DatasetNotFoundError:
        pytest.skip("FER-2013 not found: set FER2013_PATH to run the browser tests")


def cleared_copy(notebook: Path | nbformat.NotebookNode, dest: Path) -> Path:
    """Write ``notebook`` to ``dest`` without outputs and execution counts."""
    nb = nbformat.read(notebook, as_version=4) if isinstance(notebook, Path) else notebook
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, dest)
    return dest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, root: Path):
    """A JupyterLab server on the folder ``root``, in fast mode, its log in tmp_path/lab.log; yields (url, token)."""
    settings = notebook_widgets.write_lab_settings(tmp_path / "app-settings").parent
    notebook_widgets.write_server_config(tmp_path / "config")  # the server's save hook, as `make install` enables it
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "FER_FAST": "1", "FER2013_PATH": str(find_dataset()), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "lab.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--LabApp.extension_manager=readonly",
         f"--port={port}", "--ip=127.0.0.1",
         f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.app_settings_dir={settings}", f"--LabApp.user_settings_dir={tmp_path / 'user-settings'}",
         f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--LabApp.news_url=None",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_TIMEOUT_S
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=10)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"JupyterLab did not answer within {SERVER_TIMEOUT_S} s: "
                                f"{(tmp_path / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)  # polling interval
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def api(url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{url}{path}?token={token}", method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


def wait_until(condition, timeout_s: float = UI_TIMEOUT_S, what=lambda: "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout_s`` with ``what()``, the state it saw."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"the page did not change as expected within {timeout_s:.0f} s {what()}"
        time.sleep(0.2)  # polling interval


class Steps:
    """What the test waits for, step by step, with the time each began: steps.txt, and failure.txt if it fails."""

    def __init__(self):
        self.started = time.monotonic()
        self.log: list[tuple[float, str]] = []

    def __call__(self, what: str) -> None:
        self.log.append((time.monotonic() - self.started, what))

    @property
    def current(self) -> str:
        return self.log[-1][1] if self.log else "nothing yet"

    def text(self) -> str:
        ends = [t for t, _ in self.log[1:]] + [time.monotonic() - self.started]
        return "\n".join(f"{t:7.1f} s  (+{end - t:5.1f} s)  {what}" for (t, what), end in zip(self.log, ends, strict=True))


def cells(page) -> list[dict]:
    return [c for c in page.evaluate(NOTEBOOK_JSON)["cells"] if c["cell_type"] == "code"]


def errors_in(code_cells: list[dict]) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in code_cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


def page_state(page) -> str:
    """The kernel's state and the cells not run yet, as the page sees them (for failure.txt)."""
    try:
        state = page.evaluate("""() => {
            const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
            const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
            return {kernel: kernel ? [kernel.status, kernel.connectionStatus] : null,
                    cells: w && w.context ? w.context.model.toJSON().cells : []};
        }""")
    except Exception as err:  # the page may be what failed
        return f"page state unavailable: {err}"
    code = [(i, c) for i, c in enumerate(state["cells"]) if c["cell_type"] == "code"]
    pending = [f"cell {i}: {''.join(c['source'])[:60]!r}" for i, c in code if c["execution_count"] is None]
    return (f"kernel (status, connection): {state['kernel']}\n"
            f"code cells run: {len(code) - len(pending)} of {len(code)}\n"
            f"errors: {errors_in([c for _, c in code])}\n"
            f"not run yet: {pending[:5]}{' ...' if len(pending) > 5 else ''}")


def chromium_page(p, profile: Path, console_errors: list[str], viewport=(1400, 1000), args=(),
                  navigation_timeout_s: float = PAGE_TIMEOUT_S):
    """Headless Chromium (``p``: a started sync_playwright) on a fresh ``profile`` folder, and its page, with the
    course's timeouts; the page's console errors and uncaught errors collect in ``console_errors``. Returns
    (context, page): close the context when done."""
    width, height = viewport
    context = p.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), headless=True, args=[*CHROMIUM_ARGS, *args],
        viewport={"width": width, "height": height}, timeout=PAGE_TIMEOUT_S * 1000)
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(UI_TIMEOUT_S * 1000)
    page.set_default_navigation_timeout(navigation_timeout_s * 1000)
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
    return context, page


def open_notebook(page, url: str, token: str, name: str) -> None:
    """Load ``name`` in JupyterLab and wait until its kernel is connected."""
    page.goto(f"{url}/lab/tree/{name}?token={token}")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                           " && window.jupyterapp.shell.currentWidget.context"
                           " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                           timeout=PAGE_TIMEOUT_S * 1000)
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                           ".connectionStatus === 'connected'", timeout=PAGE_TIMEOUT_S * 1000)


def run_all_cells(page, timeout_s: float) -> float:
    """Run every cell and wait until each has run and the kernel is idle; fails on a cell's error. Returns seconds."""
    # Not awaited (the command's promise resolves only when every cell has run): the loop below waits, with a deadline.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
    started = time.monotonic()
    while True:
        code = cells(page)
        assert not errors_in(code), f"a cell failed: {errors_in(code)}"
        idle = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status") == "idle"
        if idle and all(c["execution_count"] is not None for c in code):
            return time.monotonic() - started
        assert time.monotonic() - started < timeout_s, f"the notebook did not finish within {timeout_s:.0f} s in fast mode"
        time.sleep(1)  # polling interval


@contextlib.contextmanager
def recorded(step: Steps, page, console_errors: list[str], tmp_path: Path, artifacts: Path, context):
    """A browser test's steps: any failure (pytest-timeout's and Ctrl-C's too) recorded by ``record_failure`` and
    raised; steps.txt written and the browser ``context`` closed whatever happens."""
    try:
        yield
    except BaseException as err:
        record_failure(err, step, page, console_errors, tmp_path, artifacts)
        raise
    finally:
        (artifacts / "steps.txt").write_text(step.text() + "\n")
        context.close()


def record_failure(err: BaseException, step: Steps, page, console_errors: list[str], tmp_path: Path,
                   artifacts: Path) -> None:
    """failure.png (the page) and failure.txt (what the test waited for, and the state it found) in ``artifacts``."""
    if page is not None:
        with contextlib.suppress(Exception):
            page.screenshot(path=artifacts / "failure.png")
    log = tmp_path / "lab.log"
    (artifacts / "failure.txt").write_text(
        f"failed after {time.monotonic() - step.started:.0f} s while waiting for: {step.current}\n"
        f"{type(err).__name__}: {err}\n\n"
        f"{page_state(page) if page is not None else 'no page'}\n"
        f"load average: {os.getloadavg()}\n\n"
        f"steps:\n{step.text()}\n\n"
        f"browser console errors: {console_errors}\n\n"
        f"JupyterLab's log (last 4000 characters):\n{log.read_text()[-4000:] if log.exists() else '-'}\n")
