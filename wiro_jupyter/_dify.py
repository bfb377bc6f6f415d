"""Dify-compatible chat ("Wbot"): the protocol client.

Talks to any Dify Service API chat app: Wbot (`https://servicewbot.ecylt.top/v1`,
the default), Dify Cloud, or a self-hosted Dify (`http://host/v1`). Chat,
agent-chat and chatflow (advanced-chat) apps all work; their event sets are
folded into one stream of typed `ChatEvent`s and one finished `ChatMessage`.

Layout: `_Turn` is the sans-I/O state machine of one turn (feed it event
dicts, it returns ChatEvents and builds the ChatMessage). `AsyncWbotChat` does
the I/O once, asynchronously; `WbotChat` is the synchronous flavour, a thin
wrapper that runs the async core on the package's private loop (`_loop`).

Wire rules (see the research notes on Dify's source): events are `data:`
lines without `event:` names, so the kind is the JSON `event` field; a bare
`event: ping` is a keep-alive; the stream is read until the server closes it
(chatflows send `workflow_finished` after `message_end`, TTS audio follows it);
an `error` event inside a 200 stream fails the turn; a `message_file` event
that carries `answer` and no `url` is a text delta (a Dify bug since mid-2025);
relative file URLs are resolved against the API root (base URL minus `/v1`).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import inspect
import json
import mimetypes
import os
import random
import re
import time
import uuid
import weakref
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
from httpx_sse import aconnect_sse

from . import _loop
from ._config import mask
from ._exceptions import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WiroConnectionError,
    WiroError,
    WiroTimeoutError,
    register_secret,
)
from ._messages import AgentThought, ChatEvent, ChatFile, ChatListeners, ChatMessage, Page

__all__ = ["DEFAULT_WBOT_URL", "AsyncWbotChat", "ChatEvent", "WbotChat"]

T = TypeVar("T")

DEFAULT_WBOT_URL = "https://servicewbot.ecylt.top/v1"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Codes Dify sends with HTTP 400 when the app's model or provider failed: not the caller's mistake.
_PROVIDER_CODES = frozenset(
    {
        "provider_not_initialize",
        "provider_quota_exceeded",
        "model_currently_not_support",
        "completion_request_error",
        "app_unavailable",
        "internal_server_error",
    }
)
# Dify's "document" file type (anything else that is not image/audio/video is "custom").
_DOCUMENT_EXTENSIONS = frozenset(
    {"txt", "md", "mdx", "markdown", "pdf", "html", "htm", "xlsx", "xls", "doc", "docx", "csv", "eml", "msg"}
    | {"pptx", "ppt", "xml", "epub"}
)
_KEY_HINT = (
    "Set WBOT_API_KEY or pass api_key= to WbotChat(): it is the chat app's own API key "
    "(Dify keys start with 'app-'), from the app's API access page; each key works for one app only."
)
_process_user: str | None = None


def default_user() -> str:
    """The end-user id this process sends (WBOT_USER, else one generated per process)."""
    global _process_user
    env = os.environ.get("WBOT_USER")
    if env:
        return env
    if _process_user is None:
        _process_user = "wiro-jupyter-" + uuid.uuid4().hex[:12]
    return _process_user


# --------------------------------------------------------------------------- errors


def _attach(err: BaseException, **attrs: Any) -> None:
    for name, value in attrs.items():
        setattr(err, name, value)


def _error_for(
    status: int | None,
    code: str,
    message: str,
    *,
    in_stream: bool = False,
    host: str = "",
    retry_after: float | None = None,
) -> WiroError:
    """Map a Dify error (HTTP or in-stream `error` event) onto the package's exceptions."""
    code = code or "error"
    detail = message.strip() or "(no message)"
    if in_stream:
        what = f"The answer failed while streaming: {code} (status {status}): {detail}"
    else:
        where = f" at {host}" if host else ""
        what = f"The chat server{where} answered HTTP {status} {code}: {detail}"
    lowered = detail.lower()
    kw: dict[str, Any] = {"code": code, "status_code": status}
    if status == 401:
        return AuthenticationError(what, hint=_KEY_HINT, **kw)
    if status == 403:
        return WiroError(
            what,
            hint="The app, its API access or the workspace is disabled, or the plan does not allow this; "
            "ask the app's owner to check it in the Dify console.",
            **kw,
        )
    if status == 404:
        if "conversation" in lowered:
            hint = (
                "The conversation was deleted, belongs to another user=, or comes from another app; "
                "start a new one with chat.new()."
            )
        elif "message" in lowered:
            hint = "Check the message id; chat.last.message_id is the id of the last answer."
        else:
            hint = (
                "Check base_url: it must be the API root ending in /v1 (for example "
                f"{DEFAULT_WBOT_URL} or http://your-dify-host/v1)."
            )
        return NotFoundError(what, hint=hint, **kw)
    if status == 429:
        hint = "The app limits concurrent requests or its plan quota is used up; wait a little and send again."
        return RateLimitError(what, hint=hint, retry_after=retry_after, **kw)
    if status in (413, 415):
        hint = (
            "The file is too large for this app; chat.parameters()['system_parameters'] gives the limits."
            if status == 413
            else "This app does not accept this file type; chat.parameters()['file_upload'] lists what it takes."
        )
        return ValidationError(what, hint=hint, **kw)
    if status is not None and status >= 500:
        return ServerError(what, hint="The chat server had a problem; try again in a moment.", **kw)
    if code in _PROVIDER_CODES:
        return ServerError(
            what,
            hint="The app's model or provider failed (its configuration or quota, not your message); "
            "try again later, or ask the app's owner.",
            **kw,
        )
    if status == 400:
        if code == "not_chat_app":
            hint = "This key belongs to a workflow or completion app; use the key of a chat, agent or chatflow app."
        elif code == "conversation_completed":
            hint = "This conversation is closed; start a new one with chat.new()."
        else:
            hint = "Fix the request and send again; chat.parameters() lists the inputs and files this app accepts."
        return ValidationError(what, hint=hint, **kw)
    return WiroError(what, hint="See the server's message above.", **kw)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _http_error(resp: httpx.Response) -> WiroError:
    """Build the exception for a non-2xx answer: Dify's `{code, message, status}`, or a proxy's page."""
    status = resp.status_code
    host = resp.request.url.host if resp.request is not None else ""
    text = resp.text or ""
    code, message = "", ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or body.get("error") or "")
        raw = body.get("message")
        message = raw if isinstance(raw, str) else json.dumps(raw) if raw is not None else ""
    elif "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        shown = re.sub(r"\s+", " ", title.group(1)).strip() if title else ""
        message = (
            f"an HTML page{f' ({shown!r})' if shown else ''} instead of Dify's JSON, "
            "so a proxy or gateway in front of the app answered"
        )
    else:
        message = re.sub(r"\s+", " ", text).strip()[:300]
    if not code:
        code = httpx.codes.get_reason_phrase(status).lower().replace(" ", "_") or "error"
    return _error_for(status, code, message, host=host, retry_after=_retry_after(resp))


