"""The notebooks as offline HTML: reveal.js slides and a static course page.

    python -m lesson_utils.course.site slides [--out slides]   # slides/NN_name.slides.html
    python -m lesson_utils.course.site page [--out site]       # site/index.html

Both open from file:// with no network. reveal.js comes from the sphinx-revealjs package (RISE's
copy is bundled into webpack chunks that cannot be loaded on their own); jQuery, require.js,
MathJax (the notebooks have no math), mermaid and the widgets' scripts are left out.
"""

import argparse
import html
import importlib.util
import re
import shutil
from pathlib import Path

import mistune
import nbformat
from nbconvert import HTMLExporter, SlidesExporter

from ..support.checks import out_folder_arg
from ..paths import REPO_ROOT

ROOT = REPO_ROOT
NOTEBOOKS = ROOT / "notebooks"
REVEAL_FILES = [
    "dist/reveal.css",
    "dist/reveal.js",
    "dist/theme/white.css",
    "dist/theme/fonts/source-sans-pro",
    "plugin/notes/notes.js",
    "LICENSE",
]

# the blocks of nbconvert's templates that load scripts from CDNs, emptied
_OFFLINE = """{%- extends 'index.html.j2' -%}
{% block html_head_js %}{% endblock html_head_js %}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{% block html_head_js_mathjax %}{% endblock html_head_js_mathjax %}
{% block html_head_js_mermaidjs %}{% endblock html_head_js_mermaidjs %}
"""
# long outputs scroll inside their slide, and a slide never grows past the screen
SLIDES_TEMPLATE = (
    _OFFLINE
    + """
{% block html_head_css %}<style>
/* an output is a table cell, whose max-height is ignored: its pre scrolls instead */
.reveal .jp-OutputArea-output > pre { max-height: 360px; overflow: auto; }
.reveal .slides section:not(.stack) { max-height: 100%; overflow-y: auto; }
.reveal .slides :is(h1, h2, h3) { text-transform: none; }  /* the theme shouts */
</style>{% endblock html_head_css %}
{% block footer_js %}
<script src="{{ resources.reveal.url_prefix }}/dist/reveal.js"></script>
<script src="{{ resources.reveal.url_prefix }}/plugin/notes/notes.js"></script>
<script>
Reveal.initialize({controls: true, progress: true, history: true, center: true,
                   transition: "{{ resources.reveal.transition }}", plugins: [RevealNotes],
                   width: {{ resources.reveal.width }}, height: {{ resources.reveal.height }}});
</script>
{% endblock footer_js %}
"""
)
PAGE_TEMPLATE = (
    _OFFLINE
    + """
{% block body_header %}{{ super() }}{{ resources.nav }}{% endblock body_header %}
{% block body_footer %}{{ resources.nav }}{{ super() }}{% endblock body_footer %}
"""
)
INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; padding: 0 1em;
       line-height: 1.5; }}
