"""Widgets: forms generated from a model's parameters, a live status bar, inline media.

    from wiro_jupyter.widgets import TaskView, form
    f = form("wiro/text-to-image")     # fill in, press Run (also `wiro_jupyter.form`, `%wiro form`)
    TaskView(task)                     # status bar + outputs of any task; `await view.wait_async()`

Without a widget front end (terminal IPython, a script) `TaskView` prints text progress instead;
`has_widget_frontend()` says which (WIRO_JUPYTER_WIDGETS=0/1 forces it).

The widgets sit on top of the Python API (the protocol layer never imports them).
Their front ends are plain ES modules in `js/` (anywidget); traits are the whole contract.
"""

from __future__ import annotations

from ._chat import ChatView as ChatView  # re-exported (the chat widget)
from ._form import RunForm, Upload, form
from ._frontend import has_widget_frontend
from ._media import OutputsView
from ._status import StatusBar
from ._view import TaskView

__all__ = ["OutputsView", "RunForm", "StatusBar", "TaskView", "Upload", "form", "has_widget_frontend"]
