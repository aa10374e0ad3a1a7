"""A student's and an instructor's view: every notebook in JupyterLab in a real (headless) Chromium,
run top to bottom in QUICK mode, its widget moved; and RISE's slideshow of one notebook.

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

import matplotlib
import nbformat
import pytest

from chromium import BROWSER_ARGS, CHROMIUM, NO_CHROMIUM

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)
NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(path.name for path in NOTEBOOK_DIR.glob("0*.ipynb"))
TOKEN = "lesson-test"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on loopback, serving copies of the notebooks (autosave never touches the repo):
    in run/ without their stored outputs (a prompt that shows a number was run by the test: after
    a page reload, stored outputs could pass for a finished run), in slides/ as stored."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(
        NOTEBOOK_DIR, root / "nb" / "slides", ignore=shutil.ignore_patterns("solutions")
    )
    (root / "nb" / "run").mkdir()
    for path in (root / "nb" / "slides").glob("*.ipynb"):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        nbformat.write(notebook, root / "nb" / "run" / path.name)
    port = _free_port()
    settings = root / "settings" / "@jupyterlab"
    # render every cell, not only those in view (JupyterLab 4 windowing), so the test can find
    # them; and no "get notified about Jupyter news?" pop-up over the page
    for plugin, text in (
        ("notebook-extension/tracker", '{"windowingMode": "none"}'),
        ("apputils-extension/notification", '{"fetchNews": "false", "checkForUpdates": false}'),
    ):
        (settings / plugin).parent.mkdir(parents=True, exist_ok=True)
        (settings / f"{plugin}.jupyterlab-settings").write_text(text)
    env = dict(
        os.environ,
        LESSON_QUICK="1",
        OMP_NUM_THREADS="1",
        JUPYTERLAB_SETTINGS_DIR=str(root / "settings"),
    )
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyter",
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root / 'nb'}",
            "--ServerApp.allow_root=True",
            f"--LabApp.workspaces_dir={root / 'workspaces'}",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
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


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        yield chromium
        chromium.close()


def open_notebook(browser, lab, name, folder="run"):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    # a workspace of its own, reset: only this notebook open (not those of the tests before)
    workspace = folder + name.split("_")[0]
    page.goto(f"{lab}/lab/workspaces/{workspace}/tree/{folder}/{name}?reset&token={TOKEN}")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
    return page


def wait_for_the_kernel(page):
    """Run the first code cell alone until its prompt shows a number: the kernel answers. A Run
    All sent while a fresh kernel still starts up can leave every cell queued ([*]) for good
    (seen in CI, on the first notebook of a new JupyterLab, with the other test worker busy)."""
    first = page.locator(".jp-CodeCell").first
    for attempt in range(4):
        accept_any_dialog(page)
        first.locator(".jp-InputArea-editor").click()
        page.keyboard.press("Escape")  # command mode: Ctrl+Enter runs the cell and stays on it
        page.keyboard.press("Control+Enter")
        try:
            page.wait_for_function(
                "el => /\\[\\d+\\]/.test(el.textContent)",
                arg=first.locator(".jp-InputPrompt").element_handle(),
                timeout=30_000,
            )
            return
        except playwright_api.TimeoutError:
            accept_any_dialog(page)
    pytest.fail("the kernel ran no cell within 2 minutes (4 tries)")


def accept_any_dialog(page):
    """A slow kernel start can open a dialog ("Select Kernel") over the page, at any moment: accept
    it (its default button), or a click on the notebook would wait behind it."""
    dialog = page.locator(".jp-Dialog")
    if dialog.count() and dialog.first.is_visible():
        print("a JupyterLab dialog:", dialog.first.inner_text()[:200].replace("\n", " | "))
        dialog.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()


def run_all_cells(page, timeout_s):
    wait_for_the_kernel(page)
    for attempt in range(3):  # "idle" can show before the kernel takes requests: retry
        select = page.get_by_role("button", name="Select", exact=True)
        if select.is_visible():  # seen once in CI: a slow kernel start asks for a kernel
            select.click()
        page.get_by_role("menuitem", name="Run").click()
        page.get_by_text("Run All Cells", exact=True).click()
        try:
            page.wait_for_function(
                r"""() => [...document.querySelectorAll(
                '.jp-CodeCell .jp-InputPrompt')]
                .some(p => /\[(\*|\d+)\]/.test(p.textContent))""",
                timeout=20_000,
            )
            break
        except playwright_api.TimeoutError:
            page.keyboard.press("Escape")  # close a menu left open, then try again
    else:
        pytest.fail("Run All Cells started no cell (3 tries)")
    # every code cell ends with a number in its prompt, none with [*]
    page.wait_for_function(
        r"""() => {
        const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
        return prompts.length > 0 && prompts.every(p => /\[\d+\]/.test(p.textContent));
    }""",
        timeout=timeout_s * 1000,
    )


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_jupyterlab_and_its_widget_responds(lab, browser, name, tmp_path):
    page = open_notebook(browser, lab, name)
    run_all_cells(page, timeout_s=300)
    page.screenshot(path=str(tmp_path / "after_run_all.png"))
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    lines = [line for text in errors.all_inner_texts() for line in text.splitlines()]
    assert not [
        line for line in lines if "Traceback" in line or ("Error" in line and "Warning" not in line)
    ], lines

    # the live() cell: its output is an ordinary output, redrawn through a display handle when a
    # slider moves (or, in notebook 02, when a file is uploaded)
    source = (NOTEBOOK_DIR / name).read_text(encoding="utf-8")
    if "FileUpload(" in source:
        check_upload(page)
    widget = page.locator(".jp-CodeCell").filter(has=page.locator(".noUi-handle")).last
    if "Slider(" not in source:
        assert widget.count() == 0
        return
    # the first widget of a fresh JupyterLab waits for ipywidgets' JavaScript to load: slow when
    # the other test worker keeps both cores busy
    widget.wait_for(timeout=120_000)
    widget.scroll_into_view_if_needed()
    output = widget.locator(".jp-OutputArea-output").first
    page.wait_for_function(
        "el => el.innerHTML.length > 0", arg=output.element_handle(), timeout=30_000
    )
    before = output.inner_html()
    handle = widget.locator(".noUi-handle").first
    box = handle.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + 150, box["y"] + box["height"] / 2, steps=10)
    page.mouse.up()
    page.wait_for_function(
        "([el, before]) => el.innerHTML !== before",
        arg=[output.element_handle(), before],
        timeout=30_000,
    )
    if name.startswith("01"):  # the first slider is the kernel size: 3, then larger
        assert "conv k=3" in before and "conv k=3" not in output.inner_text()
    page.close()


def check_upload(page):
    """Upload a photo through the FileUpload button (its file input is not in the page: the
    button opens a file chooser): the cell's output names the photo and its top classes."""
    button = page.locator(".widget-upload").last
    button.wait_for(timeout=120_000)
    cell = page.locator(".jp-CodeCell").filter(has=button)
    output = cell.locator(".jp-OutputArea-output").first
    assert "No image yet" in output.inner_text()
    photo = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    with page.expect_file_chooser() as chooser:
        button.click()
    chooser.value.set_files(str(photo))
    page.wait_for_function(
        "el => el.innerText.includes('grace_hopper.jpg, 512x600 pixels')",
        arg=output.element_handle(),
        timeout=30_000,
    )


def test_rise_shows_a_notebook_as_slides_and_the_next_key_moves_on(lab, browser):
    """An instructor's Alt+R in JupyterLab (jupyterlab_rise): a reveal.js slideshow of notebook
    04's stored outputs; the right arrow key shows the next slide."""
    page = open_notebook(browser, lab, "04_modular_code.ipynb", folder="slides")
    page.locator(".jp-Notebook").first.click()  # command mode: the shortcut's selector
    page.keyboard.press("Escape")
    page.keyboard.press("Alt+r")
    frame = page.frame_locator("iframe").last
    present = frame.locator(".reveal .slides section.present").last  # innermost (in a stack)
    present.wait_for(timeout=60_000)
    first = present.inner_text()
    assert first.strip()
    frame.locator(".reveal").first.click()
    page.keyboard.press("ArrowRight")
    page.wait_for_timeout(1500)
    now = frame.locator(".reveal .slides section.present").last.inner_text()
    assert now != first
    page.close()
