"""`BatchView`: a batch's live progress (counts, spend against the budget, pace and ETA, thumbnails) with Stop.

It renders a running batch (a `BatchRun`) and holds no batch logic: the run's listener (called on the
run's event loop) marks the view dirty, and a throttle sends at most ~20 updates a second, the final
state always. Thumbnails of the first image outputs are made by the kernel on a worker thread
(`batch._result.thumbnail`: small `data:` URLs), so the front end never loads a model's output from its
server. Stop sends a custom message (`{"action": "stop"}`); `BatchRun.stop()` only schedules the stop,
so the comm handler never blocks. Traits are the whole contract with `js/batch.js`; styles are the
`_css` below. It knows the run only as a `RunView`: the runner loads this module to show itself, so
the arrow between the two points one way.

`show_batch_progress(run)` displays the view with a static fallback (`text/html`, `text/plain`) and,
once the batch has ended, replaces the display with the static copy of its final state, so a saved
notebook shows the outcome everywhere (a widget view whose kernel is gone shows an error instead).
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets as t

from .._render import escape, html_bundle, select
from ..batch._result import BatchItem, RunView, progress_line, thumbnail
from ._frontend import has_widget_frontend, merge_bundle
from ._static import es_module, static_file
from ._throttle import Throttle

UPDATE_INTERVAL = 0.05  # at most ~20 updates a second
MAX_THUMBNAILS = 24  # the first image outputs get a thumbnail; the result's gallery shows more
FINAL_WAIT = 60.0  # how long the final display waits for the last thumbnails



class BatchView(anywidget.AnyWidget):
    """The live progress of one `RunView` (see the module docstring). `BatchView(run)`."""

    _esm = es_module("batch.js")
    _css = static_file("batch.css")

    model = t.Unicode("").tag(sync=True)  # owner/slug
    name = t.Unicode("").tag(sync=True)  # the batch's name
    total = t.Int(0).tag(sync=True)
    ok = t.Int(0).tag(sync=True)
    failed = t.Int(0).tag(sync=True)
    skipped = t.Int(0).tag(sync=True)
    cancelled = t.Int(0).tag(sync=True)
    running = t.Int(0).tag(sync=True)
    waiting = t.Int(0).tag(sync=True)
    spent = t.Float(0.0).tag(sync=True)  # USD, from the tasks
    budget = t.Float(-1.0).tag(sync=True)  # max_cost; -1: none
    limit = t.Int(0).tag(sync=True)  # tasks in flight allowed now (lower than `concurrency` at the account's limit)
    concurrency = t.Int(0).tag(sync=True)
    started_at = t.Float(0.0).tag(sync=True)  # epoch seconds; the front end ticks `elapsed` from it
    elapsed = t.Float(0.0).tag(sync=True)
    throughput = t.Float(-1.0).tag(sync=True)  # items finished per minute; -1: unknown yet
    eta = t.Float(-1.0).tag(sync=True)  # seconds; -1: unknown
    state = t.Unicode("running").tag(sync=True)  # running | stopping | done | stopped
    busy = t.Unicode("").tag(sync=True)  # 'stop' while a stop request is being handled
    notice = t.Unicode("").tag(sync=True)
    thumbnails = t.List(t.Dict()).tag(sync=True)  # [{index, name, src: data URL}], in arrival order

    def __init__(self, run: RunView, *, interval: float = UPDATE_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.finished = threading.Event()  # set once the final state (and its thumbnails) has been sent
        self._lock = threading.Lock()
        self._thumbs: list[dict[str, Any]] = []
        self._asked = 0  # image outputs sent to the thumbnail threads
        self._making: set[concurrent.futures.Future[None]] = set()
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="wiro-batch-thumbs")
        self._throttle = Throttle(self._sync, interval)
        self.on_msg(self._on_custom)
        for item in list(run.items):  # items that ended before this view existed (a resumed batch)
            self._want_thumbnails(item)
        run.add_listener(self._on_change)
        self._on_change(None)  # the run may have ended before the listener was added

    # -- run events -> traits ------------------------------------------------------------------------
    def _on_change(self, item: BatchItem | None) -> None:
        if item is not None:
            self._want_thumbnails(item)
        self._update()

    def _update(self) -> None:
        if self.run.done and not self._making:
            self._throttle.flush(final=True)
        else:
            self._throttle()

    def _want_thumbnails(self, item: BatchItem) -> None:
        if item.status != "ok" or item.task is None:
            return
        for output in item.task.files:
            with self._lock:
                if output.kind != "image" or self._asked >= MAX_THUMBNAILS:
                    return
                self._asked += 1
                job = self._pool.submit(self._make_thumbnail, item.index, output)
                self._making.add(job)
            job.add_done_callback(self._made)

    def _make_thumbnail(self, index: int, output: Any) -> None:
        src = thumbnail(output)
        if src:
            with self._lock:
                self._thumbs.append({"index": index, "name": str(output.name), "src": src})

    def _made(self, job: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._making.discard(job)
        self._update()

    def _sync(self) -> None:
        p = self.run.progress()
        with self._lock:
            thumbs = list(self._thumbs)
        ended = p.state in ("done", "stopped")
        with self.hold_sync():
            self.model, self.name = self.run.model, self.run.name
            self.total, self.ok, self.failed, self.skipped = p.total, p.ok, p.failed, p.skipped
            self.cancelled, self.running, self.waiting = p.cancelled, p.running, p.waiting
            self.spent = p.spent
            self.budget = p.budget if p.budget is not None else -1.0
            self.limit, self.concurrency = p.limit, p.concurrency
            self.started_at = time.time() - p.elapsed
            self.elapsed = p.elapsed
            self.throughput = p.throughput * 60 if p.throughput is not None else -1.0
            self.eta = p.eta if p.eta is not None else -1.0
            if len(thumbs) != len(self.thumbnails):
                self.thumbnails = thumbs
            if ended:
                self.busy = ""
                if p.state == "stopped":
                    self.notice = "Stopped: items not sent were skipped; tasks in flight were stopped on the server."
            self.state = p.state  # last: the front end stops its clock on it
        if ended and self._throttle.closed:
            self.finished.set()
            self._pool.shutdown(wait=False)

    def wait(self, timeout: float = FINAL_WAIT) -> bool:
        """Block until the final state has been sent (True) or `timeout` passed (False)."""
        return self.finished.wait(timeout)

    # -- Stop ---------------------------------------------------------------------------------------------
    def _on_custom(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or content.get("action") != "stop" or self.busy or self.run.done:
            return
        self.busy = "stop"
        self.notice = "Stopping: no more items are sent, and the tasks in flight are being stopped."
        self.run.stop()  # returns at once; the run's own events bring the outcome

    # -- static fallbacks -------------------------------------------------------------------------------
    def text(self) -> str:
        return progress_text(self.run)

    def static_bundle(self) -> dict[str, Any]:
        return progress_bundle(self.run, self.thumbnails)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), self.static_bundle())


def progress_text(run: RunView) -> str:
    """'wiro/slow · batch wiro/slow#… · running · 3/10 done · 1 failed · 2 running · …'."""
    p = run.progress()
    return f"{run.model} · batch {run.name} · {p.state} · {p.finished}/{p.total} done · {progress_line(p)}"


_BAR_COLORS = {"ok": "#15803d", "failed": "#b91c1c", "cancelled": "#9ca3af", "skipped": "#9ca3af", "running": "#93c5fd"}


def progress_bundle(run: RunView, thumbnails: list[dict[str, Any]]) -> dict[str, Any]:
    """A batch's progress as static HTML and text: a bar, the counts, the thumbnails made so far."""
    p = run.progress()
    total = max(1, p.total)
    bar = "".join(
        f'<span style="display:inline-block;height:8px;width:{100 * getattr(p, k) / total:.2f}%;background-color:{c}"></span>'
        for k, c in _BAR_COLORS.items()
    )
    thumbs = "".join(
        f'<img src="{escape(th["src"])}" alt="{escape(th["name"])}" title="#{th["index"]} {escape(th["name"])}" '
        'style="max-height:72px;max-width:96px">'
        for th in thumbnails
    )
    text = progress_text(run)
    fragment = (
        f'<div class="wiro-batch-static" data-state="{escape(p.state)}" '
        'style="border-left:4px solid #6b7280;padding:4px 8px;font-family:sans-serif;font-size:13px">'
        f'<div style="display:flex;width:100%;background-color:#e5e7eb">{bar}</div>'
        f'<div>{escape(text)}</div><div style="display:flex;flex-wrap:wrap;gap:4px">{thumbs}</div></div>'
    )
    return html_bundle(fragment, text)


def provenance(run: RunView) -> dict[str, Any]:
    """`{"wiro": {...}}` for a display's metadata: what made it. Never a secret."""
    p = run.progress()
    return {"wiro": {"model": run.model, "batch": run.name, "items": p.total, "ok": p.ok, "spent": round(p.spent, 6)}}


def show_batch_progress(run: RunView) -> Callable[[], None]:
    """Display `BatchView(run)`; returns the function that, once the batch has ended, replaces the display
    with the view's final static copy (call it from the cell that made the display)."""
    from IPython.display import display

    view = BatchView(run)
    bundle = view._repr_mimebundle_()
    handle = display(bundle[0], raw=True, metadata={**bundle[1], **provenance(run)}, display_id=True)

    def finish() -> None:
        view.wait(FINAL_WAIT)
        handle.update(view.static_bundle(), raw=True, metadata=provenance(run))

    return finish


def batch_run_bundle(run: RunView, include: Any = None, exclude: Any = None) -> Any:
    """How a `RunView` shows: the live view where widgets render, else the static copy of its progress."""
    if has_widget_frontend():
        data, metadata = BatchView(run)._repr_mimebundle_()
        return select(data, include, exclude), metadata
    return select(progress_bundle(run, []), include, exclude)
