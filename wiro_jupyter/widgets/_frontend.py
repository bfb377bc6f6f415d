"""Is there a front end that renders widgets? And mimebundles that carry a static fallback.

A kernel cannot know what renders its output: JupyterLab, Notebook 7 and VS Code
render the widget view; nbconvert, GitHub and a saved notebook opened without
its kernel fall back to `text/html` / `text/plain`. So every widget here sends
both. Only when there is no ZMQ kernel at all (terminal IPython, a plain
script) is there certainly no widget front end; then `TaskView` prints text.

`WIRO_JUPYTER_WIDGETS=0` forces the text fallback, `=1` forces widgets.
"""

from __future__ import annotations

import os
from typing import Any

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def has_widget_frontend() -> bool:
    """True inside an ipykernel (ZMQ) kernel, False in terminal IPython and plain Python."""
    forced = os.environ.get("WIRO_JUPYTER_WIDGETS", "").strip().lower()
    if forced in ("0", "false", "no", "off", "text"):
        return False
    if forced in ("1", "true", "yes", "on"):
        return True
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    shell = get_ipython()
    if shell is None:
        return False
    # ipykernel's ZMQInteractiveShell has a kernel; TerminalInteractiveShell does not.
    return getattr(shell, "kernel", None) is not None


def merge_bundle(
    widget_repr: dict[str, Any] | tuple[dict[str, Any], dict[str, Any]] | None, static: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The widget's own mimebundle (view + its repr) with `static` fallbacks added.

    `widget_repr` is what ipywidgets/anywidget `_repr_mimebundle_` returned: a dict,
    a (data, metadata) tuple, or None. The static `text/plain` replaces the
    widget's `<object at 0x…>` repr.
    """
    if isinstance(widget_repr, tuple):
        data, metadata = dict(widget_repr[0] or {}), dict(widget_repr[1] or {})
    else:
        data, metadata = dict(widget_repr or {}), {}
    merged = {**data, **static}
    if WIDGET_VIEW in data:
        merged[WIDGET_VIEW] = data[WIDGET_VIEW]
    return merged, metadata
