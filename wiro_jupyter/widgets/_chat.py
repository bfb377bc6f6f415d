"""`ChatView`: a conversation as chat bubbles, the answer streaming in; an input box and a Stop button.

    chat = wiro_jupyter.Chat()            # or a WbotChat, or an AsyncChat (created in its loop)
    chat.widget()                         # == ChatView(chat): the whole conversation, live

The view renders the `ChatEvent`s of a chat (either backend: they share the event kinds and
`ChatMessage`); it holds no protocol logic. Where the events come from:

- `follow=True` (default): every turn of the chat, whoever sends it (code in another cell,
  the input box, `%%wchat`), through the chat's listeners (`_messages.ChatListeners`);
- `follow=False` (as `%%wchat` uses for the one turn of its cell): the turns sent
  through the view: its input box, `view.send(text)`, or a driver
  that calls `begin(text)`, `feed(event)` for each event, then `complete(message)` / `fail(exc)`.

Traits are the whole contract with `js/chat.js`: `turns` (finished turns), `pending` (the
turn in flight: its user and assistant parts), `busy`, `stopping`, `show_input`, `title`,
`placeholder`, `notice`. A turn is a dict: `role` ("user", "assistant" or "divider"),
`text` (the user's words), `html` (the answer as Markdown rendered and sanitised by
`wiro_jupyter._render`, in Python), `thinking_html`, `thoughts` (agent steps: tool, thought,
input, observation), `files` (url: an http(s) link, src: the content as a `data:` URL once the
kernel fetched it, type, name, mime), `meta` (model, task or tokens, latency, cost), `state`
("streaming", "done", "error", "stopped"), `error`, `progress`.

Files are fetched by the kernel in a thread when their turn ends (`_render.embed_chat_file`;
never on the chat's loop, which is where events arrive) and shown inline from `data:` URLs;
until then, or when too big, they are links: showing a conversation requests nothing itself.

Updates are throttled (at most ~20 a second however fast tokens arrive; the final state
always, exact). The input box sends `{"action": "send", "text": ...}` and Stop sends
`{"action": "stop"}`; both are handled on worker threads, never in the comm handler.

Saved notebooks: the mimebundle carries the widget view plus `text/html` (sanitised, from
`_render.transcript_bundle`) and `text/plain` transcripts, so the conversation shows without
a kernel (as it was when displayed; `%%wchat` updates its cell's copy when the turn ends).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import anywidget
import traitlets as t

from .._render import CHAT_EMBED_LIMIT, TranscriptEntry, data_url, embed_chat_file, render_markdown, safe_url, transcript_bundle
from ..chat._messages import AgentThought, ChatEvent, ChatFile, ChatMessage
from ._frontend import merge_bundle
from ._static import es_module, static_file
from ._throttle import Throttle

log = logging.getLogger("wiro_jupyter")

__all__ = ["ChatView", "Conversation", "FollowedConversation", "meta_line"]

UPDATE_INTERVAL = 0.05  # at most ~20 updates a second
DETAIL_LIMIT = 4000  # characters of a tool input / observation shown


class Conversation(Protocol):
    """What a ChatView calls on its chat: `Chat`, `AsyncChat`, `WbotChat` and `AsyncWbotChat` all fit
    (an async chat's `send` and `stop` are coroutines, run on the loop the view was created in)."""

    @property
    def turns(self) -> Sequence[ChatMessage]: ...

    def send(self, text: str, *, on_event: Callable[[ChatEvent], Any] | None = None) -> ChatMessage | Awaitable[ChatMessage]: ...

    def stop(self) -> bool | Awaitable[bool]: ...


@runtime_checkable
class FollowedConversation(Conversation, Protocol):
    """A chat with listeners: the view follows every turn, whoever sends it (`follow=True`)."""

    def add_listener(self, listener: Callable[[ChatEvent], Any]) -> None: ...

    def remove_listener(self, listener: Callable[[ChatEvent], Any]) -> None: ...


@dataclass
class _Record:
    """One turn as the view knows it (or a divider between conversations)."""

    key: str
    role: str = "turn"  # "turn" | "divider"
    query: str = ""
    message: ChatMessage | None = None
    state: str = "streaming"  # streaming | done | error | stopped
    error: str = ""
    progress: str = ""
    cache: list[dict[str, Any]] | None = field(default=None, repr=False)


def _detail(value: Any) -> str:
    if value in (None, "", {}, []):
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=2, default=str)
    return text if len(text) <= DETAIL_LIMIT else text[: DETAIL_LIMIT - 1] + "…"


