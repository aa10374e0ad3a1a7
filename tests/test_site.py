"""The offline slides and course page (lesson_utils.course.site): built, then opened from file://
in headless Chromium with every non-file request aborted.

The browser tests skip, with the reason, where Chromium or Playwright is missing. With
LESSON_SCREENSHOTS=1 they also redraw figures/slide_example.png and figures/course_page.png.
"""

import os
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest

from chromium import BROWSER_ARGS, CHROMIUM, NO_CHROMIUM
from lesson_utils.course import site

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = os.environ.get("LESSON_SCREENSHOTS") == "1"
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason=NO_CHROMIUM)


class _Resources(HTMLParser):
    """Collects the URLs a page loads: script/img/iframe src, stylesheet href, CSS @import."""

    def __init__(self):
        super().__init__()
        self.urls, self._in_style = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("script", "img", "iframe", "source", "embed") and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
        self._in_style = tag == "style"

    def handle_data(self, data):
        if self._in_style:
            self.urls += [part.split(")")[0].strip("'\" ") for part in data.split("url(")[1:]]

    def handle_endtag(self, tag):
        self._in_style = False


def _resources(path):
    parser = _Resources()
    parser.feed(Path(path).read_text(encoding="utf-8"))
    return parser.urls


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("built")
    decks = site.build_slides(out / "slides")
    index = site.build_page(out / "site")
    return {"decks": decks, "index": index}


def test_builds_every_notebook_without_external_resources(built):
    names = [p.stem for p in site.notebooks()]
    assert len(names) == 7 and not any("solutions" in n for n in names)
    assert [p.name for p in built["decks"]] == [f"{n}.slides.html" for n in names]
    pages = [built["index"].parent / f"{n}.html" for n in names]
    assert all(p.is_file() for p in pages)
    for path in built["decks"] + pages + [built["index"]]:
        urls = _resources(path)
        assert not [u for u in urls if u.startswith(("http:", "https:", "//"))], path
        for url in urls:  # every local file it loads was copied next to it
            if not url.startswith(("data:", "#")):
                assert (path.parent / url).exists(), (path, url)
    css = (built["decks"][0].parent / "reveal.js").rglob("*.css")
    assert not [p for p in css if "@import url(http" in p.read_text(encoding="utf-8")]
    index = built["index"].read_text(encoding="utf-8")
    assert "01 · Shapes in a convolutional network" in index and "<table>" in index
    assert all(f'href="{n}.html"' in index for n in names)


def test_skip_cells_are_left_out_of_the_slides_not_the_page(built):
    nb = nbformat.read(ROOT / "notebooks" / "02_training_on_gpu.ipynb", as_version=4)
    skipped = [c for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "skip"]
    deck = built["decks"][1].read_text(encoding="utf-8")
    page = (built["index"].parent / "02_training_on_gpu.html").read_text(encoding="utf-8")
    assert skipped and deck.count('<div class="jp-Cell ') == len(nb.cells) - len(skipped)
    assert page.count('<div class="jp-Cell ') == len(nb.cells)


@pytest.mark.parametrize("argv", [["talk"], ["slides", "--notebooks", "NO_SUCH_FOLDER"]])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        site.main(argv)
    assert exit_.value.code == 2 and "error" in capsys.readouterr().err


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip(NO_CHROMIUM)
    api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
    with api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=BROWSER_ARGS,
        )
        yield browser
        browser.close()


@pytest.fixture
def offline_page(browser):
    """A 1280x720 page that aborts every request not to file://, and records what failed."""
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.failed, page.errors = [], []

    def only_files(route):
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            route.abort()

    page.route("**/*", only_files)
    page.on("requestfailed", lambda request: page.failed.append(request.url))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    page.close()


def _show(page, selector):
    """Go, without transition, to the first slide that holds `selector`; return its index."""
    return page.evaluate(
        """selector => {
        Reveal.configure({transition: 'none'});
        const slide = [...document.querySelectorAll('.reveal .slides section:not(.stack)')]
            .find(s => s.querySelector(selector));
        const i = Reveal.getIndices(slide);
        Reveal.slide(i.h, i.v);
        return Reveal.getIndices();
    }""",
        selector,
    )


@needs_browser
def test_deck_shows_slides_offline(built, offline_page):
    page = offline_page
    page.goto(built["decks"][1].as_uri())  # 02_training_on_gpu
    page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=20_000)
    assert page.locator(".reveal .slides section.present").first.is_visible()
    first = page.evaluate("Reveal.getIndices()")
    page.keyboard.press("ArrowRight")
    page.wait_for_function(
        "first => JSON.stringify(Reveal.getIndices()) !== JSON.stringify(first)",
        arg=first,
        timeout=5_000,
    )
    shown = _show(page, ".jp-OutputArea-output")
    assert shown["h"] > 0
    assert page.locator("section.present .jp-OutputArea-output").first.is_visible()
    if SCREENSHOTS:
        page.screenshot(path=str(ROOT / "figures" / "slide_example.png"))
    assert page.failed == [] and page.errors == []


@needs_browser
def test_long_output_scrolls_inside_its_slide(tmp_path, offline_page):
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell(
                "# A long log", metadata={"slideshow": {"slide_type": "slide"}}
            ),
            nbformat.v4.new_code_cell(
                "\n".join(f"x{i} = {i}" for i in range(40)),
                outputs=[
                    nbformat.v4.new_output(
                        "stream", text="".join(f"epoch {i}: loss 0.5\n" for i in range(500))
                    )
                ],
                metadata={"slideshow": {"slide_type": "slide"}},
            ),
        ]
    )
    (tmp_path / "nb").mkdir()
    nbformat.write(nb, tmp_path / "nb" / "01_long.ipynb")
    deck = site.build_slides(tmp_path / "slides", tmp_path / "nb")[0]
    page = offline_page
    page.goto(deck.as_uri())
    page.wait_for_function("() => window.Reveal && Reveal.isReady()", timeout=20_000)
    _show(page, ".jp-OutputArea-output")
    box = page.evaluate("""() => {
        const slide = Reveal.getCurrentSlide(), r = slide.getBoundingClientRect();
        const out = slide.querySelector('.jp-OutputArea-output pre');
        return {top: r.top, bottom: r.bottom, height: r.height,
                scrolls: out.scrollHeight > out.clientHeight + 100};
    }""")
    assert box["top"] >= 0 and box["bottom"] <= 720 and box["height"] <= 720, box
    assert box["scrolls"], box
    assert page.failed == [] and page.errors == []


@needs_browser
def test_course_page_offline(built, offline_page):
    page = offline_page
    page.goto(built["index"].as_uri())
    assert "Lesson 4" in page.locator("h1").inner_text() and page.title().startswith("Lesson 4")
    assert page.locator("table").first.is_visible()
    if SCREENSHOTS:
        page.screenshot(path=str(ROOT / "figures" / "course_page.png"))
    with_image = next(
        p.stem
        for p in site.notebooks()
        if any(
            "image/png" in o.get("data", {})
            for c in nbformat.read(p, as_version=4).cells
            for o in c.get("outputs", [])
        )
    )
    page.locator(f'a[href="{with_image}.html"]').click()
    page.wait_for_url(f"**/{with_image}.html")
    page.wait_for_function(
        "() => [...document.images].some(i => i.complete && i.naturalWidth > 0)", timeout=10_000
    )
    page.locator("nav.course-nav a", has_text="index").first.click()
    page.wait_for_url("**/index.html")
    assert page.failed == [] and page.errors == []
