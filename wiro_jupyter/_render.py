"""Display bundles of everything a model, a chat app or a server returns: the one place untrusted text becomes markup.

In JupyterLab, output produced in the running session is trusted: HTML or Markdown in it may run script on
the notebook's origin, and script there can drive the kernel. A prompt injection chooses what an answer, an
agent's tool input, an output's file name or content type, or a server's error message says. So:

- every HTML a bundle carries leaves through `html_bundle`, which passes it through one nh3 policy
  (`sanitize_html`): no script, style element, event handler or form survives, and every `href`/`src` is
  http(s) or an inert `data:` URL (`safe_url`: a raster image, audio, video or an opaque download);
- Markdown is rendered here (markdown-it-py, raw HTML off) and cleaned by the same policy; no bundle carries
  `text/markdown`, which front ends render with its raw HTML;
- displaying makes no request to a third party: images of a Markdown answer become links unless
  `WIRO_JUPYTER_REMOTE_IMAGES=1`, and files are fetched by the kernel and embedded as `data:` URLs when
  small, else linked (a `src` on http(s) is dropped by the policy unless that switch is on);
- text that is not Markdown is escaped (`escape`), also inside the HTML we build ourselves.

Widgets get their HTML from here too (`render_markdown`, `load_items`, `items_html`, `html_bundle`), and their
ES modules only insert that HTML or set text and checked URLs. markdown-it-py and nh3 are imported on first use.
"""

from __future__ import annotations

import base64
import concurrent.futures
import html
import json
import logging
import os
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ._renderable import ChatFile, ChatMessage, JournalEntry, Model, Output
from ._renderable import Task as _TaskBase

log = logging.getLogger("wiro_jupyter")

REMOTE_IMAGES_ENV = "WIRO_JUPYTER_REMOTE_IMAGES"  # "1": images of Markdown answers load from their URLs
EMBED_LIMIT = 8 * 1024**2  # per output file; bigger files are linked, not embedded
EMBED_TOTAL = 32 * 1024**2  # per display
CHAT_EMBED_LIMIT = 2 * 1024**2  # per chat file (a chat widget re-sends its finished turns on every new turn)
TEXT_LIMIT = 200_000  # characters of a text output rendered inline
JSON_LIMIT = 2 * 1024**2  # bytes of JSON shown as a tree (bigger: as text)
TOOL_INPUT_LIMIT = 200  # characters of an agent's tool input shown in a static chat message

# Types a data: URL may carry: a browser can only show these as media (or save them), never run them.
_MEDIA_TYPE = r"image/(?:png|jpeg|gif|webp)|(?:audio|video)/[a-z0-9][a-z0-9.+-]*"
_EMBEDDABLE = re.compile(_MEDIA_TYPE)
_SAFE_DATA_URL = re.compile(rf"data:(?:{_MEDIA_TYPE}|application/octet-stream);base64,", re.IGNORECASE)


# ------------------------------------------------------------------------------------------------ primitives


def escape(text: object) -> str:
    """`text` as HTML text or attribute value (quotes included)."""
    return html.escape(str(text), quote=True)


def safe_url(url: str) -> str:
    """`url` when following or loading it cannot run anything: http(s), or a base64 `data:` URL of a raster
    image, audio, video or an opaque download; '' for anything else (`javascript:`, `data:text/html`, SVG, relative)."""
    url = (url or "").strip()
    if url.lower().startswith(("http://", "https://")) or _SAFE_DATA_URL.match(url):
        return url
    return ""