def _file(f: ChatFile) -> dict[str, str]:
    name = f.filename or f.type or "file"
    return {"url": safe_url(f.url), "src": f.embedded or "", "type": f.type or "", "name": name, "mime": f.mime_type or ""}


def _thought(step: AgentThought) -> dict[str, str]:
    return {
        "tool": step.tool or "",
        "thought": step.thought or "",
        "input": _detail(step.tool_input),
        "observation": _detail(step.observation),
    }


def _price(usage: dict[str, Any]) -> str:
    price = usage.get("total_price")
    try:
        value = float(price) if price not in (None, "") else None
    except (TypeError, ValueError):
        return ""
    if value is None:
        return ""
    currency = str(usage.get("currency") or "USD")
    amount = f"{value:.6f}".rstrip("0").rstrip(".")
    return f"${amount}" if currency.upper() == "USD" else f"{amount} {currency}"


def meta_line(message: ChatMessage | None, state: str = "done", title: str = "") -> str:
    """'wiro/chat-llm · task 12 · 1.2 s · $0.0010' / 'Echo · 42 tokens · 0.8 s · $0.0001' (+ 'stopped')."""
    if message is None:
        return "stopped" if state == "stopped" else ""
    usage = message.usage or {}
    parts = [message.model or title]
    if message.backend == "wiro" and message.task_id:
        parts.append(f"task {message.task_id}")
    tokens = usage.get("total_tokens")
    if tokens not in (None, "", 0):
        parts.append(f"{tokens} tokens")
    if message.latency_s:
        parts.append(f"{message.latency_s:.1f} s")
    if usage.get("speed"):
        parts.append(str(usage["speed"]))
    parts.append(_price(usage))
    if state == "stopped":
        parts.append("stopped")
    return " · ".join(p for p in parts if p)


def _title(chat: Conversation | None) -> str:
    if chat is None:
        return ""
    model = getattr(chat, "model", None)  # a Wiro LLM chat's slug; a Dify-compatible app has none
    if isinstance(model, str) and model:
        return model
    return "Wbot chat"


