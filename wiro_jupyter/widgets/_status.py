"""`StatusBar`: a task's stages as a stepped bar, its status, elapsed time, cost, and Cancel/Kill.

The widget only renders the task's event stream (it holds no protocol logic):
a listener on the task (called on the package's loop thread) marks the view
dirty, and a throttle sends at most ~20 updates a second, the final state
always. Traits are the whole contract with `js/status.js`; the buttons send
custom messages (`{"action": "cancel"}` / `{"action": "kill"}`) that are
handled on a worker thread, so the kernel's comm handler never blocks.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from .._events import STAGES, TaskEvent
from .._fields import to_number
from .._render import escape, html_bundle
from ._frontend import merge_bundle
from ._static import es_module, static_file
from ._throttle import Throttle

if TYPE_CHECKING:
    from .._task import AsyncTask, Task

log = logging.getLogger("wiro_jupyter")

STAGE_LABELS = {
    "task_queue": "Queued",
    "task_accept": "Accepted",
    "task_assign": "Assigned",
    "task_preprocess_start": "Preprocessing",
    "task_preprocess_end": "Preprocessed",
    "task_start": "Started",
    "task_output": "Output",
    "task_end": "Ended",
    "task_postprocess_start": "Postprocessing",
    "task_postprocess_end": "Finished",
}
STATE_COLORS = {"queued": "#6b7280", "running": "#2563eb", "done": "#15803d", "failed": "#b91c1c", "cancelled": "#b91c1c"}
# Event kinds after which the follower has nothing more to say about the task.
FINAL_KINDS = ("done", "error")
UPDATE_INTERVAL = 0.05  # at most ~20 updates a second


def task_finished(task: Task | AsyncTask) -> bool:
    """Has the task's follower finished (outcome known), as opposed to merely seen a terminal frame?"""
    if not task.done:
        return False
    events = task.event_log
    # A task read from Task/Detail (no events) is final; a followed one ends with `done` / `error`.
    return not events or any(e.kind in FINAL_KINDS for e in events[-3:])


def task_state(task: Task | AsyncTask, finished: bool) -> str:
    """'queued' | 'running' | 'done' | 'failed' | 'cancelled'."""
    if finished:
        if task.status == "task_cancel":
            return "cancelled"
        return "done" if task.ok else "failed"
    if task.status == "task_cancel":
        return "cancelled"
    return "queued" if task.status in ("task_queue", "") else "running"


def started_at(task: Task | AsyncTask) -> float:
    """When the task was submitted (epoch seconds), as this process saw it."""
    return float(task.created or time.time())


def finished_at(task: Task | AsyncTask) -> float | None:
    return float(task.finished) if task.finished else None


