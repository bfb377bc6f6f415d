"""`OutputsView`: a task's outputs inline: an image grid (click to enlarge), audio and video players,
animations, sanitized Markdown for text and LLM answers (with a collapsible thinking block), JSON as
a collapsible tree, other files as download links.

Files are fetched once by the kernel and embedded as `data:` URLs (up to `EMBED_LIMIT` each), so the
view works when the browser cannot reach the file server (a remote kernel, an expired URL) and the
saved widget state is self-contained; bigger files are linked. Text is rendered to HTML here with
markdown-it and cleaned by nh3 (`wiro_jupyter._render.render_markdown`): the front end only ever
inserts sanitized HTML, so no script or event handler in a model's answer can run.
"""

from __future__ import annotations

import base64
import concurrent.futures
import html
import json
import logging
import threading
from typing import Any

import anywidget
import traitlets as t

from .._models import TaskEvent
from .._render import render_markdown
from ._frontend import merge_bundle
from ._static import static_file
from ._status import FINAL_KINDS, UPDATE_INTERVAL, task_finished
from ._throttle import Throttle

log = logging.getLogger("wiro_jupyter")

EMBED_LIMIT = 8 * 1024**2  # per file; bigger files are linked, not embedded
EMBED_TOTAL = 32 * 1024**2  # per view
TEXT_LIMIT = 200_000  # characters of a text output rendered inline
JSON_LIMIT = 2 * 1024**2  # bytes of JSON shown as a tree (bigger: as text)
SAFE_DATA_TYPES = ("image/", "audio/", "video/", "text/plain", "application/json", "application/octet-stream")


def safe_url(url: str) -> str:
    """Only http(s) URLs: a `javascript:` URL from a server must never become a link."""
    url = (url or "").strip()
    return url if url.lower().startswith(("http://", "https://")) else ""


def data_url(content_type: str, data: bytes) -> str:
    ctype = (content_type or "application/octet-stream").split(";")[0].strip().lower()
    if not ctype.startswith(SAFE_DATA_TYPES) or ctype == "image/svg+xml":
        ctype = "application/octet-stream"  # never text/html or SVG (script) as a data: URL
    return f"data:{ctype};base64,{base64.b64encode(data).decode()}"


def describe(output: Any) -> dict[str, Any]:
    """The JSON-able item for one output, without its content."""
    kind = output.kind
    ctype = (output.content_type or "").lower()
    if kind == "video" and (ctype.startswith("image/") or output.name.lower().endswith(".gif")):
        kind = "animated"  # GIF / animated WebP: an <img>, not a <video>
    return {
        "kind": kind,
        "name": str(output.name or "output"),
        "url": safe_url(output.url),
        "src": "",
        "content_type": output.content_type or "",
        "size": int(output.size) if output.size is not None else -1,
        "html": "",
        "json": None,
        "error": "",
    }