def data_url(content_type: str, data: bytes) -> str:
    """`data` as a `data:` URL that passes `safe_url`: a raster image, audio or video keeps its type; anything
    else (HTML, SVG, script, unknown) becomes application/octet-stream, which a browser only downloads."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    ctype = "image/jpeg" if ctype == "image/jpg" else ctype
    if not _EMBEDDABLE.fullmatch(ctype):
        ctype = "application/octet-stream"
    return f"data:{ctype};base64,{base64.b64encode(data).decode()}"


def remote_images_allowed() -> bool:
    """`WIRO_JUPYTER_REMOTE_IMAGES=1`: images of Markdown answers load from their URLs (read at each render)."""
    return os.environ.get(REMOTE_IMAGES_ENV, "").strip().lower() in ("1", "true", "yes", "on")


_STYLE_PROPERTIES = frozenset(
    {
        "color", "background-color", "font-size", "font-weight", "font-style", "font-family", "text-align",
        "white-space", "display", "flex-wrap", "gap", "width", "height", "max-width", "max-height",
        "margin", "margin-bottom", "padding", "padding-left", "border-left", "border-right", "list-style-type",
    }
)  # fmt: skip
_ATTRIBUTES = {
    "*": {"title", "class", "style", "lang"},
    "a": {"href", "target", "download", "hreflang"},
    "img": {"src", "alt", "width", "height", "loading", "referrerpolicy"},
    "audio": {"src", "controls"},
    "video": {"src", "controls"},
    "details": {"open"},
    "ol": {"start"},
    "td": {"colspan", "rowspan", "align"},
    "th": {"colspan", "rowspan", "align", "scope"},
}


def _check_url_attribute(tag: str, attribute: str, value: str) -> str | None:
    """nh3's attribute filter: `href`/`src` must pass `safe_url`, and a `src` on http(s) would make merely
    displaying the output a request to that server, so it goes unless remote images are switched on."""
    if attribute not in ("href", "src"):
        return value
    url = safe_url(value)
    if not url:
        return None
    if attribute == "src" and not url.lower().startswith("data:") and not remote_images_allowed():
        return None
    return url


@lru_cache(maxsize=1)
def _cleaner() -> Any:
    import nh3

    return nh3.Cleaner(
        tags=(set(nh3.ALLOWED_TAGS) - {"area", "map"}) | {"audio", "video"},
        attributes=_ATTRIBUTES,
        attribute_filter=_check_url_attribute,
        url_schemes={"http", "https", "data"},  # data: narrowed to inert types by the filter
        url_relative="deny",  # a relative link would open the notebook server's own pages
        generic_attribute_prefixes={"data-"},
        filter_style_properties=set(_STYLE_PROPERTIES),
        link_rel="noopener noreferrer",
    )


def sanitize_html(fragment: str) -> str:
    """`fragment` with nothing live left: the policy described in the module docstring."""
    return str(_cleaner().clean(fragment))


def _render_image(renderer: Any, tokens: Any, idx: int, options: Any, env: Any) -> str:
    """markdown-it's image rule: an inline data: image stays an image; a remote one is a link to it until
    `WIRO_JUPYTER_REMOTE_IMAGES=1` (loading it would tell its server that, and when, the answer was shown)."""
    token = tokens[idx]
    src = safe_url(str(token.attrGet("src") or ""))
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    if src and (src.lower().startswith("data:image/") or remote_images_allowed()):
        return f'<img src="{escape(src)}" alt="{escape(alt)}" referrerpolicy="no-referrer">'
    if not src:
        return escape(alt)
    return f'<a href="{escape(src)}">{escape(f"image: {alt}" if alt else "image")}</a>'


@lru_cache(maxsize=1)
def _markdown() -> Any:
    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
    md.add_render_rule("image", _render_image)
    return md


def render_markdown(text: str) -> str:
    """Markdown → sanitized HTML (raw HTML in the source shows as text; see `_render_image` for images)."""
    return sanitize_html(_markdown().render(text or ""))


def preformatted(text: str) -> str:
    return f"<pre>{escape(text)}</pre>"


def html_bundle(fragment: str, text: str) -> dict[str, Any]:
    """The one way HTML leaves this package: sanitized `text/html` plus `text/plain`."""
    return {"text/plain": text, "text/html": sanitize_html(fragment)}


def select(bundle: dict[str, Any], include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """`bundle` narrowed as IPython's `_repr_mimebundle_(include, exclude)` asks."""
    return {k: v for k, v in bundle.items() if (not include or k in include) and (not exclude or k not in exclude)}


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], *, code_column: int | None = None) -> str:
    def cell(i: int, value: str) -> str:
        return f"<td><code>{escape(value)}</code></td>" if i == code_column else f"<td>{escape(value)}</td>"

    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{header}</tr>{body}</table>"


