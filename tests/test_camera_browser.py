"""Notebook 07's camera section in a real browser: JupyterLab and headless Chromium with a fake camera that
plays a video made here from a photo of a smiling face (``tests/lab.py`` has the server and the waits).

With the camera: the widget starts, names the face *happy* with a frame rate and labelled probability bars,
saves a snapshot in snapshots/ (ignored by git, not beside the notebook) and stops, the camera released and
the view blank, with no error in the browser's console or the kernel's log. With permission denied:
one line says so, and no cell fails. In collect mode, a button and a key each save the face's crop and
its frame, and the counts go on from those already on disk. Screenshots go to test-artifacts/camera/.
"""

from __future__ import annotations

import json
import re

import cv2
import nbformat
import numpy as np
import pytest
from skimage import data as samples

from fer_utils.config import CLASSES

from .lab import (
    PAGE_TIMEOUT_S,
    ROOT,
    SERVER_TIMEOUT_S,
    UI_TIMEOUT_S,
    Steps,
    chromium_page,
    cleared_copy,
    jupyterlab,
    open_notebook,
    recorded,
    require_browser,
    run_all_cells,
    wait_until,
)

NOTEBOOK = ROOT / "notebooks" / "07_real_time.ipynb"
SECTION = "## 4. Try it on yourself"
ARTIFACTS = ROOT / "test-artifacts" / "camera"
RUN_TIMEOUT_S = 900  # the setup cell and the camera section, fast mode, on a busy machine
TEST_TIMEOUT_S = SERVER_TIMEOUT_S + 2 * PAGE_TIMEOUT_S + RUN_TIMEOUT_S + 3 * UI_TIMEOUT_S + 300
FAKE_CAMERA = ["--use-fake-device-for-media-stream"]


def painted(page) -> float:
    """The share of the camera view's pixels drawn on (the rest shows its dark background)."""
    return page.locator(".fer-camera-view").evaluate(
        "c => { const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) n += d[i] > 0; return n / (d.length / 4); }")


def camera_section() -> nbformat.NotebookNode:
    """Notebook 07's Setup cell and its camera section, as a notebook of their own."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and c.source.startswith(SECTION)]
    assert starts, f"notebook 07 has no section {SECTION!r}"
    end = next(i for i in range(starts[0] + 1, len(nb.cells))
               if nb.cells[i].cell_type == "markdown" and nb.cells[i].source.startswith("## "))
    setup = next(c for c in nb.cells if c.cell_type == "code" and "import fer_utils as fu" in c.source)
    nb.cells = [setup, *nb.cells[starts[0]:end]]
    return nb


def collect_notebook() -> nbformat.NotebookNode:
    """Notebook 07 (its kernel) with one cell: the camera widget in collect mode, saving into my_faces/ beside it."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells = [nbformat.v4.new_code_cell(
        'import fer_utils as fu\n\nfu.camera.CameraWidget(collect_dir="my_faces", max_fps=8)')]
    return nb


def smiling_video(path, frames: int = 10):
    """A 640x480 Y4M video (what Chromium's fake camera plays) of scikit-image's smiling astronaut."""
    frame = np.full((480, 640, 3), 40, np.uint8)
    frame[:, 80:560] = cv2.resize(samples.astronaut(), (480, 480), interpolation=cv2.INTER_AREA)
    yuv = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), cv2.COLOR_BGR2YUV_I420)  # Y, then U, then V planes
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv.tobytes())
    return path


def serve(tmp_path, notebook: nbformat.NotebookNode):
    """A JupyterLab server on ``notebook`` (as lab/camera.ipynb), in fast mode; yields (url, token)."""
    require_browser()
    root = tmp_path / "lab"
    root.mkdir(exist_ok=True)
    cleared_copy(notebook, root / "camera.ipynb")
    with jupyterlab(tmp_path, root) as server:
        yield server


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on notebook 07's camera section."""
    yield from serve(tmp_path, camera_section())


