"""`OutputsView`: a task's outputs inline: an image grid (click to enlarge), audio and video players,
animations, sanitized Markdown for text and LLM answers (with a collapsible thinking block), JSON as
a collapsible tree, other files as download links.

Files are fetched once by the kernel and embedded as `data:` URLs (up to `_render.EMBED_LIMIT` each), so
the view works when the browser cannot reach the file server (a remote kernel, an expired URL), the saved
widget state is self-contained and showing it asks no other server for anything; bigger files are linked.
Everything shown is made by `wiro_jupyter._render` (items, sanitized HTML, safe URLs): `js/media.js` only
inserts that HTML, sets text, and loads media from `data:` URLs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets as t

from .._events import TaskEvent
from .._render import first_image, html_bundle, items_html, load_items, render_markdown
from ._frontend import merge_bundle
from ._static import es_module, static_file
from ._status import FINAL_KINDS, UPDATE_INTERVAL, task_finished
from ._throttle import Throttle

if TYPE_CHECKING:
    from .._task import AsyncTask, Task

log = logging.getLogger("wiro_jupyter")

__all__ = ["OutputsView"]


class OutputsView(anywidget.AnyWidget):
    """A task's outputs (see the module docstring). `OutputsView(task)`; text streams in live."""

    _esm = es_module("media.js")
    _css = static_file("media.css")

    items = t.List(t.Dict()).tag(sync=True)
    answer_html = t.Unicode("").tag(sync=True)  # sanitized
    thinking_html = t.Unicode("").tag(sync=True)  # sanitized
    streaming = t.Bool(False).tag(sync=True)  # text is still arriving
    state = t.Unicode("pending").tag(sync=True)  # pending | loading | ready

    def __init__(self, task: Task | AsyncTask, *, interval: float = UPDATE_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.ready = threading.Event()  # set once the outputs are in `items` (or there are none)
        self._done_callbacks: list[Callable[[], None]] = []
        self._throttle = Throttle(self._sync_text, interval)
        self._loading = False
        self._lock = threading.Lock()
        if task_finished(task):
            self._sync_text()
            self._throttle.flush(final=True)
            self._load(background=_on_package_loop())
        else:
            task.add_listener(self._on_event, replay=True)

    def _on_event(self, event: TaskEvent) -> None:
        if event.kind in FINAL_KINDS:
            self._throttle.flush(final=True)
            self._load(background=True)
        elif event.answer_delta or event.thinking_delta or event.kind == "task_output_full":
            self._throttle()

    def _sync_text(self) -> None:
        task = self.task
        ended = self._throttle.closed
        with self.hold_sync():
            self.thinking_html = render_markdown(task.thinking) if task.thinking else ""
            self.answer_html = render_markdown(task.text) if task.text else ""
            self.streaming = not ended and bool(task.text or task.thinking)

    def _load(self, *, background: bool) -> None:
        with self._lock:
            if self._loading:
                return
            self._loading = True
        if background:
            threading.Thread(target=self._load_now, name="wiro-media-load", daemon=True).start()
        else:
            self._load_now()

    def _load_now(self) -> None:
        try:
            files = self.task.files
            if files:
                self.state = "loading"
                self.items = load_items(files)
        except Exception:
            log.exception("loading the outputs of task %s failed", self.task.id)
        finally:
            self.state = "ready"
            self.ready.set()
            for callback in self._done_callbacks:
                callback()

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call `callback()` once the outputs are loaded (at once if they are)."""
        self._done_callbacks.append(callback)
        if self.ready.is_set():
            callback()

    def wait(self, timeout: float = 30.0) -> bool:
        """Block until the outputs are loaded (True) or `timeout` passed (False)."""
        return self.ready.wait(timeout)

    # -- static fallbacks --------------------------------------------------------------------
    def text(self) -> str:
        lines = []
        if self.task.text:
            lines.append(self.task.text)
        for item in self.items:
            size = f", {item['size']:,} bytes" if item["size"] >= 0 else ""
            lines.append(f"{item['name']} ({item['content_type'] or item['kind']}{size}) {item['url']}".rstrip())
        return "\n".join(lines) or ("(no outputs yet)" if self.state != "ready" else "(no outputs)")

    def static_html(self) -> str:
        """What the view shows, as HTML for `html_bundle` (nbconvert, GitHub, a notebook opened without its kernel)."""
        return items_html(self.items, self.answer_html, self.thinking_html)

    def static_bundle(self) -> dict[str, Any]:
        bundle = html_bundle(self.static_html(), self.text())
        image = first_image(self.items)
        if image is not None:
            bundle[image[0]] = image[1]
        return bundle

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), self.static_bundle())


def _on_package_loop() -> bool:
    from .._loop import in_background_loop

    return in_background_loop()