def _transport_error(exc: httpx.TransportError, base_url: str, *, streaming: bool) -> WiroError:
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        if streaming:
            return WiroTimeoutError(
                f"No data arrived from the chat server for too long while streaming ({kind}).",
                hint="Dify sends a keep-alive ping every 10 s, so the connection or a proxy stalled; send again, "
                "or pass a larger timeout= to the chat.",
            )
        return WiroTimeoutError(
            f"The chat server at {base_url} did not answer in time ({kind}).",
            hint="Check the network and WBOT_API_URL / base_url, then try again; a larger timeout= may help.",
        )
    if streaming:
        return WiroConnectionError(
            f"The connection to the chat server dropped while the answer was streaming ({kind}: {exc}).",
            hint="Send again; the part that arrived is on this exception as .partial.",
        )
    return WiroConnectionError(
        f"Could not reach the chat server at {base_url} ({kind}: {exc}).",
        hint="Check the network and WBOT_API_URL / base_url (it ends in /v1), then try again.",
    )


def _bad_arg(message: str, hint: str) -> ValidationError:
    return ValidationError(message, hint=hint, code="invalid_argument")


# --------------------------------------------------------------------------- helpers


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[", '"'):
            try:
                return json.loads(stripped)
            except ValueError:
                return value
    return value


def _api_root(base_url: str) -> str:
    """The origin file URLs are relative to: base URL minus a trailing `/v1`."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _resolve(url: Any, root: str) -> str:
    if not url or not isinstance(url, str):
        return ""
    if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):  # http:, https:, data:, ...
        return url
    if url.startswith("//"):
        scheme = root.split(":", 1)[0] if ":" in root else "https"
        return f"{scheme}:{url}"
    return root.rstrip("/") + ("" if url.startswith("/") else "/") + url


def _filename_from_url(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1]


def _status(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 500


def _sniff(data: bytes) -> tuple[str, str]:
    """(extension, mime type) of some bytes, from their first bytes."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png", "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg", "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif", "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp", "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav", "audio/wav"
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return ".mp3", "audio/mpeg"
    if head[4:8] == b"ftyp":
        return ".mp4", "video/mp4"
    if head[:4] == b"%PDF":
        return ".pdf", "application/pdf"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return ".bin", "application/octet-stream"
    return ".txt", "text/plain"


def _file_type(mime: str, filename: str) -> str:
    """Dify's file `type` for a mime type / file name: image, audio, video, document or custom."""
    mime = (mime or "").lower()
    for kind in ("image", "audio", "video"):
        if mime.startswith(kind + "/"):
            return kind
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in _DOCUMENT_EXTENSIONS or mime in ("application/pdf", "text/plain", "text/markdown", "text/csv"):
        return "document"
    return "custom"


def _chat_file(data: dict[str, Any], root: str, *, default_owner: str) -> ChatFile:
    url = _resolve(data.get("url") or data.get("remote_url"), root)
    owner = data.get("belongs_to")
    if not owner:
        method = data.get("transfer_method")
        owner = "assistant" if method == "tool_file" else default_owner if not method else "user"
    return ChatFile(
        id=str(data.get("related_id") or data.get("id") or data.get("upload_file_id") or ""),
        type=str(data.get("type") or ""),
        url=url,
        filename=str(data.get("filename") or data.get("name") or _filename_from_url(url)),
        mime_type=str(data.get("mime_type") or ""),
        belongs_to=str(owner),
    )


def _merge_thought(thoughts: dict[str, AgentThought], data: dict[str, Any]) -> AgentThought:
    """Upsert one `agent_thought` snapshot: the same id is re-sent as the step changes; keep non-empty fields."""
    position = data.get("position")
    key = str(data.get("id") or f"position-{position}")
    step = thoughts.get(key)
    if step is None:
        step = thoughts[key] = AgentThought(id=key)
    if position not in (None, ""):
        with contextlib.suppress(TypeError, ValueError):
            step.position = int(position)
    if data.get("thought"):
        step.thought = str(data["thought"])
    if data.get("tool"):
        step.tool = str(data["tool"])
    if data.get("tool_input") not in (None, "", {}):
        step.tool_input = _maybe_json(data["tool_input"])
    if data.get("observation") not in (None, "", {}):
        step.observation = _maybe_json(data["observation"])
    for item in data.get("message_files") or data.get("files") or []:
        file_id = item.get("id") or item.get("file_id") if isinstance(item, dict) else item
        if file_id and str(file_id) not in step.files:
            step.files.append(str(file_id))
    return step


def _ordered(thoughts: dict[str, AgentThought]) -> list[AgentThought]:
    arrival = {key: i for i, key in enumerate(thoughts)}
    return sorted(thoughts.values(), key=lambda t: (t.position or 10**9, arrival[t.id]))


class _Done:
    """End-of-stream marker from the reader task (with the error that ended it, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


# --------------------------------------------------------------------------- one turn (sans I/O)


class _Turn:
    """The state of one chat turn: feed it event dicts, it yields ChatEvents and builds the ChatMessage."""

    def __init__(self, query: str, inputs: dict[str, Any], files: list[Any], *, root: str, model: str = "") -> None:
        self.query = query
        self.inputs = inputs
        self.files = files
        self.root = root
        self.message = ChatMessage(query=query, backend="wbot", model=model)
        self.thoughts: dict[str, AgentThought] = {}
        self.file_index: dict[str, ChatFile] = {}
        self.tts: list[bytes] = []
        self.error: WiroError | None = None  # from an `error` event or the transport
        self.error_announced = False
        self.workflow_error: WiroError | None = None
        self.ended = False  # message_end seen
        self.started = False  # the server began streaming
        self.finished = False  # the client stopped reading
        self.stop_requested = False
        self.stop_sent = False
        self.cut = False
        self.reader: asyncio.Task[None] | None = None
        self.cut_timer: asyncio.TimerHandle | None = None
        self._t0 = time.monotonic()
        self._latency: float | None = None

    # -- building blocks

    def _event(self, kind: str, raw: dict[str, Any], **kw: Any) -> ChatEvent:
        return ChatEvent(kind=kind, raw=raw, answer=self.message.answer, message=self.message, **kw)

    def _text(self, delta: Any, raw: dict[str, Any]) -> list[ChatEvent]:
        if not isinstance(delta, str) or not delta:
            return []
        self.message.answer += delta
        return [self._event("text", raw, text=delta)]

    def _add_file(self, new: ChatFile) -> tuple[ChatFile, bool]:
        key = new.id or new.url
        old = self.file_index.get(key) if key else None
        if old is None:
            if key:
                self.file_index[key] = new
            self.message.files.append(new)
            return new, True
        for name in ("type", "url", "filename", "mime_type", "belongs_to"):
            if getattr(new, name) and not getattr(old, name):
                setattr(old, name, getattr(new, name))
        return old, False

    def _envelope(self, data: dict[str, Any], name: Any) -> None:
        m = self.message
        if not m.conversation_id and data.get("conversation_id"):
            m.conversation_id = str(data["conversation_id"])
        message_id = data.get("message_id")
        if not message_id and name in ("message", "agent_message", "message_end", "message_replace"):
            message_id = data.get("id")
        if not m.message_id and message_id:
            m.message_id = str(message_id)
        if not m.task_id and data.get("task_id"):
            m.task_id = str(data["task_id"])
        if m.created_at is None and isinstance(data.get("created_at"), (int, float)):
            m.created_at = float(data["created_at"])

    # -- the event table

    def feed(self, data: dict[str, Any]) -> list[ChatEvent]:
        name = data.get("event")
        self._envelope(data, name)
        m = self.message
        raw_payload = data.get("data")
        payload: dict[str, Any] = raw_payload if isinstance(raw_payload, dict) else {}
        if name in ("message", "agent_message"):
            return self._text(data.get("answer"), data)
        if name == "text_chunk":
            return self._text(payload.get("text", data.get("text")), data)
        if name == "message_file":
            if "answer" in data and not data.get("url"):  # Dify bug: text deltas sent as message_file
                return self._text(data.get("answer"), data)
            chat_file, _ = self._add_file(_chat_file(data, self.root, default_owner="assistant"))
            return [self._event("file", data, file=chat_file)]
        if name == "agent_thought":
            step = _merge_thought(self.thoughts, data)
            m.agent_thoughts = _ordered(self.thoughts)
            return [self._event("agent_thought", data, thought=step)]
        if name == "message_replace":
            m.answer = str(data.get("answer") or "")
            m.metadata["replaced"] = data.get("reason") or True
            return [self._event("replace", data, text=m.answer)]
        if name == "reasoning_chunk":
            delta = payload.get("reasoning", data.get("reasoning"))
            if not isinstance(delta, str) or not delta:
                return []
            m.thinking += delta
            return [self._event("thinking", data, text=delta)]
        if name == "message_end":
            return self._end(data)
        if name in ("tts_message", "tts_message_end"):
            audio = data.get("audio")
            if isinstance(audio, str) and audio:
                with contextlib.suppress(binascii.Error, ValueError):
                    self.tts.append(base64.b64decode(audio))
                    m.audio = b"".join(self.tts)
            return [self._event("tts", data)]
        if name == "error" or (name is None and ("code" in data or "message" in data)):
            self.error = _error_for(
                _status(data.get("status")),
                str(data.get("code") or ""),
                str(data.get("message") or ""),
                in_stream=True,
            )
            self.error_announced = True
            return [self._event("error", data, text=str(self.error))]
        if name == "ping" or not isinstance(name, str):
            return []
        if name == "text_replace":  # old chatflows
            m.answer = str(payload.get("text") or "")
            return [self._event("replace", data, text=m.answer)]
        return self._progress(name, data, payload)

    def _end(self, data: dict[str, Any]) -> list[ChatEvent]:
        m = self.message
        self.ended = True
        self._latency = time.monotonic() - self._t0
        raw_meta = data.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        m.usage = dict(meta.get("usage") or {})
        m.retriever_resources = list(meta.get("retriever_resources") or [])
        if meta.get("annotation_reply"):
            m.metadata["annotation_reply"] = meta["annotation_reply"]
        events: list[ChatEvent] = []
        for item in data.get("files") or []:
            if isinstance(item, dict):
                chat_file, new = self._add_file(_chat_file(item, self.root, default_owner="assistant"))
                if new:
                    events.append(self._event("file", data, file=chat_file))
        events.append(self._event("end", data))
        return events

    def _progress(self, name: str, data: dict[str, Any], payload: dict[str, Any]) -> list[ChatEvent]:
        m = self.message
        if data.get("workflow_run_id"):
            m.metadata.setdefault("workflow_run_id", data["workflow_run_id"])
        title = str(payload.get("title") or payload.get("node_type") or "")
        status = str(payload.get("status") or "")
        if name == "workflow_started":
            label = "workflow started"
        elif name == "workflow_finished":
            label = f"workflow {status or 'finished'}"
            m.metadata["workflow_status"] = status
            if status == "failed":
                detail = str(payload.get("error") or "no error message")
                self.workflow_error = ServerError(
                    f"The chatflow failed: {detail}",
                    hint="A node of the app's workflow failed; try again, or ask the app's owner to check it.",
                    code="workflow_failed",
                )
        elif name.startswith("node_"):
            label = f"{title or 'node'} {status or name.split('_', 1)[1]}"
        elif name.startswith(("iteration_", "loop_")):
            group, _, step = name.partition("_")
            index = payload.get("index")
            label = f"{title or group} {step}" + (f" {index}" if index is not None and step == "next" else "")
        else:
            label = name.replace("_", " ")
        return [self._event("progress", data, text=label)]

    def failure(self) -> WiroError | None:
        """The error that ends this turn, if any (called when the stream has closed)."""
        if self.error is not None:
            return self.error
        if self.workflow_error is not None:
            return self.workflow_error
        if not self.ended and not self.stop_requested and self.message.metadata.get("workflow_status") != "succeeded":
            return WiroConnectionError(
                "The stream closed before the answer was complete (no message_end event).",
                hint="The connection or a proxy cut the answer short; send again. "
                "The part that arrived is on this exception as .partial.",
            )
        return None

    def restart_clock(self) -> None:
        self._t0 = time.monotonic()

    def cut_now(self) -> None:
        """The server ignored the stop request: end the stream here, keeping what arrived."""
        if not self.finished and self.reader is not None and not self.reader.done():
            self.cut = True
            self.reader.cancel()

    def close(self) -> None:
        m = self.message
        m.latency_s = self._latency if self._latency is not None else time.monotonic() - self._t0
        if self.tts:
            m.audio = b"".join(self.tts)
        if self.stop_requested:
            m.metadata["stopped"] = True


# --------------------------------------------------------------------------- async client


class AsyncWbotChat(ChatListeners):
    """A conversation with a Dify-compatible chat app, async flavour.

    >>> chat = AsyncWbotChat()                     # WBOT_API_KEY, WBOT_API_URL
    >>> reply = await chat.send("Hello")           # a ChatMessage; the conversation continues
    >>> async for event in chat.stream("And?"):    # ChatEvents as they arrive
    ...     print(event.text, end="")

    Works with any Dify Service API chat, agent or chatflow app:
    `AsyncWbotChat(api_key="app-...", base_url="http://my-dify/v1")`.
    """

    #: First retry delay in seconds (doubled per retry) for 429/5xx before streaming starts.
    retry_backoff: float = 0.5
    #: After stop(), how long the server gets to end the stream before the client cuts it.
    stop_grace: float = 5.0

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = 60.0,
        *,
        max_retries: int = 2,
    ) -> None:
        self._api_key: str | None = None
        self.api_key = api_key if api_key is not None else os.environ.get("WBOT_API_KEY") or None
        self.base_url = (base_url or os.environ.get("WBOT_API_URL") or DEFAULT_WBOT_URL).rstrip("/")
        self.user = user or default_user()
        self.conversation_id = conversation_id or None
        self.inputs: dict[str, Any] = dict(inputs or {})
        self.max_retries = max(0, int(max_retries))
        if isinstance(timeout, httpx.Timeout):
            self._timeout = timeout
        else:
            self._timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0) if timeout else 15.0)
        self.last: ChatMessage | None = None
        self._app: dict[str, Any] = {}
        self._turn: _Turn | None = None
        self._unfinished_task_id: str | None = None
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()

    # -- configuration

    @property
    def api_key(self) -> str | None:
        return self._api_key

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        register_secret(value)
        self._api_key = value or None

    @property
    def api_root(self) -> str:
        """Where relative file URLs point: the base URL without its trailing `/v1`."""
        return _api_root(self.base_url)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, user={self.user!r}, "
            f"conversation_id={self.conversation_id!r}, api_key={mask(self._api_key)})"
        )

    def new(self) -> AsyncWbotChat:
        """Start a fresh conversation: the next send() opens a new one on the server."""
        self.conversation_id = None
        self.last = None
        self._notify(ChatEvent(kind="progress", text="new conversation", raw={"new_session": True}))
        return self

    reset = new

    # -- HTTP

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        for old in [other for other in self._clients if other.is_closed()]:
            del self._clients[old]  # a finished asyncio.run(): its pool is unusable anyway
        client = self._clients.get(loop)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(timeout=self._timeout, follow_redirects=True)
            self._clients[loop] = client
        return client

    async def aclose(self) -> None:
        """Close the connection pool of the running loop."""
        with contextlib.suppress(RuntimeError):
            client = self._clients.pop(asyncio.get_running_loop(), None)
            if client is not None:
                await client.aclose()

    async def __aenter__(self) -> AsyncWbotChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _headers(self) -> dict[str, str]:
        if not self._api_key:
            raise AuthenticationError("No API key for the Wbot/Dify chat.", hint=_KEY_HINT, code="no_api_key")
        return {"Authorization": f"Bearer {self._api_key}"}

    def _delay(self, attempt: int, retry_after: float | None = None) -> float:
        if retry_after is not None:
            return min(retry_after, 30.0)
        return self.retry_backoff * (2**attempt) * (1 + random.random() / 4)

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: Any = None,
        data: dict[str, Any] | None = None,
    ) -> httpx.Response:
        headers = self._headers()
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                resp = await self._http().request(
                    method, url, json=json_body, params=params, files=files, data=data, headers=headers
                )
            except httpx.TransportError as exc:
                if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) and attempt < self.max_retries:
                    await asyncio.sleep(self._delay(attempt))
                    attempt += 1
                    continue
                raise _transport_error(exc, self.base_url, streaming=False) from exc
            if not resp.is_error:
                return resp
            err = _http_error(resp)
            if resp.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
                raise err
            await asyncio.sleep(self._delay(attempt, getattr(err, "retry_after", None)))
            attempt += 1

    async def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = await self._request(method, path, **kw)
        if resp.status_code == 204 or not resp.content:
            return {}
        try:
            return resp.json()
        except ValueError:
            raise WiroError(
                f"The chat server answered {method} {path} with something that is not JSON.",
                hint="Check base_url: it must be a Dify Service API root ending in /v1.",
                status_code=resp.status_code,
            ) from None

    # -- a turn

    async def stream(
        self,
        text: str,
        *,
        inputs: dict[str, Any] | None = None,
        files: Any = None,
    ) -> AsyncGenerator[ChatEvent, None]:
        """Send `text` and yield ChatEvents as they arrive; the conversation continues afterwards.

        `inputs` add to the chat's `inputs` (the app's variables); `files` is a list of
        URLs (sent as remote_url), paths, bytes or file objects (uploaded first), or
        Dify file dicts. A failed turn yields an "error" event, then raises; the
        exception's `.partial` holds the text that arrived.
        """
        turn = self._new_turn(text, inputs, files)
        async for event in self._run(turn):
            yield event

    async def send(
        self,
        text: str,
        *,
        inputs: dict[str, Any] | None = None,
        files: Any = None,
        on_event: Callable[[ChatEvent], Any] | None = None,
    ) -> ChatMessage:
        """Send `text` and return the finished ChatMessage. `on_event` gets every ChatEvent on the way."""
        turn = self._new_turn(text, inputs, files)
        async for event in self._run(turn):
            if on_event is not None:
                result = on_event(event)
                if inspect.isawaitable(result):
                    await result
        return turn.message

    def _new_turn(self, text: str, inputs: dict[str, Any] | None, files: Any) -> _Turn:
        if not isinstance(text, str):
            raise _bad_arg(f"The message must be a str, not {type(text).__name__}.", hint="Pass the text to send.")
        if inputs is not None and not isinstance(inputs, dict):
            raise _bad_arg("inputs= must be a dict of the app's variables.", hint="chat.parameters() lists them.")
        if files is None:
            items: list[Any] = []
        elif isinstance(files, (list, tuple)):
            items = list(files)
        else:
            items = [files]
        return _Turn(text, {**self.inputs, **(inputs or {})}, items, root=self.api_root, model=self._app_name())

    def _app_name(self) -> str:
        return str(self._app.get("name") or "")

    async def _body(self, turn: _Turn) -> dict[str, Any]:
        body: dict[str, Any] = {
            "inputs": turn.inputs,
            "query": turn.query,
            "response_mode": "streaming",
            "user": self.user,
            "conversation_id": self.conversation_id or "",
        }
        if turn.files:
            body["files"] = [await self._file_spec(item) for item in turn.files]
        return body

    async def _file_spec(self, item: Any) -> dict[str, Any]:
        """One entry of `files`: a URL → remote_url; a path, bytes or file object → upload + local_file."""
        if isinstance(item, dict):
            return item
        if isinstance(item, str) and re.match(r"^https?://", item, re.I):
            name = _filename_from_url(item)
            mime = mimetypes.guess_type(name)[0] or ""
            kind = _file_type(mime, name) if mime or "." in name else "image"
            return {"type": kind, "transfer_method": "remote_url", "url": item}
        content, filename, mime = await self._read_source(item, None, None)
        upload = await self._upload(content, filename, mime)
        kind = _file_type(str(upload.get("mime_type") or mime), filename)
        return {"type": kind, "transfer_method": "local_file", "upload_file_id": str(upload["id"])}

    async def _run(self, turn: _Turn) -> AsyncGenerator[ChatEvent, None]:
        if self._turn is not None and not self._turn.finished:
            raise WiroError(
                "Another answer is still streaming on this chat.",
                hint="Wait for it, or call chat.stop(), before sending again; use a second chat for parallel turns.",
                code="turn_in_flight",
            )
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self._turn = turn
        turn.reader = asyncio.create_task(self._read(turn, queue))
        completed = False
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Done):
                    if item.error is not None and turn.error is None:
                        turn.error = (
                            item.error
                            if isinstance(item.error, WiroError)
                            else WiroError(f"The chat turn failed: {item.error!r}", hint="This is a bug; please report it.")
                        )
                    break
                events = turn.feed(item)
                cid = turn.message.conversation_id
                if cid and cid != self.conversation_id:
                    self.conversation_id = cid
                for event in events:
                    yield self._notify(event)
                if turn.error is not None:
                    break  # an `error` event ends the stream
                if turn.stop_requested and not turn.stop_sent and turn.message.task_id:
                    with contextlib.suppress(WiroError):
                        await self._send_stop(turn)
            turn.close()
            failure = turn.failure()
            if failure is not None:
                _attach(failure, partial=turn.message.answer, partial_message=turn.message)
                turn.message.metadata["error"] = str(failure)
                if not turn.error_announced:
                    turn.error_announced = True
                    yield self._notify(turn._event("error", {}, text=str(failure)))
                raise failure
            completed = True
            self.last = turn.message
        finally:
            # Bookkeeping first, before any await: a stop() running meanwhile must see a consistent state.
            turn.finished = True
            if self._turn is turn:
                self._turn = None
            if not completed and not turn.ended and turn.error is None and not turn.stop_sent:
                self._unfinished_task_id = turn.message.task_id  # left early: stop() can still end it
            elif self._unfinished_task_id == turn.message.task_id:
                self._unfinished_task_id = None
            if turn.cut_timer is not None:
                turn.cut_timer.cancel()
            reader = turn.reader
            if reader is not None and not reader.done():
                reader.cancel()
                await asyncio.wait([reader], timeout=2)

    async def _read(self, turn: _Turn, queue: asyncio.Queue[Any]) -> None:
        """The reader task: open the stream (retrying what is safe to retry) and queue its events."""
        try:
            body = await self._body(turn)
            await self._open_and_read(turn, body, queue)
        except asyncio.CancelledError:
            queue.put_nowait(_Done())  # a cut after stop(): the turn ends with what arrived
            raise
        except (WiroConnectionError, WiroTimeoutError) as exc:
            # After a stop request, a server that hangs up or goes quiet has simply stopped.
            queue.put_nowait(_Done(None if turn.stop_requested and turn.started else exc))
        except Exception as exc:
            queue.put_nowait(_Done(exc))
        else:
            queue.put_nowait(_Done())

    async def _open_and_read(self, turn: _Turn, body: dict[str, Any], queue: asyncio.Queue[Any]) -> None:
        headers = self._headers()
        url = self.base_url + "/chat-messages"
        turn.restart_clock()  # latency counts from the request, not from file uploads
        attempt = 0
        while True:
            delay: float | None = None
            try:
                async with aconnect_sse(self._http(), "POST", url, json=body, headers=headers) as source:
                    resp = source.response
                    if resp.is_error:
                        await resp.aread()
                        err = _http_error(resp)
                        if resp.status_code not in _RETRY_STATUSES or attempt >= self.max_retries:
                            raise err
                        delay = self._delay(attempt, getattr(err, "retry_after", None))
                    elif "text/event-stream" not in resp.headers.get("content-type", "").lower():
                        await resp.aread()
                        for data in _non_stream_events(resp):
                            queue.put_nowait(data)
                        return
                    else:
                        turn.started = True
                        async for sse in source.aiter_sse():
                            if sse.event == "ping" or not sse.data.strip():
                                continue
                            try:
                                data = sse.json()
                            except ValueError:
                                continue  # e.g. an OpenAI-style "[DONE]" from a proxy
                            if isinstance(data, dict):
                                queue.put_nowait(data)
                        return
            except httpx.TransportError as exc:
                retriable = isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)) and not turn.started
                if not retriable or attempt >= self.max_retries:
                    raise _transport_error(exc, self.base_url, streaming=turn.started) from exc
                delay = self._delay(attempt)
            await asyncio.sleep(delay)
            attempt += 1

    async def stop(self) -> bool:
        """Stop the answer in flight (POST /chat-messages/{task_id}/stop); the stream ends with what came.

        Returns as soon as the server has the request; the stream then ends with
        `message_end` (or, if the server ignores the request, is cut after
        `stop_grace` seconds). Safe from another task, from inside a `stream()`
        loop, or (on WbotChat) from another thread. False when nothing is in flight.
        """
        turn = self._turn
        if turn is not None and not turn.finished:
            turn.stop_requested = True
            if turn.message.task_id and not turn.stop_sent:
                await self._send_stop(turn)
            # Without a task id yet, the request goes out as soon as the server names the task.
            return True
        task_id, self._unfinished_task_id = self._unfinished_task_id, None
        if task_id:
            await self._post_stop(task_id)
            return True
        return False

    async def _send_stop(self, turn: _Turn) -> None:
        turn.stop_sent = True
        if turn.cut_timer is None:  # armed first: a slow stop request must not delay the cut
            turn.cut_timer = asyncio.get_running_loop().call_later(self.stop_grace, turn.cut_now)
        await self._post_stop(str(turn.message.task_id))

    async def _post_stop(self, task_id: str) -> None:
        await self._json("POST", f"/chat-messages/{task_id}/stop", json_body={"user": self.user})

    # -- conversations and messages

    def _conversation(self, conversation_id: str | None) -> str:
        cid = conversation_id or self.conversation_id
        if not cid:
            raise _bad_arg(
                "There is no conversation yet.",
                hint="Send a message first, or pass conversation_id= (chat.conversations() lists them).",
            )
        return cid

    async def conversations(
        self, limit: int = 20, last_id: str | None = None, *, sort_by: str | None = None
    ) -> Page[dict[str, Any]]:
        """One page of this user's conversations (newest activity first); page on with last_id=page[-1]['id']."""
        params: dict[str, Any] = {"user": self.user, "limit": limit}
        if last_id:
            params["last_id"] = last_id
        if sort_by:
            params["sort_by"] = sort_by
        body = await self._json("GET", "/conversations", params=params)
        return Page(list(body.get("data") or []), has_more=bool(body.get("has_more")), limit=body.get("limit"))

    async def rename(
        self, conversation_id: str | None = None, name: str | None = None, auto_generate: bool = False
    ) -> dict[str, Any]:
        """Rename a conversation (the current one by default), or let the app name it (auto_generate=True)."""
        cid = self._conversation(conversation_id)
        if not auto_generate and not (name and name.strip()):
            raise _bad_arg("rename() needs a name.", hint="Pass name='...', or auto_generate=True to let the app pick one.")
        payload = {"name": name or "", "auto_generate": bool(auto_generate), "user": self.user}
        return dict(await self._json("POST", f"/conversations/{cid}/name", json_body=payload))

    async def delete(self, conversation_id: str | None = None) -> None:
        """Delete a conversation (the current one by default; the next send() then starts a new one)."""
        cid = self._conversation(conversation_id)
        await self._request("DELETE", f"/conversations/{cid}", json_body={"user": self.user})
        if cid == self.conversation_id:
            self.new()

    async def messages(
        self, conversation_id: str | None = None, limit: int = 20, first_id: str | None = None
    ) -> Page[ChatMessage]:
        """One page of a conversation's messages, oldest first: the newest `limit` before `first_id`."""
        cid = self._conversation(conversation_id)
        params: dict[str, Any] = {"conversation_id": cid, "user": self.user, "limit": limit}
        if first_id:
            params["first_id"] = first_id
        body = await self._json("GET", "/messages", params=params)
        items = [item for item in body.get("data") or [] if isinstance(item, dict)]
        # Current Dify sends each page oldest first, older versions newest first: normalise.
        if len(items) >= 2 and (items[0].get("created_at") or 0) > (items[-1].get("created_at") or 0):
            items.reverse()
        return Page(
            [self._history_message(item) for item in items],
            has_more=bool(body.get("has_more")),
            limit=body.get("limit"),
        )

    async def history(self, conversation_id: str | None = None, page_size: int = 20) -> AsyncGenerator[ChatMessage, None]:
        """Every message of a conversation, newest first, paging back with first_id until has_more is false."""
        cid = self._conversation(conversation_id)
        first_id: str | None = None
        seen: set[str] = set()
        while True:
            page = await self.messages(cid, limit=page_size, first_id=first_id)
            fresh = [m for m in reversed(page) if m.message_id not in seen]
            for message in fresh:
                seen.add(str(message.message_id))
                yield message
            if not page.has_more or not fresh:
                return
            first_id = page[0].message_id

    def _history_message(self, item: dict[str, Any]) -> ChatMessage:
        root = self.api_root
        thoughts: dict[str, AgentThought] = {}
        for raw in item.get("agent_thoughts") or []:
            if isinstance(raw, dict):
                _merge_thought(thoughts, raw)
        feedback = item.get("feedback")
        created = item.get("created_at")
        return ChatMessage(
            answer=str(item.get("answer") or ""),
            query=str(item.get("query") or ""),
            conversation_id=item.get("conversation_id"),
            message_id=item.get("id"),
            agent_thoughts=_ordered(thoughts),
            files=[_chat_file(f, root, default_owner="user") for f in item.get("message_files") or [] if isinstance(f, dict)],
            retriever_resources=list(item.get("retriever_resources") or []),
            created_at=float(created) if isinstance(created, (int, float)) else None,
            model=self._app_name(),
            backend="wbot",
            metadata={
                "feedback": feedback.get("rating") if isinstance(feedback, dict) else None,
                "status": item.get("status"),
                "error": item.get("error"),
                "inputs": item.get("inputs") or {},
                "parent_message_id": item.get("parent_message_id"),
            },
        )

    def _message(self, message_id: str | None) -> str:
        mid = message_id or (self.last.message_id if self.last else None)
        if not mid:
            raise _bad_arg("There is no message yet.", hint="Send a message first, or pass message_id=.")
        return mid

    async def feedback(self, message_id: str | None = None, rating: str | None = "like", content: str | None = None) -> None:
        """Rate an answer ("like", "dislike", or None to withdraw); the last answer by default."""
        if rating not in ("like", "dislike", None):
            raise _bad_arg(f"rating must be 'like', 'dislike' or None, not {rating!r}.", hint="Pick one of those.")
        payload: dict[str, Any] = {"rating": rating, "user": self.user}
        if content is not None:
            payload["content"] = content
        await self._json("POST", f"/messages/{self._message(message_id)}/feedbacks", json_body=payload)

    async def suggested(self, message_id: str | None = None) -> list[str]:
        """Suggested follow-up questions for an answer (the last one by default)."""
        body = await self._json("GET", f"/messages/{self._message(message_id)}/suggested", params={"user": self.user})
        return [str(q) for q in body.get("data") or []]

    async def parameters(self) -> dict[str, Any]:
        """The app's settings: opening statement, input form, file upload rules, limits."""
        return dict(await self._json("GET", "/parameters", params={"user": self.user}))

    async def info(self) -> dict[str, Any]:
        """The app's name, description, tags and mode (chat, agent-chat, advanced-chat)."""
        body = dict(await self._json("GET", "/info", params={"user": self.user}))
        self._app = body
        return body

    async def meta(self) -> dict[str, Any]:
        """The app's tool icons."""
        return dict(await self._json("GET", "/meta", params={"user": self.user}))

    # -- files

    async def upload(self, source: Any, filename: str | None = None, *, mime_type: str | None = None) -> str:
        """Upload a file (path, bytes or file object) for this user; returns its upload_file_id."""
        content, name, mime = await self._read_source(source, filename, mime_type)
        return str((await self._upload(content, name, mime))["id"])

    async def _upload(self, content: bytes, filename: str, mime: str) -> dict[str, Any]:
        body = await self._json("POST", "/files/upload", files={"file": (filename, content, mime)}, data={"user": self.user})
        if not isinstance(body, dict) or not body.get("id"):
            raise WiroError("The upload answer has no file id.", hint="Check that base_url is a Dify Service API root.")
        return body

    async def _read_source(self, source: Any, filename: str | None, mime: str | None) -> tuple[bytes, str, str]:
        if isinstance(source, (bytes, bytearray, memoryview)):
            content = bytes(source)
            ext, sniffed = _sniff(content)
            name = filename or f"upload{ext}"
        elif isinstance(source, (str, os.PathLike)):
            path = Path(source).expanduser()
            if not path.is_file():
                raise _bad_arg(
                    f"File not found: {str(path)!r}.",
                    hint="Pass an existing file path, bytes, a file object, or an http(s) URL.",
                )
            content = await asyncio.to_thread(path.read_bytes)
            name = filename or path.name
            sniffed = _sniff(content)[1]
        elif hasattr(source, "read"):
            data = source.read()
            content = data.encode() if isinstance(data, str) else bytes(data)
            ext, sniffed = _sniff(content)
            name = filename or os.path.basename(str(getattr(source, "name", "") or "")) or f"upload{ext}"
        else:
            raise _bad_arg(
                f"Cannot send a {type(source).__name__} as a file.",
                hint="Pass a path, bytes, a file object, an http(s) URL, or a Dify file dict.",
            )
        guessed = mimetypes.guess_type(name)[0]
        return content, name, mime or guessed or sniffed


