"""Chat result types, shared by the Dify-compatible ("Wbot") chat and the Wiro LLM chat.

Plain dataclasses with no heavy imports: a `ChatMessage` is what a finished
turn returns, a `ChatEvent` is one step of a turn in flight (what widgets and
text progress consume), `AgentThought` and `ChatFile` are their parts.

Notebook display is `_render.chat_message_bundle`: sanitized HTML (the
answer's Markdown rendered in the kernel, the model's thinking as a quote above
it, the assistant's files below, embedded when small) and the answer as text.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .. import _render

T = TypeVar("T")

__all__ = ["AgentThought", "ChatEvent", "ChatFile", "ChatMessage", "Page"]

@dataclass
class ChatFile:
    """A file attached to a turn: one the assistant (or a tool) produced, or one the user sent."""

    id: str = ""
    type: str = ""  # image, document, audio, video, custom
    url: str = ""  # absolute (relative server URLs are resolved by the client)
    filename: str = ""
    mime_type: str = ""
    belongs_to: str = ""  # "assistant" or "user"
    #: The file as a `data:` URL once the kernel fetched it for display ("" when it is linked instead).
    embedded: str | None = field(default=None, init=False, repr=False, compare=False)


@dataclass
class AgentThought:
    """One step of an agent: its thought, the tool it called, the tool's input and result.

    `tool_input` and `observation` are parsed from JSON when the server sent
    JSON strings (Dify does), else they keep the text.
    """

    id: str = ""
    position: int = 0
    thought: str = ""
    tool: str = ""
    tool_input: Any = None
    observation: Any = None
    files: list[str] = field(default_factory=list)

    @property
    def tools(self) -> list[str]:
        """The tool names (Dify joins several with `;`)."""
        return [t for t in (self.tool or "").split(";") if t]


@dataclass(repr=False)
class ChatMessage:
    """One finished chat turn: the answer and everything that came with it.

    `str(message)` is the answer. In a notebook it shows as sanitized HTML (see the module docstring).
    """

    answer: str = ""
    thinking: str = ""
    agent_thoughts: list[AgentThought] = field(default_factory=list)
    files: list[ChatFile] = field(default_factory=list)
    usage: dict[str, Any] = field(default_factory=dict)
    retriever_resources: list[Any] = field(default_factory=list)
    conversation_id: str | None = None
    message_id: str | None = None
    task_id: str | None = None
    session_id: str | None = None  # the Wiro LLM chat's session
    model: str = ""  # model slug (Wiro) or app name (Wbot/Dify)
    query: str = ""  # the user's text
    latency_s: float = 0.0
    created_at: float | None = None  # epoch seconds
    audio: bytes | None = None  # text-to-speech audio, when the app sent it
    backend: str = "wbot"  # "wbot" or "wiro"
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Alias of `answer`."""
        return self.answer

    @property
    def images(self) -> list[ChatFile]:
        return [f for f in self.files if f.type == "image" or f.mime_type.startswith("image/")]

    def __str__(self) -> str:
        return self.answer

    def __repr__(self) -> str:
        answer = self.answer if len(self.answer) <= 60 else self.answer[:57] + "..."
        parts = [f"answer={answer!r}"]
        if self.conversation_id:
            parts.append(f"conversation_id={self.conversation_id!r}")
        if self.message_id:
            parts.append(f"message_id={self.message_id!r}")
        if self.session_id:
            parts.append(f"session_id={self.session_id!r}")
        if self.agent_thoughts:
            parts.append(f"agent_thoughts={len(self.agent_thoughts)}")
        if self.files:
            parts.append(f"files={len(self.files)}")
        if self.usage.get("total_tokens") is not None:
            parts.append(f"total_tokens={self.usage['total_tokens']}")
        parts.append(f"backend={self.backend!r}")
        return f"ChatMessage({', '.join(parts)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return _render.chat_message_bundle(self, include, exclude)


@dataclass
class ChatEvent:
    """One step of a chat turn in flight.

    kind: "text" (a delta in `text`), "replace" (`text` replaces the whole
    answer), "thinking" (a reasoning delta), "agent_thought" (`thought` is the
    merged step so far), "file" (`file`), "end" (the answer is complete; more
    events such as audio may follow), "tts" (an audio chunk), "progress"
    (workflow/node steps; `text` is a short label), "error" (`text` says what
    failed; the turn raises right after).

    `answer` is the full answer so far; `message` is the turn's `ChatMessage`,
    filled in as the turn goes on; `raw` is the event as the server sent it.
    """

    kind: str
    text: str = ""
    raw: dict[str, Any] = field(default_factory=dict)
    thought: AgentThought | None = None
    file: ChatFile | None = None
    answer: str = ""
    message: ChatMessage | None = field(default=None, repr=False, compare=False)


class Page(list[T]):
    """A list of items from one page of a paged listing, plus `has_more` and `limit`."""

    def __init__(self, items: Any = (), *, has_more: bool = False, limit: int | None = None) -> None:
        super().__init__(items)
        self.has_more = has_more
        self.limit = limit

    def __repr__(self) -> str:
        return f"Page({list.__repr__(self)}, has_more={self.has_more})"


class ChatListeners:
    """Listeners of every turn's ChatEvents, whoever sent the turn: how a widget follows a chat.

    Shared by the Wiro LLM chat and the Dify-compatible chat, so one `ChatView` follows both.
    A `ChatEvent` with `message=None` and `raw["new_session"]` says that `new()` started over.
    """

    _listeners: list[Callable[[ChatEvent], Any]]

    def add_listener(self, listener: Callable[[ChatEvent], Any]) -> None:
        """Call `listener(event)` for every ChatEvent of every turn (on the loop the chat runs on)."""
        self.__dict__.setdefault("_listeners", []).append(listener)

    def remove_listener(self, listener: Callable[[ChatEvent], Any]) -> None:
        with contextlib.suppress(ValueError):
            self.__dict__.setdefault("_listeners", []).remove(listener)

    def _notify(self, event: ChatEvent) -> ChatEvent:
        for listener in list(self.__dict__.get("_listeners", ())):
            try:
                listener(event)
            except Exception:  # a display bug must never break a conversation
                logging.getLogger("wiro_jupyter").exception("chat listener failed")
        return event
