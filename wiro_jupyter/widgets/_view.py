"""`TaskView`: a task's status bar with its outputs under it; text progress where widgets can't render.

Displayed in a kernel, it sends the widget view plus static `text/plain` / `text/html` (and `image/png`)
fallbacks, and when the task ends it updates that display (by display id) so the saved notebook's
static fallback shows the result, not the state it had when the cell ran. In terminal IPython or a
plain script (no widget front end, see `has_widget_frontend`) it prints one line per stage change and
the outcome.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO

import ipywidgets

from .._events import STAGES, TaskEvent
from .._render import first_image, html_bundle
from ._frontend import has_widget_frontend, merge_bundle
from ._media import OutputsView
from ._status import FINAL_KINDS, STAGE_LABELS, StatusBar, format_seconds, started_at, task_finished, task_state

if TYPE_CHECKING:
    from .._task import AsyncTask, Task


class TaskView(ipywidgets.VBox):
    """`TaskView(task)`: `StatusBar` + `OutputsView` of one task (a `Task` or an `AsyncTask`)."""

    def __init__(self, task: Task | AsyncTask, *, interval: float | None = None, **kwargs: Any) -> None:
        options = {} if interval is None else {"interval": interval}
        self.task = task
        self.status_bar = StatusBar(task, **options)
        self.outputs_view = OutputsView(task, **options)
        super().__init__(children=[self.status_bar, self.outputs_view], **kwargs)
        self.add_class("wiro-task-view")
        self._handle: Any = None
        self._parent: dict[str, Any] | None = None
        self._printed_stage = ""
        self._final_sent = False
        self._final_lock = threading.Lock()
        self._final_shown = threading.Event()  # the display's static copy shows the final state

    # -- waiting -------------------------------------------------------------------------------
    def wait(self, timeout: float = 60.0) -> bool:
        """Block until the final status and the outputs are shown (False on timeout).

        This blocks the cell: the view still updates live, but its buttons are only handled once the
        cell ends. `await view.wait_async()` keeps them working (see `wait_async`).
        """
        deadline = time.monotonic() + timeout
        ok = self.status_bar.wait(timeout) and self.outputs_view.wait(max(0.0, deadline - time.monotonic()))
        if ok and self._handle is not None:
            ok = self._final_shown.wait(max(0.0, deadline - time.monotonic()))
        return ok

    async def wait_async(self, timeout: float = 3600.0) -> bool:
        """`await view.wait_async()`: wait without blocking the kernel's event loop.

        ipykernel (6.x/7.x) keeps handling widget messages while an async cell awaits, so Cancel and
        Kill work during the wait; the next cell still runs only after this one ends.
        """
        import asyncio

        return await asyncio.get_running_loop().run_in_executor(None, self.wait, timeout)

    @property
    def ended(self) -> bool:
        return self.status_bar.finished.is_set() and self.outputs_view.ready.is_set()

    # -- static fallbacks --------------------------------------------------------------------
    def text(self) -> str:
        outputs = self.outputs_view.text() if self.status_bar.finished.is_set() else ""
        return "\n".join(x for x in (self.status_bar.text(), outputs) if x and not x.startswith("(no outputs"))

    def static_bundle(self) -> dict[str, Any]:
        fragment = f'<div class="wiro-task-view-static">{self.status_bar.static_html()}{self.outputs_view.static_html()}</div>'
        bundle = html_bundle(fragment, self.text())
        image = first_image(self.outputs_view.items)
        if image is not None:
            bundle[image[0]] = image[1]
        return bundle

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), self.static_bundle())

    def __repr__(self) -> str:
        return f"<TaskView {self.text().splitlines()[0] if self.text() else ''}>"

    # -- display ---------------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        if not has_widget_frontend():
            self.show_text()
            return
        data, metadata = self._repr_mimebundle_()
        self._parent = _current_parent()
        self._handle = display(data, metadata=metadata, raw=True, display_id=True)
        if self.ended:
            self._final_shown.set()
        else:
            self.status_bar.on_done(self._maybe_final)
            self.outputs_view.on_done(self._maybe_final)

    def _maybe_final(self) -> None:
        """Once the task has ended and its outputs are in: refresh the display's static fallback."""
        if not self.ended or self._handle is None:
            return
        with self._final_lock:
            if self._final_sent:
                return
            self._final_sent = True
        # A thread of our own, so the parent header set for it stays there (not in the package's loop).
        threading.Thread(target=self._send_final, name="wiro-view-final", daemon=True).start()

    def _send_final(self) -> None:
        from IPython import get_ipython

        shell = get_ipython()
        publisher = getattr(shell, "display_pub", None)
        token = None
        if self._parent and hasattr(publisher, "set_thread_parent"):
            token = publisher.set_thread_parent(self._parent)  # type: ignore[union-attr]
        try:
            data, metadata = self._repr_mimebundle_()
            self._handle.update(data, metadata=metadata, raw=True)
        except Exception:  # the live widget already shows the result; this is only the saved copy
            pass
        finally:
            if token is not None:
                with contextlib.suppress(Exception):
                    publisher.reset_thread_parent(token)  # type: ignore[union-attr]
            self._final_shown.set()

    # -- text progress (no widget front end) -----------------------------------------------------
    def show_text(self, stream: TextIO | None = None) -> None:
        """Print the status now and, while the task runs, a line per stage change and the outcome."""
        out = stream or sys.stdout
        task = self.task
        if task_finished(task):
            print(self._final_text(), file=out, flush=True)
            return
        print(self._stage_line(task.status), file=out, flush=True)
        self._printed_stage = task.status

        def on_event(event: TaskEvent) -> None:
            if event.kind in FINAL_KINDS:
                print(self._final_text(), file=out, flush=True)
            elif event.kind in STAGES and event.kind != self._printed_stage:
                self._printed_stage = event.kind
                print(self._stage_line(event.kind), file=out, flush=True)

        task.add_listener(on_event, replay=False)

    def _stage_line(self, status: str) -> str:
        task = self.task
        label = STAGE_LABELS.get(status, status)
        index = f" ({STAGES.index(status) + 1}/{len(STAGES)})" if status in STAGES else ""
        return f"{task.model} · task {task.id} · {label}{index}"

    def _final_text(self) -> str:
        task = self.task
        state = task_state(task, True)
        end = task.finished or time.time()
        line = f"{task.model} · task {task.id} · {state} in {format_seconds(max(0.0, end - started_at(task)))}"
        if task.cost:
            line += f" · ${task.cost:.4f}"
        lines = [line]
        if task.error and state != "done":
            lines.append(task.error)
        if task.text:
            lines.append(task.text)
        lines.extend(f"{o.name} ({o.content_type or o.kind}) {o.url}".rstrip() for o in task.files)
        return "\n".join(lines)


def _current_parent() -> dict[str, Any] | None:
    """The header of the message (cell) being executed, to attribute a later display update to it."""
    try:
        from IPython import get_ipython

        publisher = getattr(get_ipython(), "display_pub", None)
        parent = getattr(publisher, "parent_header", None)
        return dict(parent) if parent else None
    except Exception:
        return None
