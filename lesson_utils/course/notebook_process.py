"""What runs in each notebook's papermill process (run_all starts it from this file's path, so it
imports nothing of lesson_utils): papermill.execute_notebook, with the parameters written into
the notebook's own parameters cell instead of papermill's "injected-parameters" cell, so that the
executed copy's parameters cell holds exactly the values its outputs came from."""

import ast

import papermill

INJECTED, PARAMETERS = "injected-parameters", "parameters"


def _assignments(source):
    """{name: (first line, first column, last line, end column) of its value} for each plain
    `NAME = value` (or `NAME: type = value`) statement of `source`; None if it is not Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = node.target
        else:
            continue
        if isinstance(target, ast.Name):
            value = node.value
            found[target.id] = (
                value.lineno,
                value.col_offset,
                value.end_lineno,
                value.end_col_offset,
            )
    return found


def _offset(lines, line, column):
    """The index in the joined text of (1-based line, UTF-8 byte column), as ast counts them."""
    before = "".join(lines[: line - 1])
    return len(before) + len(lines[line - 1].encode()[:column].decode(errors="ignore"))


def fold_parameters(nb):
    """Write the values of the notebook's papermill "injected-parameters" cell into its parameters
    cell and delete the injected cell: each `NAME = value` line gets the injected value (its
    comment kept, at its column where there is room), a name the cell lacks gets a line of its
    own at the end. A notebook without a parameters cell keeps the cell, as its parameters cell.
    Returns the notebook (changed in place)."""
    tagged = [
        i for i, c in enumerate(nb.cells) if INJECTED in c.get("metadata", {}).get("tags", [])
    ]
    if not tagged:
        return nb
    injected = nb.cells[tagged[0]]
    target = next(
        (
            c
            for c in nb.cells
            if c.cell_type == "code" and PARAMETERS in c.get("metadata", {}).get("tags", [])
        ),
        None,
    )
    if target is None:
        tags = injected.metadata["tags"]
        tags[tags.index(INJECTED)] = PARAMETERS
        for i in reversed(tagged[1:]):
            del nb.cells[i]
        return nb
    new_source = "".join(injected.source)
    new_values = _assignments(new_source)
    source = "".join(target.source)
    if new_values is None:  # not plain Python: its lines go at the end of the cell, as they are
        target.source = source.rstrip("\n") + "\n" + new_source
        new_values = {}
    new_lines = new_source.splitlines(keepends=True)
    values = {
        name: new_source[_offset(new_lines, a, b) : _offset(new_lines, c, d)]
        for name, (a, b, c, d) in new_values.items()
    }
    source = "".join(target.source)
    spans = _assignments(source)
    if spans is None:  # not plain Python: the injected lines go at its end, where they win
        spans = {}
    lines = source.splitlines(keepends=True)
    edits = []
    for name, value in values.items():
        if name not in spans:
            continue
        a, b, c, d = spans[name]
        start, end = _offset(lines, a, b), _offset(lines, c, d)
        rest = source[end:].split("\n", 1)[0]
        gap = len(rest) - len(rest.lstrip(" "))
        if rest.strip().startswith("#") and a == c:  # keep the comment's column where it fits
            room = gap + (end - start) - len(value)
            edits.append((start, end + gap, value + " " * max(min(gap, 2), room)))
        else:
            edits.append((start, end, value))
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    missing = [name for name in values if name not in spans]
    if missing:
        source = source.rstrip("\n") + "".join(f"\n{name} = {values[name]}" for name in missing)
    target.source = source
    for i in reversed(tagged):
        del nb.cells[i]
    return nb


def execute(**arguments):
    """papermill.execute_notebook(**arguments), with the parameters written into the notebook's
    parameters cell (fold_parameters) instead of a cell of their own: what runs and what is
    stored are the notebook's own cells. An injected cell left in the source notebook (by an
    earlier papermill run) is folded the same way."""
    import papermill.execute as steps

    load, parameterize = steps.load_notebook_node, steps.parameterize_notebook
    steps.load_notebook_node = lambda *a, **k: fold_parameters(load(*a, **k))
    steps.parameterize_notebook = lambda *a, **k: fold_parameters(parameterize(*a, **k))
    try:
        return papermill.execute_notebook(**arguments)
    finally:
        steps.load_notebook_node, steps.parameterize_notebook = load, parameterize