def _non_stream_events(resp: httpx.Response) -> Iterable[dict[str, Any]]:
    """A 200 that is not an event stream: a blocking-mode answer (server ignored streaming) or an error body."""
    try:
        body = resp.json()
    except ValueError:
        raise WiroError(
            "The chat server answered 200 with neither an event stream nor JSON.",
            hint="Check base_url: it must be a Dify Service API root ending in /v1 (a proxy may be in the way).",
            status_code=resp.status_code,
        ) from None
    if not isinstance(body, dict):
        raise WiroError("The chat server answered with unexpected JSON.", hint="Check base_url.")
    if "answer" not in body:
        yield {"event": "error", "status": body.get("status", 500), **body}
        return
    envelope = {k: body[k] for k in ("conversation_id", "message_id", "task_id", "created_at") if k in body}
    envelope.setdefault("message_id", body.get("id"))
    yield {"event": "message", **envelope, "answer": body.get("answer") or ""}
    yield {"event": "message_end", **envelope, "metadata": body.get("metadata") or {}, "files": body.get("files")}


# --------------------------------------------------------------------------- sync flavour


class WbotChat:
    """A conversation with a Dify-compatible chat app ("Wbot" by default): the synchronous API.

    >>> chat = WbotChat()                      # WBOT_API_KEY, WBOT_API_URL
    >>> print(chat.send("Hello"))              # the answer; the conversation continues
    >>> for event in chat.stream("And then?"): # ChatEvents as they arrive
    ...     print(event.text, end="")

    Every method runs the async core (`chat.aio`, an AsyncWbotChat) on the package's
    private event loop, so it works the same in scripts, threads and notebooks.
    Ctrl-C during send()/stream() asks the server to stop the answer, then re-raises.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        user: str | None = None,
        conversation_id: str | None = None,
        inputs: dict[str, Any] | None = None,
        timeout: float | httpx.Timeout | None = 60.0,
        *,
        max_retries: int = 2,
    ) -> None:
        self.aio = AsyncWbotChat(
            api_key=api_key,
            base_url=base_url,
            user=user,
            conversation_id=conversation_id,
            inputs=inputs,
            timeout=timeout,
            max_retries=max_retries,
        )

    # -- state, shared with the async core

    @property
    def api_key(self) -> str | None:
        return self.aio.api_key

    @api_key.setter
    def api_key(self, value: str | None) -> None:
        self.aio.api_key = value

    @property
    def base_url(self) -> str:
        return self.aio.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.aio.base_url = value.rstrip("/")

    @property
    def api_root(self) -> str:
        return self.aio.api_root

    @property
    def user(self) -> str:
        return self.aio.user

    @user.setter
    def user(self, value: str) -> None:
        self.aio.user = value

    @property
    def conversation_id(self) -> str | None:
        return self.aio.conversation_id

    @conversation_id.setter
    def conversation_id(self, value: str | None) -> None:
        self.aio.conversation_id = value or None

    @property
    def inputs(self) -> dict[str, Any]:
        return self.aio.inputs

    @inputs.setter
    def inputs(self, value: dict[str, Any]) -> None:
        self.aio.inputs = dict(value or {})

    @property
    def last(self) -> ChatMessage | None:
        return self.aio.last

    def __repr__(self) -> str:
        return repr(self.aio).replace("AsyncWbotChat(", "WbotChat(", 1)

    def new(self) -> WbotChat:
        """Start a fresh conversation: the next send() opens a new one on the server."""
        self.aio.new()
        return self

    def add_listener(self, listener: Callable[[ChatEvent], Any]) -> None:
        """Call `listener(event)` for every ChatEvent of every turn (on the package's loop thread)."""
        self.aio.add_listener(listener)

    def remove_listener(self, listener: Callable[[ChatEvent], Any]) -> None:
        self.aio.remove_listener(listener)

    reset = new

    def close(self) -> None:
        _loop.run_sync(self.aio.aclose())

    def __enter__(self) -> WbotChat:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- a turn

    def stream(self, text: str, *, inputs: dict[str, Any] | None = None, files: Any = None) -> Iterator[ChatEvent]:
        """Send `text` and yield ChatEvents as they arrive (see AsyncWbotChat.stream)."""
        turn = self.aio._new_turn(text, inputs, files)
        return _loop.iterate_sync(self.aio._run(turn), on_interrupt=self.aio.stop, on_abandon=self.aio.stop)

    def send(
        self,
        text: str,
        *,
        inputs: dict[str, Any] | None = None,
        files: Any = None,
        on_event: Callable[[ChatEvent], Any] | None = None,
    ) -> ChatMessage:
        """Send `text` and return the finished ChatMessage; `on_event` gets each ChatEvent in this thread."""
        turn = self.aio._new_turn(text, inputs, files)
        events = _loop.iterate_sync(self.aio._run(turn), on_interrupt=self.aio.stop, on_abandon=self.aio.stop)
        try:
            for event in events:
                if on_event is not None:
                    on_event(event)
        finally:
            events.close()  # on an error in on_event: close the stream now and stop the answer
        return turn.message

    def stop(self) -> bool:
        """Stop the answer in flight; callable from another thread while send() runs."""
        return _loop.run_sync(self.aio.stop())

    # -- conversations, messages, files

    def conversations(self, limit: int = 20, last_id: str | None = None, *, sort_by: str | None = None) -> Page[dict[str, Any]]:
        return _loop.run_sync(self.aio.conversations(limit, last_id, sort_by=sort_by))

    def rename(self, conversation_id: str | None = None, name: str | None = None, auto_generate: bool = False) -> dict[str, Any]:
        return _loop.run_sync(self.aio.rename(conversation_id, name, auto_generate))

    def delete(self, conversation_id: str | None = None) -> None:
        _loop.run_sync(self.aio.delete(conversation_id))

    def messages(self, conversation_id: str | None = None, limit: int = 20, first_id: str | None = None) -> Page[ChatMessage]:
        return _loop.run_sync(self.aio.messages(conversation_id, limit, first_id))

    def history(self, conversation_id: str | None = None, page_size: int = 20) -> Iterator[ChatMessage]:
        return _loop.iterate_sync(self.aio.history(conversation_id, page_size))

    def feedback(self, message_id: str | None = None, rating: str | None = "like", content: str | None = None) -> None:
        _loop.run_sync(self.aio.feedback(message_id, rating, content))

    def suggested(self, message_id: str | None = None) -> list[str]:
        return _loop.run_sync(self.aio.suggested(message_id))

    def parameters(self) -> dict[str, Any]:
        return _loop.run_sync(self.aio.parameters())

    def info(self) -> dict[str, Any]:
        return _loop.run_sync(self.aio.info())

    def meta(self) -> dict[str, Any]:
        return _loop.run_sync(self.aio.meta())

    def upload(self, source: Any, filename: str | None = None, *, mime_type: str | None = None) -> str:
        return _loop.run_sync(self.aio.upload(source, filename, mime_type=mime_type))


for _name in (
    "stream",
    "send",
    "stop",
    "conversations",
    "rename",
    "delete",
    "messages",
    "history",
    "feedback",
    "suggested",
    "parameters",
    "info",
    "meta",
    "upload",
):
    getattr(WbotChat, _name).__doc__ = getattr(WbotChat, _name).__doc__ or getattr(AsyncWbotChat, _name).__doc__
del _name
