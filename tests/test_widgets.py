"""support.widgets.live: an ordinary output updated through a display handle, no interact."""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from ipywidgets import Checkbox, Dropdown, IntSlider
from ipywidgets.widgets import widget_output
from traitlets.config import Config

from lesson_utils.support.widgets import live

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
WIDGET = "application/vnd.jupyter.widget-view+json"


class RecordingPublisher(DisplayPublisher):
    """Keeps what IPython's display machinery publishes instead of sending it to a frontend."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.messages = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        self.messages.append(
            {"data": data, "display_id": (transient or {}).get("display_id"), "update": update}
        )


@pytest.fixture
def published(monkeypatch):
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    publisher = RecordingPublisher()
    monkeypatch.setattr(shell, "display_pub", publisher)

    def no_output_widget(*args, **kwargs):
        raise AssertionError("an ipywidgets.Output was created")

    monkeypatch.setattr(widget_output.Output, "__init__", no_output_widget)
    plt.close("all")
    yield publisher.messages
    plt.close("all")


def views(messages):
    """The messages of the function's view: everything but the controls."""
    return [m for m in messages if WIDGET not in m["data"]]


def test_text_view_shown_once_then_updated_in_place(published):
    calls = []

    def show(n=2, label="x"):
        calls.append((n, label))
        print(f"{label} * {n} = {label * n}")

    n = IntSlider(2, 1, 5)
    assert live(show, n=n, label="ab") is None  # it displays the controls itself, once
    assert calls == [(2, "ab")]
    [first] = views(published)
    assert first["data"]["text/plain"] == "ab * 2 = abab\n"
    assert first["display_id"] and not first["update"]
    assert len([m for m in published if WIDGET in m["data"]]) == 1, "the controls, once"
    assert n.description == "n"

    n.value = 3
    assert calls[-1] == (3, "ab")
    last = views(published)[-1]
    assert last["update"] and last["display_id"] == first["display_id"]
    assert last["data"]["text/plain"] == "ab * 3 = ababab\n"
    assert len([m for m in views(published) if not m["update"]]) == 1


def test_every_control_redraws(published):
    size, bold = Dropdown(options=[8, 16], value=8), Checkbox(False)
    live(lambda size=8, bold=False: print(size, bold), size=size, bold=bold)
    bold.value = True
    size.value = 16
    assert [m["data"]["text/plain"] for m in views(published)] == [
        "8 False\n",
        "8 True\n",
        "16 True\n",
    ]


def test_returned_figure_shown_as_png_and_closed(published):
    def draw(k=1):
        fig, ax = plt.subplots()
        ax.plot([0, k])
        return fig

    k = IntSlider(1, 1, 3)
    live(draw, k=k)
    [first] = views(published)
    assert "image/png" in first["data"]
    assert plt.get_fignums() == []  # else the inline backend shows it again after the cell
    k.value = 2
    last = views(published)[-1]
    assert last["update"] and last["display_id"] == first["display_id"]
    assert "image/png" in last["data"] and last["data"]["image/png"] != first["data"]["image/png"]
    assert plt.get_fignums() == []


def test_figure_left_open_is_shown_too(published):
    def draw(k=1):
        plt.plot([0, k])

    live(draw, k=IntSlider(1, 1, 3))
    assert "image/png" in views(published)[0]["data"]
    assert plt.get_fignums() == []


def test_an_error_after_a_change_shows_in_the_view(published):
    n = IntSlider(1, 0, 3)
    live(lambda n=1: print(1 / (n - 2)), n=n)
    n.value = 2
    assert "ZeroDivisionError" in views(published)[-1]["data"]["text/plain"]


def test_the_notebooks_use_live_not_interact():
    uses = 0
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"])
            assert "interact" not in source or cell["cell_type"] == "markdown", path.name
            uses += "live(" in source
    assert uses >= 6


def test_static_html_of_each_committed_notebook_shows_the_widgets_first_view():
    """What `jupyter nbconvert --to html` (and nbviewer) shows of each stored widget cell: the
    plot or text that live() drew, not "interactive(children=..."; and the notebook's widget
    metadata is all or nothing (GitHub fails to render widget metadata without its state)."""
    import nbformat
    from nbconvert import HTMLExporter

    checked = 0
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        widgets = notebook.metadata.get("widgets")
        assert widgets is None or "state" in widgets.get(
            "application/vnd.jupyter.widget-state+json", {}
        ), path.name
        cells = [c for c in notebook.cells if c.cell_type == "code" and "live(" in c.source]
        for cell in cells:
            single = nbformat.v4.new_notebook(cells=[cell], metadata=notebook.metadata)
            html, _ = HTMLExporter(template_name="classic").from_notebook_node(single)
            assert "interactive(children=" not in html, path.name
            shown = [
                o
                for o in cell.outputs
                if o.get("output_type") == "display_data"
                and ("image/png" in o.data or "text/plain" in o.data)
                and "application/vnd.jupyter.widget-view+json" not in o.data
            ]
            assert shown, f"{path.name}: the widget cell has no stored first view"
            if "image/png" in shown[0].data:
                assert f'src="data:image/png;base64,{shown[0].data["image/png"][:40]}' in html
            else:
                first_line = shown[0].data["text/plain"].splitlines()[0]
                assert first_line[:30].replace("'", "&#39;") in html.replace("&#x27;", "&#39;")
            checked += 1
    assert checked >= 6
