"""Widgets: forms generated from a model's parameters, a live status bar, inline media.

    from wiro_jupyter.widgets import TaskView, form
    f = form("wiro/text-to-image")     # fill in, press Run (also `wiro_jupyter.form`, `%wiro form`)
    TaskView(task)                     # status bar + outputs of any task; `await view.wait_async()`

Without a widget front end (terminal IPython, a script) `TaskView` prints text progress instead;
`has_widget_frontend()` says which (WIRO_JUPYTER_WIDGETS=0/1 forces it).

The widgets sit on top of the Python API (the protocol layer never imports them, but for the
`widget()` constructors of its objects) and hold no protocol logic. Their front ends are plain ES
modules in `js/` with one stylesheet each (anywidget's `_esm` and `_css`); traits are the whole contract.

- `_form`: `RunForm` / `form()`, over `_fields` (one input per parameter; `Upload`, a picked file);
- `_status`: `StatusBar`; `_media`: `OutputsView`; `_view`: `TaskView` (both, or text progress);
- `_chat`: `ChatView`; `_voice`: `VoiceView`; `_batch`: a batch's progress and results;
- `_frontend`: is there a widget front end, and bundles with static fallbacks; `_static`: where `js/`
  is; `_throttle`: at most one update per interval, the last one always.
"""

from __future__ import annotations

from ._batch import BatchView
from ._chat import ChatView
from ._fields import Upload
from ._form import RunForm, form
from ._frontend import has_widget_frontend
from ._media import OutputsView
from ._status import StatusBar
from ._view import TaskView
from ._voice import VoiceView

__all__ = [
    "BatchView",
    "ChatView",
    "OutputsView",
    "RunForm",
    "StatusBar",
    "TaskView",
    "Upload",
    "VoiceView",
    "form",
    "has_widget_frontend",
]
