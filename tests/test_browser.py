"""Notebook 04's misclassification explorer in a real browser: JupyterLab, headless Chromium (the
system's, driven by Playwright; browsers are never downloaded), the notebook run in fast mode.

Skipped when Chromium or Playwright is missing, unless FER_REQUIRE_BROWSER=1 (CI sets it), where a
missing browser fails. Screenshots go to test-artifacts/browser/ (ignored by git).

The test waits on conditions (the server answers, the kernel is idle with every cell run, a widget shows
what a click asked for), never for a fixed time, and each wait has a deadline sized for a busy 2-core
machine, where one widget round trip can take many seconds. Every step it waits for is logged with its
time in steps.txt; when it fails, failure.txt says what it was waiting for (with the kernel's state,
the cells not yet run, the browser's console errors and the server's log) beside failure.png.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import nbformat
import pytest

from fer_utils import explorer
from fer_utils.paths import DatasetNotFoundError, find_dataset

ROOT = Path(__file__).parents[1]
NOTEBOOK = ROOT / "notebooks" / "04_final_model.ipynb"
CHROMIUM = Path(os.environ.get("FER_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Deadlines, not waits: each returns as soon as its condition holds. Sized for a busy 2-core machine (load 4-6),
# where the fast-mode notebook runs several times slower than the ~2 minutes it takes on an idle one.
SERVER_TIMEOUT_S = 300  # JupyterLab answers its API
PAGE_TIMEOUT_S = 300  # Chromium starts, JupyterLab loads, the kernel connects
RUN_TIMEOUT_S = 1500  # the whole notebook, fast mode
UI_TIMEOUT_S = 180  # one interaction: the kernel handles a widget event and the page shows its result
TEST_TIMEOUT_S = SERVER_TIMEOUT_S + 2 * PAGE_TIMEOUT_S + RUN_TIMEOUT_S + 600  # pytest-timeout: only if a deadline fails to fire
WIDGET_ERRORS = ("Error displaying widget", "model not found")


def _require(condition: bool, why: str) -> None:
    if condition:
        return
    if os.environ.get("FER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"FER_REQUIRE_BROWSER=1 but {why} (.ci/run installs it)")
    pytest.skip(why)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on a copy of notebook 04 (outputs cleared), in fast mode; yields (url, token)."""
    _require(CHROMIUM.exists(), f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _require(False, "Playwright for Python is not installed (pip install playwright)")
    try:
        dataset = find_dataset()
    except DatasetNotFoundError:
        pytest.skip("FER-2013 not found: set FER2013_PATH to run the browser test")
    root = tmp_path / "lab"
    root.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    nbformat.write(nb, root / "04.ipynb")
    settings = explorer.write_lab_settings(tmp_path / "app-settings").parent
    port, token = _free_port(), uuid.uuid4().hex
    env = {**os.environ, "FER_FAST": "1", "FER2013_PATH": str(dataset), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
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


def _api(url: str, token: str, path: str, method: str = "GET"):
    request = urllib.request.Request(f"{url}{path}?token={token}", method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


def _selected(select) -> str:
    """The label of a <select>'s chosen option."""
    return select.evaluate("s => s.selectedIndex < 0 ? '' : s.options[s.selectedIndex].text").replace("\xa0", " ")


def _wait_until(condition, timeout_s: float = UI_TIMEOUT_S, what=lambda: "") -> None:
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


def _page_state(page) -> str:
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
            f"errors: {_errors_in([c for _, c in code])}\n"
            f"not run yet: {pending[:5]}{' ...' if len(pending) > 5 else ''}")


NOTEBOOK_JSON = "() => window.jupyterapp.shell.currentWidget.context.model.toJSON()"


def _cells(page) -> list[dict]:
    return [c for c in page.evaluate(NOTEBOOK_JSON)["cells"] if c["cell_type"] == "code"]


def _errors_in(cells: list[dict]) -> list[str]:
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in cells for o in c.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_the_explorer_works_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    url, token = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in [*ARTIFACTS.glob("*.png"), *ARTIFACTS.glob("*.txt")]:
        old.unlink()
    console_errors: list[str] = []
    step = Steps()
    started = step.started
    expect.set_options(timeout=UI_TIMEOUT_S * 1000)
    page = None
    with sync_playwright() as p:
        step("Chromium starts")
        context = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 1000}, timeout=PAGE_TIMEOUT_S * 1000)
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(UI_TIMEOUT_S * 1000)
            page.set_default_navigation_timeout(PAGE_TIMEOUT_S * 1000)
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
            step("JupyterLab loads 04.ipynb and its kernel connects")
            page.goto(f"{url}/lab/tree/04.ipynb?token={token}")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.context"
                                   " && window.jupyterapp.shell.currentWidget.sessionContext.session",
                                   timeout=PAGE_TIMEOUT_S * 1000)
            page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"
                                   ".connectionStatus === 'connected'", timeout=PAGE_TIMEOUT_S * 1000)
            # The notebook's Log Console, open from the start. At its default level (warning) it shows what no cell
            # owns: the outputs of widget callbacks (a stray figure, a print, a traceback); cell outputs are 'info'.
            step("the Log Console opens")
            page.evaluate("() => window.jupyterapp.commands.execute('logconsole:open')")
            log_console = page.locator(".jp-LogConsole")
            expect(log_console).to_be_visible()
            step(f"notebook 04 runs to the end in fast mode: every code cell run, the kernel idle (deadline {RUN_TIMEOUT_S} s)")
            # Not awaited (the command's promise resolves only when every cell has run): the loop below waits, with a deadline.
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            run_started = time.monotonic()
            deadline = run_started + RUN_TIMEOUT_S
            while True:
                cells = _cells(page)
                assert not _errors_in(cells), f"a cell failed: {_errors_in(cells)}"
                idle = page.evaluate("() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status") == "idle"
                if idle and all(c["execution_count"] is not None for c in cells):
                    break
                assert time.monotonic() < deadline, f"notebook 04 did not finish within {RUN_TIMEOUT_S} s in fast mode"
                time.sleep(1)  # polling interval
            run_s = time.monotonic() - run_started

            step("the explorer shows its first page")
            ui = page.locator(".fer-explorer")
            status = page.locator(".fer-status")
            faces = page.locator(".fer-face:visible")
            ui.scroll_into_view_if_needed()
            expect(status).to_contain_text(re.compile(r"showing 1-12 of \d+"))
            text = status.text_content()
            found = re.search(r"showing 1-12 of ([\d,]+)", text)
            assert found, f"status line: {text!r}"
            total = int(found.group(1).replace(",", ""))
            assert total > 24, f"too few mistakes in fast mode to page: {total}"
            expect(faces).to_have_count(12)
            expect(page.locator(".fer-details")).to_be_hidden()  # no empty image before a face is picked
            expect(page.locator(".fer-hint")).to_contain_text("Pick a face")

            def shown():
                return (page.locator(".fer-face:visible .fer-pick").all_inner_texts(),
                        [img.get_attribute("src") for img in page.locator(".fer-face:visible img").all()])

            first_ids, first_srcs = shown()
            ui.screenshot(path=ARTIFACTS / "1_grid.png")

            # The status line, the 12 captions and the 12 images are separate widgets, each updated by its
            # own message: after a click, wait until all of them show the new page, not only the status.
            def new_page_shown():
                ids, srcs = shown()
                return (len(ids) == 12 and len(srcs) == 12 and not set(ids) & set(first_ids)
                        and not set(srcs) & set(first_srcs))

            step("next: page 2, twelve other faces")
            page.locator(".fer-next").click()
            expect(status).to_contain_text(f"showing 13-24 of {total:,}")
            _wait_until(new_page_shown, what=lambda: f"(faces shown: {shown()[0]}; page 1 had {first_ids})")
            ids, srcs = shown()

            step("typing 3 in the page box: page 3")
            page.locator(".fer-page input").fill("3")  # no Enter: the page follows the typing
            expect(status).to_contain_text(f"showing 25-{min(36, total)} of {total:,}")
            _wait_until(lambda: not set(shown()[0]) & set(ids), what=lambda: f"(faces shown: {shown()[0]}; page 2 had {ids})")
            step("prev: page 2 again, the same faces")
            page.locator(".fer-prev").click()
            expect(status).to_contain_text(f"showing 13-24 of {total:,}")
            _wait_until(lambda: shown()[0] == ids, what=lambda: f"(faces shown: {shown()[0]}; expected {ids})")

            step("audit filter: flagged faces only")
            page.locator(".fer-audit select").select_option(label="flagged by the audit")
            expect(status).not_to_contain_text(f"of {total:,}")

            def captions():
                return page.locator(".fer-face:visible .widget-html").all_inner_texts()

            if not re.search(r"no face matches", status.text_content() or ""):
                _wait_until(lambda: captions() and all(re.search(r"\[(twin|conflict|blank)\]", c) for c in captions()),
                            what=lambda: f"(captions: {captions()})")
            else:
                expect(status).to_contain_text("no face matches")
                expect(page.locator(".fer-grid")).to_be_hidden()
            ui.screenshot(path=ARTIFACTS / "2_audit_flags.png")
            step("audit filter: any face again")
            page.locator(".fer-audit select").select_option(label="any face")
            expect(status).to_contain_text(f"showing 1-12 of {total:,}")

            step("split PrivateTest, then the first confused pair")
            page.locator(".fer-split select").select_option(label="PrivateTest")
            expect(status).not_to_contain_text(f"of {total:,}")
            pair = page.locator(".fer-pair select")
            pair.select_option(index=1)
            _wait_until(lambda: re.match(r"\w+ as \w+ \(\d+\)", _selected(pair)),
                        what=lambda: pair.evaluate("s => [s.selectedIndex, s.options.length, s.outerHTML.slice(0, 400)]"))
            chosen = _selected(pair)
            true_name, predicted_name = re.match(r"(\w+) as (\w+)", chosen).groups()
            _wait_until(lambda: (_selected(page.locator(".fer-true select")),
                                 _selected(page.locator(".fer-predicted select"))) == (true_name, predicted_name))
            n_pair = int(re.search(r"\((\d+)\)", chosen).group(1))
            expect(status).to_contain_text(f"of {n_pair:,}")
            _wait_until(lambda: captions() and all(f"true {true_name}" in c and predicted_name in c for c in captions()),
                        what=lambda: f"(captions: {captions()})")

            step("a click on a face: its details and Grad-CAM maps")
            face = page.locator(".fer-face:visible .fer-pick").first
            face_id = face.inner_text()
            face.click()
            details = page.locator(".fer-details")
            expect(details).to_be_visible()
            expect(page.locator(".fer-details-caption")).to_contain_text(face_id)
            expect(page.locator(".fer-hint")).to_be_hidden()
            _wait_until(lambda: details.evaluate("img => img.complete && img.naturalWidth > 600"),  # face, bars and two maps
                        what=lambda: f"(details image: {details.evaluate('img => [img.complete, img.naturalWidth]')})")
            ui.screenshot(path=ARTIFACTS / "3_details.png")

            cells = _cells(page)
            assert not _errors_in(cells)
            body = page.locator("body").inner_text()
            assert not any(e in body for e in WIDGET_ERRORS)

            step("the Log Console is empty")
            expect(log_console).to_be_visible()
            assert _selected(page.locator(".jp-LogConsole-toolbarLogLevelDropdown select, "
                                          "select.jp-LogConsole-toolbarLogLevelDropdown").first) == "Warning"
            page.screenshot(path=ARTIFACTS / "4_log_console.png")
            logged = log_console.locator(".jp-OutputArea-output").all_inner_texts()
            assert logged == [], f"the Log Console has entries: {logged}"
            interact_s = time.monotonic() - run_started - run_s

            # Save, stop the kernel and reopen: the widgets come back from the saved state, without errors.
            step("save, stop the kernel, reopen the notebook")
            page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function("() => !window.jupyterapp.shell.currentWidget.context.model.dirty")
            for kernel in _api(url, token, "/api/kernels"):
                _api(url, token, f"/api/kernels/{kernel['id']}", method="DELETE")
            page.goto(f"{url}/lab/tree/04.ipynb?token={token}&reset")
            page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                                   " && window.jupyterapp.shell.currentWidget.context"
                                   " && window.jupyterapp.shell.currentWidget.context.isReady",
                                   timeout=PAGE_TIMEOUT_S * 1000)
            saved = _api(url, token, "/api/contents/04.ipynb")["content"]
            assert "application/vnd.jupyter.widget-state+json" in saved["metadata"].get("widgets", {})
            widget_cells = [i for i, c in enumerate(saved["cells"]) if any(
                explorer.WIDGET_VIEW in o.get("data", {}) for o in c.get("outputs", []))]
            assert widget_cells, "the saved notebook lost the explorer's output"
            for i in widget_cells:  # the notebook renders only the cells in view: scroll to each, wait for its output
                step(f"the reopened notebook renders the widget output of cell {i}")
                page.evaluate(f"() => window.jupyterapp.shell.currentWidget.content.scrollToItem({i}, 'start')")
                page.wait_for_function(
                    "i => { const c = window.jupyterapp.shell.currentWidget.content.widgets[i];"
                    " return c && c.node.isConnected && c.node.querySelector('.jp-OutputArea-output') !== null; }", arg=i)
            step("the reopened explorer shows its page")
            reopened = page.locator(".fer-explorer")
            expect(reopened).to_be_visible()
            expect(reopened.locator(".fer-status")).to_contain_text("showing")
            reopened.screenshot(path=ARTIFACTS / "5_reopened.png")
            body = page.locator("body").inner_text()
            assert not any(e in body for e in WIDGET_ERRORS), "the saved notebook reopens with widget errors"
            step("done")
        except BaseException as err:  # also pytest-timeout's and Ctrl-C's
            _record_failure(err, step, page, console_errors, tmp_path)
            raise
        finally:
            (ARTIFACTS / "steps.txt").write_text(step.text() + "\n")
            context.close()
    assert console_errors == [], f"browser console errors: {console_errors}"
    print(f"notebook run {run_s:.0f} s, interactions {interact_s:.0f} s, total {time.monotonic() - started:.0f} s")


def _record_failure(err: BaseException, step: Steps, page, console_errors: list[str], tmp_path: Path) -> None:
    """failure.png (the page) and failure.txt (what the test waited for, and the state it found)."""
    if page is not None:
        with contextlib.suppress(Exception):
            page.screenshot(path=ARTIFACTS / "failure.png")
    log = tmp_path / "lab.log"
    (ARTIFACTS / "failure.txt").write_text(
        f"failed after {time.monotonic() - step.started:.0f} s while waiting for: {step.current}\n"
        f"{type(err).__name__}: {err}\n\n"
        f"{_page_state(page) if page is not None else 'no page'}\n"
        f"load average: {os.getloadavg()}\n\n"
        f"steps:\n{step.text()}\n\n"
        f"browser console errors: {console_errors}\n\n"
        f"JupyterLab's log (last 4000 characters):\n{log.read_text()[-4000:] if log.exists() else '-'}\n")