@pytest.fixture
def collect_lab(tmp_path):
    """A JupyterLab server on the camera widget in collect mode, one happy crop already in lab/my_faces/."""
    earlier = tmp_path / "lab" / "my_faces" / "happy" / "earlier.png"
    earlier.parent.mkdir(parents=True)
    cv2.imwrite(str(earlier), np.zeros((48, 48), np.uint8))
    yield from serve(tmp_path, collect_notebook())


def _browser_session(tmp_path, url, token, args, name, check):
    """Chromium with ``args``: camera.ipynb run to the end, then ``check(page, step)``; fails with a record."""
    from playwright.sync_api import expect, sync_playwright

    artifacts = ARTIFACTS / name
    artifacts.mkdir(parents=True, exist_ok=True)
    for old in artifacts.glob("*"):
        old.unlink()
    console_errors: list[str] = []
    step, page = Steps(), None
    expect.set_options(timeout=UI_TIMEOUT_S * 1000)
    with sync_playwright() as p:
        step("Chromium starts")
        context, page = chromium_page(p, tmp_path / f"profile-{name}", console_errors, viewport=(1200, 1000), args=args,
                                      navigation_timeout_s=UI_TIMEOUT_S)
        with recorded(step, page, console_errors, tmp_path, artifacts, context):
            step("JupyterLab loads camera.ipynb and its kernel connects")
            open_notebook(page, url, token, "camera.ipynb")
            step(f"the setup and the camera section run (deadline {RUN_TIMEOUT_S} s)")
            run_all_cells(page, RUN_TIMEOUT_S)
            step("the camera widget shows")
            widget = page.locator(".fer-camera")
            expect(widget).to_be_visible()
            expect(page.locator(".fer-camera-status")).to_have_text("camera off")
            check(page, widget, step, artifacts)
            step("done")
    assert console_errors == [], f"browser console errors: {console_errors}"
    log = (tmp_path / "lab.log").read_text()
    assert "Traceback" not in log, f"the kernel or the server logged a traceback: {log[-3000:]}"


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_the_camera_widget_names_a_smile_from_a_fake_camera(lab, tmp_path):
    url, token = lab
    video = smiling_video(tmp_path / "smile.y4m")

    def check(page, widget, step, artifacts):
        from playwright.sync_api import expect

        step("start: the browser's camera gives frames, the kernel names the face")
        page.locator(".fer-camera-toggle").click()
        wait_until(lambda: widget.get_attribute("data-camera") == "on",
                   what=lambda: f"(status: {page.locator('.fer-camera-status').inner_text()})")
        wait_until(lambda: "happy" in json.loads(widget.get_attribute("data-faces") or "[]")
                   and float(widget.get_attribute("data-fps") or 0) > 0,
                   what=lambda: f"(status: {page.locator('.fer-camera-status').inner_text()})")
        status = page.locator(".fer-camera-status").inner_text()
        assert "fps" in status and "ms round trip" in status and "happy" in status, status

        def labelled_bars():  # the face's seven bars, each labelled with its emotion and percentage
            bars = json.loads(widget.get_attribute("data-bars") or "[]")
            return bars and len(bars[0]) == 7 and all(re.fullmatch(r"[a-z]+ \d+%", b) for b in bars[0]) and bars[0][3].startswith("happy")

        wait_until(labelled_bars, what=lambda: f"(bar labels: {widget.get_attribute('data-bars')})")
        assert painted(page) > 0.9
        widget.screenshot(path=artifacts / "1_happy.png")
        step("snapshot: the annotated view saved by the kernel in snapshots/")
        page.locator(".fer-camera-snapshot").click()
        expect(page.locator(".fer-camera-note")).to_contain_text("snapshot saved: snapshots/camera-snapshot-")
        saved = ROOT / page.locator(".fer-camera-note").inner_text().removeprefix("snapshot saved: ")
        try:
            assert saved.stat().st_size > 1000
        finally:
            saved.unlink(missing_ok=True)
        assert not list((tmp_path / "lab").glob("camera-snapshot-*.png"))  # nothing beside the notebook
        step("stop: the camera is released, the view blank")
        page.locator(".fer-camera-toggle").click()
        wait_until(lambda: widget.get_attribute("data-camera") == "off")
        assert widget.get_attribute("data-released") == "true"
        expect(page.locator(".fer-camera-status")).to_have_text("camera off")
        assert painted(page) < 0.05, "the last frame stays on the view after Stop"
        widget.screenshot(path=artifacts / "2_stopped.png")

    _browser_session(tmp_path, url, token, FAKE_CAMERA + ["--use-fake-ui-for-media-stream",
                                                          f"--use-file-for-fake-video-capture={video}"], "granted", check)


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_a_denied_camera_is_one_line_not_a_traceback(lab, tmp_path):
    url, token = lab

    def check(page, widget, step, artifacts):
        from playwright.sync_api import expect

        step("start, with the camera permission denied")
        page.locator(".fer-camera-toggle").click()
        expect(page.locator(".fer-camera-status")).to_have_text("no camera: permission denied")
        assert widget.get_attribute("data-camera") == "off"
        widget.screenshot(path=artifacts / "1_denied.png")

    _browser_session(tmp_path, url, token, FAKE_CAMERA + ["--deny-permission-prompts"], "denied", check)