def table_bundle(head: Sequence[str], rows: Sequence[Sequence[str]], text: str) -> dict[str, Any]:
    return html_bundle(_table(head, rows), text)


# ------------------------------------------------------------------------------------------------ catalogue, journal


def model_text(model: Model) -> str:
    lines = [f"{model.slug} — {model.title}", model.description.strip()[:300]]
    lines += [f"  {p.id:<24} {p.describe()}" for p in model.parameters]
    return "\n".join(line for line in lines if line)


def model_bundle(model: Model) -> dict[str, Any]:
    rows = [(p.id, p.label, p.describe(), p.description) for p in model.parameters]
    fragment = (
        f"<div><b>{escape(model.slug)}</b> — {escape(model.title)}<p>{escape(model.description[:400])}</p>"
        f"{_table(('id', 'label', 'accepts', 'note'), rows, code_column=0)}</div>"
    )
    return html_bundle(fragment, model_text(model))


def model_list_text(models: Sequence[Model], total: int) -> str:
    lines = [f"{m.slug:<36} {m.title[:40]:<40} {', '.join(m.categories[:3])}" for m in models]
    return "\n".join([f"{len(models)} of {total} models", *lines])


def model_list_bundle(models: Sequence[Model], total: int) -> dict[str, Any]:
    rows = [(m.slug, m.title, ", ".join(m.categories), "" if m.price is None else f"${m.price:g}") for m in models]
    table = _table(("slug", "title", "categories", "price"), rows, code_column=0)
    return html_bundle(f"<div>{len(models)} of {total} models{table}</div>", model_list_text(models, total))


def journal_bundle(entries: Sequence[JournalEntry]) -> dict[str, Any]:
    rows, lines = [], []
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created))
        outs = ", ".join(str(o.get("name")) for o in e.outputs[:4])
        lines.append(f"{when}  {e.task_id or '-':>8}  {e.status:<22} {e.model}  {outs}")
        rows.append((when, e.task_id or "-", e.model, e.status, outs, ", ".join(e.saved[:3])))
    fragment = _table(("when", "id", "model", "status", "outputs", "saved to"), rows)
    return html_bundle(fragment, "\n".join(lines) or "(no tasks recorded yet)")


# ------------------------------------------------------------------------------------------------ task outputs


def output_item(output: Output) -> dict[str, Any]:
    """The JSON-able item of one output (what `OutputsView` syncs and `items_html` shows), without its content."""
    kind = output.kind
    ctype = (output.content_type or "").lower()
    if kind == "video" and (ctype.startswith("image/") or output.name.lower().endswith(".gif")):
        kind = "animated"  # GIF / animated WebP: an <img>, not a <video>
    return {
        "kind": kind,
        "name": str(output.name or "output"),
        "url": safe_url(output.url),
        "src": "",  # the content as a data: URL, once fetched
        "content_type": output.content_type or "",
        "size": int(output.size) if output.size is not None else -1,
        "html": "",
        "json": None,
        "error": "",
    }


