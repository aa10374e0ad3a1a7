"""A student's view: notebook 01 in JupyterLab in a real (headless) Chromium, run top to bottom.

Skipped, with the reason, where Chromium or Playwright is missing (.ci/run installs both: Debian's
chromium package, and Playwright from PyPI without its own browser download).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine "
                                "(apt-get install chromium)")
NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "01_cnn_shapes.ipynb"
TOKEN = "lesson-test"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on loopback, serving a copy of notebook 01 (autosave never touches the repo)."""
    (tmp_path / "nb").mkdir()
    shutil.copy(NOTEBOOK, tmp_path / "nb" / NOTEBOOK.name)
    port = _free_port()
    # render every cell, not only those in view (JupyterLab 4 windowing), so the test can find them
    settings = tmp_path / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text('{"windowingMode": "none"}')
    env = dict(os.environ, LESSON_QUICK="1", OMP_NUM_THREADS="1",
               JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"))
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path / 'nb'}",
         "--ServerApp.allow_root=True"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not start within 60 s")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_notebook_runs_in_jupyterlab_and_its_widget_responds(lab, tmp_path):
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/{NOTEBOOK.name}?token={TOKEN}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)

        # clear the stored outputs first: their execution counts would pass for a finished run
        page.get_by_role("menuitem", name="Edit").click()
        page.get_by_text("Clear Outputs of All Cells", exact=True).click()
        page.wait_for_function(r"""() => [...document.querySelectorAll(
            '.jp-CodeCell .jp-InputPrompt')].every(p => !/\d/.test(p.textContent))""",
            timeout=10_000)
        for attempt in range(3):  # "idle" can show before the kernel takes requests: retry
            select = page.get_by_role("button", name="Select", exact=True)
            if select.is_visible():  # seen once in CI: a slow kernel start asks for a kernel
                select.click()
            page.get_by_role("menuitem", name="Run").click()
            page.get_by_text("Run All Cells", exact=True).click()
            try:
                page.wait_for_function(r"""() => [...document.querySelectorAll(
                    '.jp-CodeCell .jp-InputPrompt')]
                    .some(p => /\[(\*|\d+)\]/.test(p.textContent))""",
                    timeout=20_000)
                break
            except playwright_api.TimeoutError:
                continue
        # every code cell ends with a number in its prompt, none with [*]
        page.wait_for_function(r"""() => {
            const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
            return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent));
        }""", timeout=120_000)

        page.screenshot(path=str(tmp_path / "after_run_all.png"))
        errors = page.locator(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        lines = [line for text in errors.all_inner_texts() for line in text.splitlines()]
        assert not [line for line in lines if "Traceback" in line or
                    ("Error" in line and "Warning" not in line)], lines

        # the live() cell: its output is an ordinary output, redrawn through a display handle
        widget = page.locator(".jp-CodeCell").filter(has=page.locator(".noUi-handle")).last
        widget.scroll_into_view_if_needed()
        output = widget.locator(".jp-OutputArea-output").filter(has_text="conv k=").first
        page.wait_for_function("el => el.textContent.includes('conv k=3')",
                               arg=output.element_handle(), timeout=30_000)
        before = output.inner_text()
        handle = widget.locator(".noUi-handle").first  # the kernel_size slider (3, from 1 to 7)
        box = handle.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + 400, box["y"] + box["height"] / 2, steps=10)  # to the end: 7
        page.mouse.up()
        page.wait_for_function("el => el.textContent.includes('conv k=7')",
                               arg=output.element_handle(), timeout=30_000)
        assert output.inner_text() != before
        browser.close()