table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
code, pre {{ background: #f4f4f4; }} pre {{ padding: 0.5em; overflow: auto; }}
</style></head><body>
<h1>{title}</h1>
<ol>
{items}
</ol>
<h2>Results</h2>
{results}
</body></html>
"""


def notebooks(folder=NOTEBOOKS):
    """The lesson's notebooks, in order (the solutions folder left out)."""
    return sorted(Path(folder).glob("[0-9]*.ipynb"))


def reveal_dir():
    """The reveal.js folder that the sphinx-revealjs package ships (found without importing it)."""
    spec = importlib.util.find_spec("sphinx_revealjs")
    if spec is None:
        raise SystemExit("reveal.js not found: pip install sphinx-revealjs")
    return Path(spec.submodule_search_locations[0]) / "_static" / "revealjs"


def build_slides(out="slides", folder=NOTEBOOKS):
    """Write out/NN_name.slides.html for each notebook, and reveal.js into out/reveal.js/."""
    out = Path(out)
    for name in REVEAL_FILES:
        source, target = reveal_dir() / name, out / "reveal.js" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy(source, target)
    exporter = SlidesExporter(
        raw_template=SLIDES_TEMPLATE,
        reveal_url_prefix="reveal.js",
        reveal_theme="white",
        reveal_width="1280",
        reveal_height="720",
    )
    written = []
    for path in notebooks(folder):
        body, _ = exporter.from_filename(str(path))
        written.append(out / f"{path.stem}.slides.html")
        written[-1].write_text(body, encoding="utf-8")
    return written


def title_and_intro(nb, default="notebook"):
    """A notebook's first markdown heading and the paragraph after it (default, "" if none)."""
    text = "\n\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    match = re.search(r"^#+ +(.+)\n+((?:.+\n?)*)", text, re.M)
    if match is None:
        return default, ""
    intro = match.group(2).strip()
    return match.group(1).strip(), ("" if intro.startswith("#") else intro)


def readme_section(name, readme=ROOT / "README.md"):
    """The markdown of one `## name` section of the README."""
    match = re.search(
        rf"^## {re.escape(name)}\n(.*?)(?=^## |\Z)",
        Path(readme).read_text(encoding="utf-8"),
        re.S | re.M,
    )
    return match.group(1).strip() if match else ""


def build_page(out="site", folder=NOTEBOOKS, readme=ROOT / "README.md"):
    """Write out/index.html and out/NN_name.html (each notebook with its outputs), linked."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = notebooks(folder)
    books = [nbformat.read(path, as_version=4) for path in paths]
    titles = [title_and_intro(nb, p.stem) for nb, p in zip(books, paths)]
    exporter = HTMLExporter(raw_template=PAGE_TEMPLATE, embed_images=True)
    items = []
    for i, (path, nb, (title, intro)) in enumerate(zip(paths, books, titles)):
        links = ['<a href="index.html">index</a>']
        if i > 0:
            links.insert(
                0, f'<a href="{paths[i - 1].stem}.html">&larr; {html.escape(titles[i - 1][0])}</a>'
            )
        if i + 1 < len(paths):
            links.append(
                f'<a href="{paths[i + 1].stem}.html">{html.escape(titles[i + 1][0])} &rarr;</a>'
            )
        nav = f'<nav class="course-nav" style="padding: 0.5em 1em">{" | ".join(links)}</nav>'
        body, _ = exporter.from_notebook_node(
            nb, resources={"nav": nav, "metadata": {"name": title, "path": str(path.parent)}}
        )
        (out / f"{path.stem}.html").write_text(body, encoding="utf-8")
        items.append(
            f'<li><a href="{path.stem}.html">{html.escape(title)}</a>{mistune.html(intro)}</li>'
        )
    readme_text = Path(readme).read_text(encoding="utf-8")
    heading = re.search(r"^# (.+)$", readme_text, re.M)
    index = INDEX.format(
        title=html.escape(heading.group(1) if heading else "The course"),
        items="\n".join(items),
        results=mistune.html(readme_section("Results", readme)),
    )
    (out / "index.html").write_text(index, encoding="utf-8")
    return out / "index.html"


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m lesson_utils.course.site", description="Offline HTML slides or course page."
    )
    parser.add_argument("what", choices=["slides", "page"])
    parser.add_argument(
        "--out", type=out_folder_arg, help="output folder (default: slides/ or site/)"
    )
    parser.add_argument("--notebooks", default=str(NOTEBOOKS), help="notebook folder")
    args = parser.parse_args(argv)
    if not notebooks(args.notebooks):
        parser.error(f"no notebooks NN_*.ipynb in {args.notebooks}")
    if args.out is not None and Path(args.out).is_file():
        parser.error(f"--out {args.out} is a file, not a folder")
    if args.what == "slides":
        written = build_slides(args.out or "slides", args.notebooks)
        print(f"{len(written)} slide decks in {written[0].parent}/ (open one in a browser)")
    else:
        print(f"course page: {build_page(args.out or 'site', args.notebooks)}")


if __name__ == "__main__":
    main()
