"""A function's output that follows a few controls (sliders, dropdowns, checkboxes)."""

import contextlib
import inspect
import io
import traceback

import matplotlib.pyplot as plt
from IPython.display import Image, Pretty, display
from ipywidgets import ValueWidget, VBox
from matplotlib.figure import Figure


def live(function, **controls):
    """Show function(**values) once, then redraw it in place whenever a control changes.

    controls: keyword arguments of `function`, as for ipywidgets.interact: a widget (IntSlider,
    Dropdown, Checkbox, ...) gives its current value and redraws on change; any other value is
    passed as it is. `function` prints text, or draws a matplotlib figure (returns it or leaves it
    open; no plt.show()). Displays the output, then the controls; returns nothing.

    Why not `interact`: its output lives in an ipywidgets.Output, so a static view (GitHub,
    nbconvert HTML) shows "interactive(children=..." and no plot, and a client that executes the
    notebook has to mimic that Output widget, which hangs papermill. Here the output is an ordinary
    display output, updated through its display handle.
    """
    if not callable(function):
        raise TypeError(f"function must be the function to show, got {type(function).__name__}")
    parameters = inspect.signature(function).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(controls) - set(parameters))
        if unknown:
            raise TypeError(
                f"live: {function.__name__}() has no parameter {', '.join(unknown)}; "
                f"its parameters: {', '.join(parameters) or 'none'}"
            )
    widgets = {name: value for name, value in controls.items() if isinstance(value, ValueWidget)}
    for name, widget in widgets.items():
        if not getattr(widget, "description", True):
            widget.description = name

    def view():
        values = {**controls, **{name: widget.value for name, widget in widgets.items()}}
        return _render(function, values)

    handle = display(view(), display_id=True)

    def redraw(change):
        try:
            handle.update(view())
        except Exception:  # noqa: BLE001 (a callback's error is shown nowhere else)
            handle.update(Pretty(traceback.format_exc()))

    for widget in widgets.values():
        widget.observe(redraw, names="value")
    display(VBox(list(widgets.values())))


def _render(function, values):
    """What function(**values) shows: its figure as a PNG Image, else the text it printed."""
    before = set(plt.get_fignums())
    try:
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            result = function(**values)
        new = [plt.figure(number) for number in plt.get_fignums() if number not in before]
        figure = result if isinstance(result, Figure) else (new[-1] if new else None)
        if figure is None:
            return Pretty(printed.getvalue() + ("" if result is None else repr(result)))
        png = io.BytesIO()
        figure.savefig(png, format="png", bbox_inches="tight")
        plt.close(figure)
        return Image(png.getvalue(), format="png")
    finally:  # closed: the inline backend would show them a second time at the end of the cell
        for number in set(plt.get_fignums()) - before:
            plt.close(number)