def progress_text(progress: dict[str, Any] | None) -> str:
    """'Generate 40% · 1.2 it/s · 3s left' from the server's progress object (all strings)."""
    if not progress:
        return ""
    parts = [str(progress.get("task") or "Progress")]
    pct = to_number(progress.get("percentage"))
    if pct is not None:
        parts[0] += f" {pct:g}%"
    if progress.get("stepCurrent") and progress.get("stepTotal"):
        parts.append(f"step {progress['stepCurrent']}/{progress['stepTotal']}")
    if progress.get("speed"):
        parts.append(f"{progress['speed']} {progress.get('speedType') or ''}".strip())
    if progress.get("remainingTime"):
        parts.append(f"{progress['remainingTime']} left")
    return " · ".join(parts)


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes} min {secs:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class StatusBar(anywidget.AnyWidget):
    """The live status of one task (see the module docstring). `StatusBar(task)`."""

    _esm = es_module("status.js")
    _css = static_file("status.css")

    model = t.Unicode("").tag(sync=True)  # owner/slug
    task_id = t.Unicode("").tag(sync=True)
    stages = t.List(t.Dict(), default_value=[{"id": s, "label": STAGE_LABELS[s]} for s in STAGES]).tag(sync=True)
    stage = t.Int(-1).tag(sync=True)  # index into `stages` of the furthest stage reached
    status = t.Unicode("").tag(sync=True)  # the server's status name
    state = t.Unicode("queued").tag(sync=True)  # queued | running | done | failed | cancelled
    started_at = t.Float(0.0).tag(sync=True)  # epoch seconds; the front end ticks `elapsed` from it
    elapsed = t.Float(0.0).tag(sync=True)  # seconds, as of the last update (final once ended)
    percentage = t.Float(-1.0).tag(sync=True)  # -1: the server sent none
    progress = t.Unicode("").tag(sync=True)  # 'Generate 40% · 1.2 it/s · 3s left'
    message = t.Unicode("").tag(sync=True)  # the last output line
    queue_position = t.Int(-1).tag(sync=True)  # -1: unknown
    cost = t.Float(-1.0).tag(sync=True)  # USD; -1: unknown
    error = t.Unicode("").tag(sync=True)
    busy = t.Unicode("").tag(sync=True)  # 'cancel' | 'kill' while a stop request is in flight
    notice = t.Unicode("").tag(sync=True)  # e.g. why a stop request failed

    def __init__(self, task: Task | AsyncTask, *, interval: float = UPDATE_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.finished = threading.Event()  # set once the final state has been sent
        self._done_callbacks: list[Callable[[], None]] = []
        self.stop_result: str | None = None  # what the last Cancel/Kill did: 'cancel' | 'kill' | 'none'
        self.stop_thread: threading.Thread | None = None  # handles the last Cancel/Kill (join it to wait)
        self._message = ""
        self._queue_position = -1
        self._stage = 0  # a task that exists is at least queued (the server sends no task_queue frame)
        self._ended = False
        self._lock = threading.Lock()
        self._throttle = Throttle(self._sync, interval)
        self._loop: asyncio.AbstractEventLoop | None = None
        if inspect.iscoroutinefunction(task.stop):
            try:  # an AsyncTask: its stop() must run on the loop it lives on
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
        self.on_msg(self._on_custom)
        if task_finished(task):
            self._ended = True
            self._absorb_events(task.event_log)
            self._throttle.flush(final=True)
        else:
            self._sync()
            task.add_listener(self._on_event, replay=True)

    # -- events -> traits ----------------------------------------------------------------
    def _absorb_events(self, events: list[TaskEvent]) -> None:
        for event in events:
            self._absorb(event)

    def _absorb(self, event: TaskEvent) -> None:
        if event.kind in STAGES:
            self._stage = max(self._stage, STAGES.index(event.kind))
        if event.kind == "task_output" and isinstance(event.message, str) and event.message.strip():
            self._message = event.message.strip().splitlines()[-1][:300]
        raw = event.raw if isinstance(event.raw, dict) else {}
        for key in ("queueposition", "queue_position", "position"):
            number = to_number(raw.get(key))
            if number is not None:
                self._queue_position = int(number)
        if event.kind in FINAL_KINDS:
            self._ended = True

    def _on_event(self, event: TaskEvent) -> None:
        with self._lock:
            self._absorb(event)
            ended = self._ended
        if ended:
            self._throttle.flush(final=True)
        else:
            self._throttle()

    def _sync(self) -> None:
        task = self.task
        with self._lock:
            ended = self._ended
            stage = self._stage
            message = self._message
            queue_position = self._queue_position
        status = task.status
        if status in STAGES:
            stage = max(stage, STAGES.index(status))
        state = task_state(task, ended)
        begin = started_at(task)
        end = finished_at(task) if ended else None
        percentage = to_number((task.progress or {}).get("percentage"))
        if state == "done":
            stage, percentage = len(STAGES) - 1, 100
        with self.hold_sync():
            self.model = task.model or ""
            self.task_id = str(task.id or "")
            self.status = status
            self.stage = stage
            self.started_at = begin
            self.elapsed = max(0.0, (end or time.time()) - begin)
            self.percentage = float(percentage) if percentage is not None else -1.0
            self.progress = progress_text(task.progress)
            self.message = message
            self.queue_position = queue_position if state == "queued" else -1
            self.cost = float(task.cost) if task.cost is not None else -1.0
            self.error = (task.error or "") if state in ("failed", "cancelled") else ""
            self.state = state  # last: the front end may stop its clock on it
        if ended and not self.finished.is_set():
            self.finished.set()
            for callback in self._done_callbacks:
                callback()

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once the final state has been sent (at once if it has)."""
        self._done_callbacks.append(callback)
        if self.finished.is_set():
            callback()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the final state has been sent (True) or `timeout` passed (False)."""
        return self.finished.wait(timeout)

    # -- Cancel / Kill ---------------------------------------------------------------------
    def _on_custom(self, _widget: object, content: Any, _buffers: object) -> None:  # content: the front end's JSON
        action = content.get("action") if isinstance(content, dict) else None
        if action not in ("cancel", "kill", "stop") or self.busy:
            return
        self.busy = "kill" if action == "kill" else "cancel"
        self.notice = ""
        self.stop_thread = threading.Thread(target=self._stop, args=(action,), name="wiro-status-stop", daemon=True)
        self.stop_thread.start()

    def _stop(self, action: str) -> None:
        from .._exceptions import WiroError

        task = self.task
        try:
            if action == "kill":
                try:
                    self._call(task.kill)
                    self.stop_result = "kill"
                except WiroError:  # still queued: the server only kills running tasks
                    self.stop_result = self._call(task.stop)
            else:
                self.stop_result = self._call(task.stop)  # cancel when queued, kill when running
            if self.stop_result == "none":
                self.notice = "The task had already ended."
        except WiroError as exc:
            self.notice = f"Could not stop the task: {exc}"
        except Exception as exc:  # a button must never take the kernel down
            log.exception("stopping task %s failed", task.id)
            self.notice = f"Could not stop the task: {exc!r}"
        finally:
            self.busy = ""

    def _call(self, fn: Callable[[], Any]) -> Any:
        if inspect.iscoroutinefunction(fn):
            if self._loop is None:
                raise RuntimeError("an AsyncTask's status bar must be created inside its event loop")
            return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(60)
        return fn()

    # -- static fallbacks --------------------------------------------------------------------
    def text(self) -> str:
        """One line: 'wiro/slow · task 12 · running · Started (6/10) · Generate 40% · 3.2 s'."""
        bits = [self.model or "task", f"task {self.task_id}" if self.task_id else "", self.state]
        if 0 <= self.stage < len(self.stages):
            bits.append(f"{self.stages[self.stage]['label']} ({self.stage + 1}/{len(self.stages)})")
        if self.progress and self.state == "running":
            bits.append(self.progress)
        if self.queue_position >= 0:
            bits.append(f"queue position {self.queue_position}")
        bits.append(format_seconds(self.elapsed))
        if self.cost >= 0:
            bits.append(f"${self.cost:.4f}")
        line = " · ".join(b for b in bits if b)
        return f"{line}\n{self.error}" if self.error else line

    def static_html(self) -> str:
        color = STATE_COLORS.get(self.state, "#6b7280")
        steps = "".join(
            f'<span title="{escape(s["label"])}" style="display:inline-block;width:{100 / len(self.stages):.2f}%;'
            f'height:6px;background-color:{color if i <= self.stage else "#e5e7eb"};border-right:2px solid #fff"></span>'
            for i, s in enumerate(self.stages)
        )
        first, _, rest = self.text().partition("\n")
        error = f'<pre style="color:#b91c1c;white-space:pre-wrap;margin:4px 0 0">{escape(rest)}</pre>' if rest else ""
        return (
            f'<div class="wiro-status-static" data-state="{escape(self.state)}" '
            f'style="border-left:4px solid {color};padding:4px 8px;margin:2px 0;font-family:sans-serif;font-size:13px">'
            f'<div style="display:flex;width:100%;margin-bottom:4px">{steps}</div>'
            f'<span style="color:{color};font-weight:600">{escape(first)}</span>{error}</div>'
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), html_bundle(self.static_html(), self.text()))