def fill(item: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Put the content of an output into its item (data URL, rendered Markdown, parsed JSON)."""
    kind = item["kind"]
    if kind in ("image", "audio", "video", "animated"):
        default = {"image": "image/png", "audio": "audio/wav", "video": "video/mp4", "animated": "image/gif"}[kind]
        ctype = item["content_type"] if "/" in item["content_type"] else default
        item["src"] = data_url(ctype, data)
    elif kind == "json":
        try:
            if len(data) > JSON_LIMIT:
                raise ValueError("too big for a tree")
            item["json"] = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            item["kind"] = "text"
            item["html"] = f"<pre>{html.escape(data[:TEXT_LIMIT].decode('utf-8', 'replace'))}</pre>"
    elif kind == "text":
        text = data.decode("utf-8", "replace")
        if item["name"].lower().endswith((".csv", ".tsv", ".log")):
            item["html"] = f"<pre>{html.escape(text[:TEXT_LIMIT])}</pre>"
        else:
            item["html"] = render_markdown(text[:TEXT_LIMIT])
    elif kind == "file":
        item["src"] = data_url(item["content_type"], data)
    return item


def load_items(outputs: list[Any], *, embed_limit: int = EMBED_LIMIT, total_limit: int = EMBED_TOTAL) -> list[dict[str, Any]]:
    """Items for `outputs` (raw LLM outputs skipped), with their content fetched in parallel."""
    from .._exceptions import WiroError

    files = [o for o in outputs if o.kind != "raw"]
    items = [describe(o) for o in files]

    def fetch(output: Any) -> bytes | None:
        if output.kind == "file" and (output.size is None or output.size > 1024**2):
            return None  # unknown binaries: a link, not an embed
        if output.size is not None and output.size > embed_limit:
            return None
        return bytes(output.read(max_bytes=embed_limit))

    budget = total_limit
    with concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="wiro-media") as pool:
        futures = [pool.submit(fetch, o) for o in files]
        for item, future in zip(items, futures, strict=True):
            try:
                data = future.result()
            except WiroError as exc:  # too big, expired, offline: keep the link
                item["error"] = exc.message if hasattr(exc, "message") else str(exc)
                continue
            except Exception as exc:
                log.exception("loading output %s failed", item["name"])
                item["error"] = repr(exc)
                continue
            if data is None or len(data) > budget:
                continue
            budget -= len(data)
            fill(item, data)
    return items


def _json_html(value: Any, depth: int = 0) -> str:
    """A collapsible JSON tree in static HTML (nested <details>), every value escaped."""
    if isinstance(value, dict | list) and value and depth < 12:
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        label = f"{{…}} {len(value)} keys" if isinstance(value, dict) else f"[…] {len(value)} items"
        rows = "".join(
            f'<li><span style="color:#7c3aed">{html.escape(str(k))}</span>: {_json_html(v, depth + 1)}</li>' for k, v in pairs
        )
        return (
            f"<details{' open' if depth < 2 else ''}><summary>{label}</summary>"
            f'<ul style="list-style:none;margin:0;padding-left:1.2em">{rows}</ul></details>'
        )
    return f"<code>{html.escape(json.dumps(value, ensure_ascii=False))}</code>"


def static_html(items: list[dict[str, Any]], answer_html: str = "", thinking_html: str = "") -> str:
    """What the view shows, as plain HTML (for nbconvert, GitHub, a notebook opened without its kernel)."""
    parts: list[str] = []
    if thinking_html:
        parts.append(f'<details><summary>thinking</summary><div style="color:#6b7280">{thinking_html}</div></details>')
    if answer_html:
        parts.append(f'<div class="wiro-answer">{answer_html}</div>')
    images = [i for i in items if i["kind"] == "image" and (i["src"] or i["url"])]
    if images:
        cells = "".join(
            f'<a href="{html.escape(i["src"] or i["url"])}" target="_blank" download="{html.escape(i["name"])}">'
            f'<img src="{html.escape(i["src"] or i["url"])}" alt="{html.escape(i["name"])}" '
            f'style="max-width:{"min(100%,640px)" if len(images) == 1 else "256px"};max-height:512px"/></a>'
            for i in images
        )
        parts.append(f'<div class="wiro-grid" style="display:flex;flex-wrap:wrap;gap:6px">{cells}</div>')
    for item in items:
        src, name = html.escape(item["src"] or item["url"]), html.escape(item["name"])
        kind = item["kind"]
        if kind == "image":
            continue
        if kind == "audio" and src:
            parts.append(f'<div><audio controls src="{src}"></audio> <small>{name}</small></div>')
        elif kind == "video" and src:
            parts.append(f'<video controls src="{src}" style="max-width:100%"></video>')
        elif kind == "animated" and src:
            parts.append(f'<img src="{src}" alt="{name}" style="max-width:100%"/>')
        elif kind == "json" and item["json"] is not None:
            parts.append(f"<div><b>{name}</b>{_json_html(item['json'])}</div>")
        elif kind == "text" and item["html"]:
            parts.append(f'<div class="wiro-text"><b>{name}</b>{item["html"]}</div>')
        elif src:
            parts.append(f'<div><a href="{src}" download="{name}" target="_blank">⬇ {name}</a></div>')
        else:
            parts.append(f"<div>{name} (no longer available)</div>")
        if item["error"]:
            parts.append(f'<div style="color:#b91c1c">{html.escape(item["error"])}</div>')
    return '<div class="wiro-media-static">' + "\n".join(parts) + "</div>"


def first_image(items: list[dict[str, Any]]) -> tuple[str, str] | None:
    """(mimetype, base64) of the first embedded PNG/JPEG image, for the bundle's image/* entry."""
    for item in items:
        src = item.get("src") or ""
        for mime in ("image/png", "image/jpeg"):
            if item["kind"] == "image" and src.startswith(f"data:{mime};base64,"):
                return mime, src.split(",", 1)[1]
    return None


class OutputsView(anywidget.AnyWidget):
    """A task's outputs (see the module docstring). `OutputsView(task)`; text streams in live."""

    _esm = static_file("media.js")

    items = t.List(t.Dict()).tag(sync=True)
    answer_html = t.Unicode("").tag(sync=True)  # sanitized
    thinking_html = t.Unicode("").tag(sync=True)  # sanitized
    streaming = t.Bool(False).tag(sync=True)  # text is still arriving
    state = t.Unicode("pending").tag(sync=True)  # pending | loading | ready

    def __init__(self, task: Any, *, interval: float = UPDATE_INTERVAL, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.ready = threading.Event()  # set once the outputs are in `items` (or there are none)
        self._done_callbacks: list[Any] = []
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
            log.exception("loading the outputs of task %s failed", getattr(self.task, "id", "?"))
        finally:
            self.state = "ready"
            self.ready.set()
            for callback in self._done_callbacks:
                callback()

    def on_done(self, callback: Any) -> None:
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

    def static_bundle(self) -> dict[str, Any]:
        bundle: dict[str, Any] = {
            "text/plain": self.text(),
            "text/html": static_html(self.items, self.answer_html, self.thinking_html),
        }
        image = first_image(self.items)
        if image is not None:
            bundle[image[0]] = image[1]
        return bundle

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), self.static_bundle())


def _on_package_loop() -> bool:
    from .._loop import in_background_loop

    return in_background_loop()