class ChatView(anywidget.AnyWidget):
    """A conversation, live: `ChatView(chat)` (see the module docstring)."""

    _esm = es_module("chat.js")
    _css = static_file("chat.css")

    title = t.Unicode("").tag(sync=True)
    turns = t.List(t.Dict()).tag(sync=True)  # finished turns, oldest first
    pending = t.List(t.Dict()).tag(sync=True)  # the turn in flight (user + assistant), [] when idle
    busy = t.Bool(False).tag(sync=True)
    stopping = t.Bool(False).tag(sync=True)
    show_input = t.Bool(True).tag(sync=True)
    placeholder = t.Unicode("Send a message (Enter sends, Shift+Enter adds a line)").tag(sync=True)
    notice = t.Unicode("").tag(sync=True)

    def __init__(
        self,
        chat: Conversation | None = None,
        *,
        messages: Sequence[ChatMessage] | None = None,
        follow: bool = True,
        show_input: bool = True,
        title: str | None = None,
        interval: float = UPDATE_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.chat = chat
        self.interval = interval
        self.worker: threading.Thread | None = None  # the thread of the last input-box send (join it to wait)
        self.stop_thread: threading.Thread | None = None
        self._embedders: list[threading.Thread] = []  # fetching the files of ended turns (see wait_files)
        self._fetching: set[int] = set()  # ids of the ChatFiles those threads fetch (a turn may end twice)
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._records: list[_Record] = []
        self._by_message: dict[int, _Record] = {}
        self._throttles: dict[str, Throttle] = {}
        self._version = 0  # bumped when a finished turn is added or changes
        self._synced_version = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        if chat is not None and inspect.iscoroutinefunction(chat.send):
            try:  # an AsyncChat / AsyncWbotChat: its coroutines must run on the loop it lives on
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                self._loop = None
        # The chat whose every turn the view shows (through its listeners), or None.
        self._followed = chat if follow and isinstance(chat, FollowedConversation) else None
        if messages is None:
            messages = list(chat.turns) if chat is not None else []
        for message in messages:
            self._add_finished(message)
        self.title = title if title is not None else _title(chat)
        self.show_input = bool(show_input and chat is not None)
        self.on_msg(self._on_custom)
        if self._followed is not None:
            self._followed.add_listener(self.feed)
        self._sync()
        for record in list(self._records):
            self._embed_files(record)

    # -- building the transcript ------------------------------------------------------------
    def _new_record(self, query: str, role: str = "turn") -> _Record:
        record = _Record(key=uuid.uuid4().hex[:12], role=role, query=query)
        self._records.append(record)
        return record

    def _record_for(self, message: ChatMessage) -> _Record:
        """The record of `message` (adopting a placeholder from begin() with the same query)."""
        record = self._by_message.get(id(message))
        if record is not None and record.message is message:
            return record
        for candidate in reversed(self._records):
            placeholder = candidate.role == "turn" and candidate.message is None and candidate.state == "streaming"
            if placeholder and candidate.query == message.query:
                record = candidate
                break
        else:
            record = self._new_record(message.query)
        record.message = message
        self._by_message[id(message)] = record
        return record

    def add_message(self, message: ChatMessage) -> None:
        """Show a finished turn (e.g. from the chat's history)."""
        record = self._add_finished(message)
        self._sync()
        self._embed_files(record)

    def _add_finished(self, message: ChatMessage) -> _Record:
        with self._lock:
            record = self._record_for(message)
            record.state = "stopped" if message.metadata.get("stopped") else "done"
            record.error = str(message.metadata.get("error") or "") if record.state != "done" else ""
            record.cache = None
            self._version += 1
        return record

    def add_divider(self, text: str = "new conversation") -> None:
        with self._lock:
            record = self._new_record(text, role="divider")
            record.state = "done"
            self._version += 1
        self._sync()

    def begin(self, text: str) -> _Record:
        """A turn starts: the user's bubble and an empty, streaming answer (for drivers such as %%wchat)."""
        with self._lock:
            record = self._new_record(text)
        self._sync()
        return record

    def feed(self, event: ChatEvent) -> None:
        """Render one ChatEvent (any thread; throttled)."""
        message = event.message
        if message is None:
            if isinstance(event.raw, dict) and event.raw.get("new_session"):
                self.add_divider("new conversation")
            return
        final = ""
        with self._lock:
            record = self._record_for(message)
            if record.state != "streaming":
                return  # late events (e.g. a chatflow's workflow_finished): complete() has the last word
            if event.kind == "progress" and event.text:
                record.progress = event.text
            if event.kind == "end":
                final = "stopped" if message.metadata.get("stopped") else "done"
            elif event.kind == "error":
                record.error = event.text or "the answer failed"
                final = "error"
            throttle = self._throttles.get(record.key)
            if throttle is None and not final:
                throttle = self._throttles[record.key] = Throttle(self._sync, self.interval)
        if final:
            self._finish(record, final)
        elif throttle is not None:
            throttle()

    def complete(self, message: ChatMessage) -> None:
        """The turn of `message` has ended: show its final state (exact text, usage, latency)."""
        with self._lock:
            record = self._record_for(message)
        state = "stopped" if message.metadata.get("stopped") else "done"
        error = str(message.metadata.get("error") or "")
        self._finish(record, "error" if error and state == "done" else state, error)

    def fail(
        self, exc: BaseException, *, record: _Record | None = None, state: str = "error", partial: ChatMessage | None = None
    ) -> None:
        """The turn failed (or was interrupted: `state="stopped"`); show what arrived (`partial`, else the
        one a failed turn's exception carries) and why."""
        partial = partial or getattr(exc, "partial_message", None)
        with self._lock:
            if isinstance(partial, ChatMessage):
                if record is not None and record.message is None:
                    record.message = partial
                    self._by_message[id(partial)] = record
                record = self._record_for(partial)
            if record is None:
                streaming = [r for r in self._records if r.role == "turn" and r.state == "streaming"]
                record = streaming[-1] if streaming else self._new_record("")
        text = str(exc).strip() or type(exc).__name__
        if isinstance(exc, KeyboardInterrupt):
            text = "interrupted: generation was stopped"
        self._finish(record, state, text)

    def _finish(self, record: _Record, state: str, error: str = "") -> None:
        with self._lock:
            record.state = state
            record.error = error if state in ("error", "stopped") else ""
            record.progress = ""
            record.cache = None
            self._version += 1
            throttle = self._throttles.pop(record.key, None)
        if throttle is not None:
            throttle.flush(final=True)  # runs _sync now; nothing from this turn's throttle after it
        else:
            self._sync()
        self._embed_files(record)

    def _embed_files(self, record: _Record) -> None:
        """Fetch the ended turn's files in a thread (events arrive on the chat's loop, which must not wait
        for a download), then show them inline."""
        with self._lock:
            files = [f for f in (record.message.files if record.message else []) if f.embedded is None]
            files = [f for f in files if id(f) not in self._fetching]
            if not files:
                return
            self._fetching.update(id(f) for f in files)
            thread = threading.Thread(target=self._embed_now, args=(record, files), name="wiro-chat-files", daemon=True)
            self._embedders = [t for t in self._embedders if t.is_alive()] + [thread]
        thread.start()

    def _embed_now(self, record: _Record, files: list[ChatFile]) -> None:
        try:
            for f in files:
                embed_chat_file(f)
        except Exception:  # a file that cannot be shown inline stays a link
            log.exception("fetching the files of a chat turn failed")
        with self._lock:
            self._fetching.difference_update(id(f) for f in files)
            record.cache = None
            self._version += 1
        self._sync()

    def wait_files(self, timeout: float = 30.0) -> bool:
        """Block until the files of ended turns are fetched (True) or `timeout` passed (False)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._embedders)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def _build(self, record: _Record) -> list[dict[str, Any]]:
        if record.role == "divider":
            return [{"id": record.key, "role": "divider", "text": record.query}]
        m = record.message
        user_files = [_file(f) for f in m.files if f.belongs_to == "user"] if m else []
        user = {"id": record.key + "-u", "role": "user", "text": record.query, "files": user_files}
        answer = m.answer if m else ""
        files = [_file(f) for f in m.files if f.belongs_to != "user" and f.url] if m else []
        if m is not None and m.audio and record.state != "streaming" and len(m.audio) <= CHAT_EMBED_LIMIT:
            speech = data_url("audio/mpeg", m.audio)
            files.append({"url": speech, "src": speech, "type": "audio", "name": "speech.mp3", "mime": "audio/mpeg"})
        thoughts = []
        for step in m.agent_thoughts if m else []:
            if step.tool or (step.thought and step.thought.strip() != answer.strip()):
                thoughts.append(_thought(step))
        assistant = {
            "id": record.key + "-a",
            "role": "assistant",
            "html": render_markdown(answer) if answer else "",
            "thinking_html": render_markdown(m.thinking) if m and m.thinking else "",
            "thoughts": thoughts,
            "files": files,
            "meta": "" if record.state == "streaming" else meta_line(m, record.state, self.title),
            "state": record.state,
            "error": record.error,
            "progress": record.progress if record.state == "streaming" else "",
        }
        return [user, assistant]

    def _sync(self) -> None:
        with self._sync_lock:  # the later snapshot is always the one set last
            with self._lock:
                finished: list[dict[str, Any]] = []
                live: list[dict[str, Any]] = []
                for record in self._records:
                    if record.state == "streaming":
                        live.extend(self._build(record))
                    else:
                        if record.cache is None:
                            record.cache = self._build(record)
                        finished.extend(record.cache)
                version = self._version
                busy = any(r.role == "turn" and r.state == "streaming" for r in self._records)
            with self.hold_sync():
                if version != self._synced_version:
                    self.turns = finished
                    self._synced_version = version
                self.pending = live
                self.busy = busy
                if not busy:
                    self.stopping = False

    # -- sending and stopping ----------------------------------------------------------------
    def send(self, text: str, **kwargs: Any) -> ChatMessage:
        """Send `text` through the chat and show the turn; blocks until it ends (the input box runs it in a thread).

        Raises what the chat raises, after showing the failed turn.
        """
        if self.chat is None:
            raise RuntimeError("This ChatView has no chat to send through; create it with ChatView(chat).")
        record = self.begin(text)
        on_event = None if self.following else self.feed
        try:
            message = self._call(self.chat.send, text, on_event=on_event, **kwargs)
        except BaseException as exc:
            self.fail(exc, record=record, state="stopped" if isinstance(exc, KeyboardInterrupt) else "error")
            raise
        self.complete(message)
        return message

    def stop(self) -> bool:
        """Stop the answer in flight (what the Stop button does)."""
        if self.chat is None:
            return False
        return bool(self._call(self.chat.stop))

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if inspect.iscoroutinefunction(fn):
            if self._loop is None:
                raise RuntimeError("a ChatView of an async chat must be created inside the chat's event loop")
            return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self._loop).result()
        return fn(*args, **kwargs)

    def _on_custom(self, _widget: object, content: Any, _buffers: object) -> None:  # content: the front end's JSON
        action = content.get("action") if isinstance(content, dict) else None
        if action == "send":
            text = str(content.get("text") or "").strip()
            if not text or not self.show_input:
                return
            if self.busy or (self.worker is not None and self.worker.is_alive()):
                self.notice = "An answer is still streaming: wait for it, or press Stop."
                return
            self.notice = ""
            self.worker = threading.Thread(target=self._send_in_thread, args=(text,), name="wiro-chat-send", daemon=True)
            self.worker.start()
        elif action == "stop":
            if not self.busy or self.stopping:
                return
            self.stopping = True
            self.stop_thread = threading.Thread(target=self._stop_in_thread, name="wiro-chat-stop", daemon=True)
            self.stop_thread.start()

    def _send_in_thread(self, text: str) -> None:
        from .._exceptions import WiroError

        try:
            self.send(text)
        except WiroError:
            pass  # shown in the failed turn
        except Exception as exc:  # a button must never take the kernel down
            log.exception("sending a chat message from the widget failed")
            self.notice = f"Could not send: {exc!r}"

    def _stop_in_thread(self) -> None:
        try:
            self.stop()
        except Exception as exc:  # a button must never take the kernel down
            log.exception("stopping the chat answer failed")
            self.notice = f"Could not stop the answer: {exc}"
            self.stopping = False

    @property
    def following(self) -> bool:
        """Whether the view shows every turn of its chat (not only those sent through it)."""
        return self._followed is not None

    def close(self) -> None:
        if self._followed is not None:
            self._followed.remove_listener(self.feed)
            self._followed = None
        super().close()

    # -- static fallbacks ----------------------------------------------------------------------
    def _snapshot(self) -> list[_Record]:
        with self._lock:
            return list(self._records)

    def text(self) -> str:
        lines: list[str] = []
        for record in self._snapshot():
            if record.role == "divider":
                lines.append(f"--- {record.query} ---")
                continue
            m = record.message
            lines.append(f"You: {record.query}")
            name = (m.model if m else "") or self.title or "Assistant"
            lines.append(f"{name}: {m.answer if m else ''}".rstrip())
            if record.error:
                lines.append(f"({record.state}: {record.error})")
            meta = meta_line(m, record.state, self.title) if record.state != "streaming" else ""
            if meta:
                lines.append(f"({meta})")
        return "\n".join(lines) if lines else "(no messages yet)"

    def static_bundle(self) -> dict[str, Any]:
        """The transcript as sanitized HTML and text (what a saved notebook shows without a kernel)."""
        entries = []
        for record in self._snapshot():
            if record.role == "divider":
                entries.append(TranscriptEntry(record.query, divider=True))
                continue
            m = record.message
            entries.append(
                TranscriptEntry(
                    record.query,
                    m,
                    name=(m.model if m else "") or self.title or "Assistant",
                    state=record.state,
                    error=record.error,
                    meta=meta_line(m, record.state, self.title) if record.state != "streaming" else "",
                )
            )
        return transcript_bundle(entries, self.text())

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), self.static_bundle())

    def __repr__(self) -> str:
        turns = sum(1 for r in self._snapshot() if r.role == "turn")
        return f"<ChatView {self.title or 'chat'} · {turns} turn{'s' if turns != 1 else ''}>"