@pytest.mark.timeout(TEST_TIMEOUT_S)
def test_collect_mode_saves_the_face_by_button_and_by_key(collect_lab, tmp_path):
    url, token = collect_lab
    video = smiling_video(tmp_path / "smile.y4m")
    faces_dir = tmp_path / "lab" / "my_faces"

    def check(page, widget, step, artifacts):
        from playwright.sync_api import expect

        def counts():
            return json.loads(widget.get_attribute("data-counts") or "{}")

        step("collect mode: a button per emotion, counted from disk, and the hint line")
        buttons = page.locator(".fer-camera-emotion")
        expect(buttons).to_have_count(7)
        assert buttons.all_inner_texts() == [f"{k + 1} {c}: {int(c == 'happy')}" for k, c in enumerate(CLASSES)]
        assert buttons.nth(6).get_attribute("title").endswith("(key 7)")
        expect(page.locator(".fer-camera-hint")).to_contain_text("key 1-7 while the widget has focus")
        step("start: the kernel sees the one face")
        page.locator(".fer-camera-toggle").click()
        wait_until(lambda: json.loads(widget.get_attribute("data-faces") or "[]") == ["happy"],
                   what=lambda: f"(status: {page.locator('.fer-camera-status').inner_text()})")
        step("the happy button saves the face")
        page.locator(".fer-camera-emotion[data-emotion=happy]").click()
        expect(page.locator(".fer-camera-note")).to_contain_text("happy saved: my_faces/happy/")
        wait_until(lambda: counts().get("happy") == 2, what=lambda: f"(counts: {counts()})")
        expect(buttons.nth(3)).to_have_text("4 happy: 2")
        step("key 7, the widget focused, saves it as surprise")
        page.locator(".fer-camera-view").click()
        page.keyboard.press("7")
        wait_until(lambda: counts().get("surprise") == 1, what=lambda: f"(counts: {counts()})")
        expect(buttons.nth(6)).to_have_text("7 surprise: 1")
        widget.screenshot(path=artifacts / "1_collected.png")
        step("on disk: each crop 48x48 gray in its emotion's folder, its frame in .frames/")
        crops = sorted(faces_dir.glob("*/*.png"))
        assert [p.relative_to(faces_dir).parts[0] for p in crops] == ["happy", "happy", "surprise"], crops
        for crop in (p for p in crops if p.name != "earlier.png"):
            assert cv2.imread(str(crop), cv2.IMREAD_UNCHANGED).shape == (48, 48)
            frame = cv2.imread(str(faces_dir / ".frames" / crop.parent.name / f"{crop.stem}.jpg"))
            assert frame is not None and frame.shape[1] == 320  # the frame the browser sent, shrunk to frame_width
        page.locator(".fer-camera-toggle").click()
        wait_until(lambda: widget.get_attribute("data-camera") == "off")

    _browser_session(tmp_path, url, token, FAKE_CAMERA + ["--use-fake-ui-for-media-stream",
                                                          f"--use-file-for-fake-video-capture={video}"], "collect", check)
