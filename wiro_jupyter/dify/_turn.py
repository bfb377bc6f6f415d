"""Dify-compatible chat: one turn as a sans-I/O state machine.

`_Turn` is fed the event dicts of one answer, returns `ChatEvent`s and builds
the finished `ChatMessage`; the client does the I/O around it.

Wire rules (docs/protocol.md, Dify §2 and §7): events are `data:`
lines without `event:` names, so the kind is the JSON `event` field; a bare
`event: ping` is a keep-alive; the stream is read until the server closes it
(chatflows send `workflow_finished` after `message_end`, TTS audio follows it);
an `error` event inside a 200 stream fails the turn; a `message_file` event
that carries `answer` and no `url` is a text delta (a Dify bug since mid-2025).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
from typing import Any

from .._exceptions import ServerError, WiroConnectionError, WiroError
from ..chat._messages import AgentThought, ChatEvent, ChatFile, ChatMessage
from ._errors import _error_for
from ._files import _chat_file


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in ("{", "[", '"'):
            try:
                return json.loads(stripped)
            except ValueError:
                return value
    return value


def _status(value: Any) -> int:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return 500


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
