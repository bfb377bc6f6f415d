"""One turn of a Wiro LLM chat, without I/O: the task's events in, `ChatEvent`s out, the `ChatMessage` built."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from .._events import TaskEvent
from ._messages import ChatEvent, ChatMessage

if TYPE_CHECKING:
    from .._task import AsyncTask

# Stage labels for "progress" events (only changes are reported).
_STAGE_LABELS = {
    "task_queue": "queued",
    "task_accept": "queued",
    "task_assign": "starting",
    "task_preprocess_start": "starting",
    "task_preprocess_end": "starting",
    "task_start": "running",
    "task_end": "finishing",
    "task_postprocess_start": "finishing",
}


class _WiroTurn:
    """The state of one chat turn: TaskEvents in, ChatEvents out; builds the ChatMessage."""

    def __init__(self, query: str, params: dict[str, Any], *, model: str, session_id: str, user_id: str) -> None:
        self.query = query
        self.params = params
        self.message = ChatMessage(query=query, backend="wiro", model=model, session_id=session_id, created_at=time.time())
        self.message.metadata["user_id"] = user_id
        self.task: AsyncTask | None = None
        self.stop_requested = False
        self.stop_job: asyncio.Future[Any] | None = None
        self.finished = False
        self.stage = ""
        self._t0 = time.monotonic()
        self._first: float | None = None
        self._closed = False

    def _event(self, kind: str, raw: dict[str, Any] | None = None, **kw: Any) -> ChatEvent:
        return ChatEvent(kind=kind, raw=raw or {}, answer=self.message.answer, message=self.message, **kw)

    def start(self) -> ChatEvent:
        self.stage = "sending"
        return self._event("progress", {"stage": "sending"}, text="sending")

    def _mark_first(self) -> None:
        if self._first is None:
            self._first = time.monotonic() - self._t0

    def _set_answer(self, new: str, raw: dict[str, Any]) -> list[ChatEvent]:
        current = self.message.answer
        if not new or new == current:
            return []
        self._mark_first()
        self.message.answer = new
        if new.startswith(current):
            return [self._event("text", raw, text=new[len(current) :])]
        return [self._event("replace", raw, text=new)]

    def _set_thinking(self, new: str, raw: dict[str, Any]) -> list[ChatEvent]:
        current = self.message.thinking
        if not new or new == current:
            return []
        self._mark_first()
        self.message.thinking = new
        if new.startswith(current):
            return [self._event("thinking", raw, text=new[len(current) :])]
        # ChatEvent has no "thinking replace" kind: the whole text, marked in raw.
        return [self._event("thinking", {**raw, "thinking_replace": True}, text=new)]

    def feed(self, event: TaskEvent) -> list[ChatEvent]:
        raw = event.raw if isinstance(event.raw, dict) else {}
        message = event.message
        if event.kind in ("task_output", "task_output_full") and isinstance(message, dict):
            if "answer" not in message and "thinking" not in message:
                return []
            events = self._set_thinking(event.thinking, raw) + self._set_answer(event.answer, raw)
            speed = message.get("speed")
            if speed not in (None, ""):
                self.message.usage["speed"] = f"{speed} {message.get('speedType') or ''}".strip()
            return events
        label = _STAGE_LABELS.get(event.kind)
        if event.kind == "socket_lost":
            label = "following by polling"
        if label and label != self.stage and not self.message.answer:
            self.stage = label
            return [self._event("progress", raw, text=label)]
        return []

    def finish(self, task: AsyncTask) -> list[ChatEvent]:
        """The task has ended: make the text exactly the task's final text; record task, cost, timing."""
        events = self._set_thinking(task.thinking, {"final": True}) + self._set_answer(task.text, {"final": True})
        m = self.message
        m.task_id = task.id or None
        m.metadata.update(task_id=task.id, task_token=task.token, status=task.status)
        if task.done and task.elapsed is not None:
            m.metadata["elapsed_s"] = round(float(task.elapsed), 3)
        if task.cost is not None:
            m.metadata["cost"] = task.cost
            m.usage.update(total_price=task.cost, currency="USD")
        return events

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        m = self.message
        m.latency_s = time.monotonic() - self._t0
        m.usage.setdefault("latency", round(m.latency_s, 3))
        if self._first is not None:
            m.metadata["first_token_s"] = round(self._first, 3)
        if self.stop_requested:
            m.metadata["stopped"] = True

    def end(self) -> ChatEvent:
        return self._event("end", {})