def fill_item(item: dict[str, Any], data: bytes) -> dict[str, Any]:
    """Put the content of an output into its item (data URL, rendered Markdown, parsed JSON)."""
    kind = item["kind"]
    if kind in ("image", "audio", "video", "animated"):
        default = {"image": "image/png", "audio": "audio/wav", "video": "video/mp4", "animated": "image/gif"}[kind]
        item["src"] = data_url(item["content_type"] if "/" in item["content_type"] else default, data)
    elif kind == "json":
        try:
            if len(data) > JSON_LIMIT:
                raise ValueError("too big for a tree")
            item["json"] = json.loads(data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            item["kind"] = "text"
            item["html"] = preformatted(data[:TEXT_LIMIT].decode("utf-8", "replace"))
    elif kind == "text":
        text = data.decode("utf-8", "replace")[:TEXT_LIMIT]
        item["html"] = preformatted(text) if item["name"].lower().endswith((".csv", ".tsv", ".log")) else render_markdown(text)
    elif kind == "file":
        item["src"] = data_url(item["content_type"], data)
    return item


def load_items(
    outputs: Sequence[Output], *, embed_limit: int = EMBED_LIMIT, total_limit: int = EMBED_TOTAL
) -> list[dict[str, Any]]:
    """Items for `outputs` (raw LLM outputs skipped), their content fetched by the kernel in parallel.

    Blocks; call it off the package's event loop (its fetches run there)."""
    from ._exceptions import WiroError

    files = [o for o in outputs if o.kind != "raw"]
    items = [output_item(o) for o in files]

    def fetch(output: Output) -> bytes | None:
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
            fill_item(item, data)
    return items


def _json_html(value: Any, depth: int = 0) -> str:
    """A collapsible JSON tree (nested <details>), every key and value escaped."""
    if isinstance(value, dict | list) and value and depth < 12:
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        label = f"{{…}} {len(value)} keys" if isinstance(value, dict) else f"[…] {len(value)} items"
        rows = "".join(f'<li><span style="color:#7c3aed">{escape(k)}</span>: {_json_html(v, depth + 1)}</li>' for k, v in pairs)
        return (
            f"<details{' open' if depth < 2 else ''}><summary>{label}</summary>"
            f'<ul style="list-style-type:none;margin:0;padding-left:1.2em">{rows}</ul></details>'
        )
    return f"<code>{escape(json.dumps(value, ensure_ascii=False))}</code>"


def _download_link(href: str, name: str) -> str:
    return f'<div><a href="{escape(href)}" download="{escape(name)}" target="_blank">⬇ {escape(name)}</a></div>'


def items_html(items: Sequence[dict[str, Any]], answer_html: str = "", thinking_html: str = "") -> str:
    """Outputs (and an LLM's sanitized answer/thinking) as static HTML: media only from embedded data, else links."""
    parts: list[str] = []
    if thinking_html:
        parts.append(f'<details><summary>thinking</summary><div style="color:#6b7280">{thinking_html}</div></details>')
    if answer_html:
        parts.append(f'<div class="wiro-answer">{answer_html}</div>')
    images = [i for i in items if i["kind"] == "image" and i["src"]]
    if images:
        width = "min(100%,640px)" if len(images) == 1 else "256px"
        cells = "".join(  # no link around them: it would carry the whole data: URL a second time
            f'<img src="{escape(i["src"])}" alt="{escape(i["name"])}" title="{escape(i["name"])}" '
            f'style="max-width:{width};max-height:512px">'
            for i in images
        )
        parts.append(f'<div class="wiro-grid" style="display:flex;flex-wrap:wrap;gap:6px">{cells}</div>')
    for item in items:
        kind, src, name = item["kind"], item["src"], item["name"]
        if kind == "image" and src:
            continue
        if kind == "audio" and src:
            parts.append(f'<div><audio controls src="{escape(src)}"></audio> <small>{escape(name)}</small></div>')
        elif kind == "video" and src:
            parts.append(f'<video controls src="{escape(src)}" style="max-width:100%"></video>')
        elif kind == "animated" and src:
            parts.append(f'<img src="{escape(src)}" alt="{escape(name)}" style="max-width:100%">')
        elif kind == "json" and item["json"] is not None:
            parts.append(f"<div><b>{escape(name)}</b>{_json_html(item['json'])}</div>")
        elif kind == "text" and item["html"]:
            parts.append(f'<div class="wiro-text"><b>{escape(name)}</b>{item["html"]}</div>')
        elif src or item["url"]:
            parts.append(_download_link(src or item["url"], name))
        else:
            parts.append(f"<div>{escape(name)} (no longer available)</div>")
        if item["error"]:
            parts.append(f'<div style="color:#b91c1c">{escape(item["error"])}</div>')
    return '<div class="wiro-media-static">' + "\n".join(parts) + "</div>"


def first_image(items: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """(mimetype, base64) of the first embedded PNG/JPEG image, for a bundle's image/* entry."""
    for item in items:
        src = item.get("src") or ""
        for mime in ("image/png", "image/jpeg"):
            if item["kind"] == "image" and src.startswith(f"data:{mime};base64,"):
                return mime, src.split(",", 1)[1]
    return None


def output_bundle(output: Output) -> dict[str, Any]:
    """One output: embedded media, rendered text, a JSON tree or a link; PNG/JPEG of an image; its repr as text."""
    items = load_items([output])
    bundle = html_bundle(items_html(items), repr(output))
    image = first_image(items)
    if image is not None:
        bundle[image[0]] = image[1]
    return bundle


def task_status_line(task: _TaskBase) -> str:
    elapsed = task.elapsed
    timing = f" in {elapsed:.1f} s" if elapsed is not None else ""
    cost = f", ${task.cost:.4f}" if task.cost else ""
    if not task.done:
        return f"{task.model} · task {task.id} · {task.status}"
    outcome = "done" if task.ok else ("cancelled" if task.status == "task_cancel" else "failed")
    return f"{task.model} · task {task.id} · {outcome}{timing}{cost}"


def status_html(line: str) -> str:
    return f'<div class="wiro-task-status" style="color:#555;font-size:90%">{escape(line)}</div>'


def status_bundle(line: str) -> dict[str, Any]:
    return html_bundle(status_html(line), line)


def task_bundle(task: _TaskBase) -> dict[str, Any]:
    """A task as one bundle: status, error, thinking and answer (rendered Markdown), its outputs; PNG/JPEG of the first image."""
    status = task_status_line(task)
    parts, text = [status_html(status)], [status]
    if task.error and task.done:
        parts.append(f'<pre style="color:#b00020">{escape(task.error)}</pre>')
        text.append(f"error: {task.error}")
    items = load_items(task.files)
    answer = render_markdown(task.text) if task.text else ""
    thinking = render_markdown(task.thinking) if task.thinking else ""
    parts.append(items_html(items, answer, thinking))
    text += [task.text] if task.text else []
    text += [repr(o) for o in task.files]
    bundle = html_bundle("\n".join(parts), "\n".join(text))
    image = first_image(items)
    if image is not None:
        bundle[image[0]] = image[1]
    return bundle


# ------------------------------------------------------------------------------------------------ chat


def _is_media(file: ChatFile) -> bool:
    return file.type in ("image", "audio", "video") or file.mime_type.startswith(("image/", "audio/", "video/"))


def embed_chat_file(file: ChatFile, *, limit: int = CHAT_EMBED_LIMIT) -> str:
    """A `data:` URL of a chat image, audio or video, fetched once by the kernel and kept on the file
    (`file.embedded`); '' when it is another kind of file, bigger than `limit` or unreachable (then it is linked).

    Blocks; from the package's event loop it returns '' without fetching."""
    from ._exceptions import WiroError

    if file.embedded is not None:
        return file.embedded
    url = safe_url(file.url)
    if not url or not _is_media(file):
        file.embedded = ""
        return ""
    if url.lower().startswith("data:"):
        file.embedded = url
        return url
    from ._loop import run_sync
    from ._mime import sniff
    from ._transport import shared_core

    try:  # fetched the way an output file is: the shared HTTP core, no credentials, a size cap
        data = run_sync(shared_core().fetch(url, max_bytes=limit))
    except RuntimeError:
        return ""  # called on the package's loop: link it this time, fetch it from another thread later
    except WiroError:
        file.embedded = ""
        return ""
    sniffed = sniff(data)[1]
    file.embedded = data_url(sniffed if _EMBEDDABLE.fullmatch(sniffed) else file.mime_type, data)
    return file.embedded


def _file_html(file: ChatFile, src: str) -> str:
    """An embedded file as its media element, else a link to it (else its name)."""
    name = file.filename or file.type or "file"
    kind = src[5:].split("/", 1)[0] if src.startswith("data:") else ""
    if kind == "image":
        return f'<p><img src="{escape(src)}" alt="{escape(name)}" style="max-width:min(100%,640px)"></p>'
    if kind in ("audio", "video"):
        return f'<p><{kind} controls src="{escape(src)}"></{kind}> <small>{escape(name)}</small></p>'
    url = safe_url(file.url)
    return f'<p><a href="{escape(url)}" target="_blank">{escape(name)}</a></p>' if url else f"<p>{escape(name)}</p>"


def _tool_step_html(tool: str, tool_input: Any) -> str:
    shown = "" if tool_input in (None, "", {}) else tool_input if isinstance(tool_input, str) else json.dumps(tool_input)
    shown = shown if len(shown) <= TOOL_INPUT_LIMIT else shown[: TOOL_INPUT_LIMIT - 3] + "..."
    code = f" <code>{escape(shown)}</code>" if shown else ""
    return f"<blockquote><p>tool <strong>{escape(tool)}</strong>{code}</p></blockquote>"


def chat_message_html(message: ChatMessage, *, embed: bool = True) -> str:
    """A chat turn's reply: thinking as a quote, each tool call, the answer, the assistant's files, speech.

    `embed`: fetch files not fetched yet (blocks); else show what `embed_chat_file` already fetched, link the rest."""
    parts: list[str] = []
    if message.thinking.strip():
        parts.append(f"<blockquote>{render_markdown(message.thinking.strip())}</blockquote>")
    parts += [_tool_step_html(step.tool, step.tool_input) for step in message.agent_thoughts if step.tool]
    parts.append(render_markdown(message.answer))
    for file in message.files:
        if file.belongs_to != "user":  # the user's own files are not shown again
            parts.append(_file_html(file, embed_chat_file(file) if embed else file.embedded or ""))
    if message.audio and len(message.audio) <= CHAT_EMBED_LIMIT:
        parts.append(f'<p><audio controls src="{escape(data_url("audio/mpeg", message.audio))}"></audio></p>')
    return "\n".join(p for p in parts if p)


def chat_message_bundle(message: ChatMessage, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """A `ChatMessage` in a notebook: sanitized HTML, the answer as text."""
    return select(html_bundle(chat_message_html(message), message.answer), include, exclude)


@dataclass
class TranscriptEntry:
    """One line of a chat transcript: a turn (`query` and its reply, `message`) or a divider (`divider=True`)."""

    query: str
    message: ChatMessage | None = None
    name: str = "Assistant"
    state: str = "done"  # streaming | done | error | stopped
    error: str = ""
    meta: str = ""
    divider: bool = False


def _transcript_entry_html(entry: TranscriptEntry) -> str:
    if entry.divider:
        return f"<hr><p><em>{escape(entry.query)}</em></p>"
    parts = [
        f'<p><strong>You:</strong> <span style="white-space:pre-wrap">{escape(entry.query)}</span></p>',
        f"<p><strong>{escape(entry.name)}:</strong></p>",
    ]
    if entry.message is not None:
        parts.append(f'<div class="wiro-answer">{chat_message_html(entry.message, embed=False)}</div>')
    if entry.state == "streaming":
        parts.append("<p><em>(answering…)</em></p>")
    if entry.error:
        label = "Stopped" if entry.state == "stopped" else "Error"
        parts.append(f'<p><strong>{label}:</strong> <span style="white-space:pre-wrap">{escape(entry.error)}</span></p>')
    if entry.meta:
        parts.append(f"<p><em>{escape(entry.meta)}</em></p>")
    return "\n".join(parts)


def transcript_bundle(entries: Sequence[TranscriptEntry], text: str) -> dict[str, Any]:
    """A conversation as it stands (a chat widget's static copy): files as far as they were fetched, else links."""
    body = "\n".join(_transcript_entry_html(e) for e in entries) or "<p><em>(no messages yet)</em></p>"
    return html_bundle(f'<div class="wiro-chat-static">{body}</div>', text)
