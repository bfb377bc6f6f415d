"""Widgets: forms generated from a model's parameters, a live status bar, inline media.

    import wiro_jupyter as wj
    f = wj.widgets.form("wiro/text-to-image")     # fill in, press Run
    wj.widgets.TaskView(task)                     # status bar + outputs of any task

The widgets sit on top of the Python API (the protocol layer never imports them).
Their front ends are plain ES modules in `js/` (anywidget); traits are the whole contract.
"""

from __future__ import annotations

from ._form import RunForm, Upload, form
from ._frontend import has_widget_frontend
from ._media import OutputsView
from ._status import StatusBar
from ._view import TaskView

__all__ = ["OutputsView", "RunForm", "StatusBar", "TaskView", "Upload", "form", "has_widget_frontend"]
