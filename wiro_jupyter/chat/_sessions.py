"""Named chat conversations kept per process (per kernel): the Python call behind `%%wchat`.

    chat = chat_session()                          # the notebook's conversation (a Wiro LLM by default)
    chat.send("Hello"); chat.send("And then?")     # one conversation: the model remembers
    chat = chat_session(model="owner/other-llm")   # another model: a new conversation (a note says so)
    chat = chat_session("support", wbot=True)      # a second, named conversation, with the Wbot app
    chat = chat_session(new=True)                  # the same chat object, starting over

A session is a name → one `Chat` (Wiro LLM, the same `session_id` turn after turn) or
one `WbotChat` (Dify-compatible app, the same `conversation_id`). The backend and the
model, once chosen, are remembered: for the session itself, and as the default of new
sessions. Choosing another backend or model for an existing session starts a new
conversation there and says so (on stderr from `chat_session`; `open_session` returns
the note instead, for callers that show it themselves).

No IPython or widget import here: this is protocol-layer bookkeeping.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from .._exceptions import AuthenticationError, ValidationError
from ._messages import ChatEvent, ChatMessage

if TYPE_CHECKING:
    from ..widgets._chat import ChatView

__all__ = ["DEFAULT_SESSION", "ChatSession", "chat_session", "forget_sessions", "open_session", "sessions"]

DEFAULT_SESSION = "default"

_WIRO_KEY_HINT = (
    "Set WIRO_API_KEY (and WIRO_API_SECRET for a signature project); in a notebook %wiro login asks for them. "
    "To try without an account: wiro_jupyter.use_emulator() (or %wiro emulator start)."
)
_WBOT_KEY_HINT = (
    "Set WBOT_API_KEY to the chat app's own API key (Dify keys start with 'app-'; in a notebook: "
    "%env WBOT_API_KEY=app-...), and WBOT_API_URL when the app is not on Wbot "
    "(e.g. http://your-dify-host/v1)."
)


class ChatBackend(Protocol):
    """What a kept session needs from a chat: `Chat` (a Wiro LLM) and `WbotChat` (a Dify-compatible app)."""

    backend: str  # "wiro" or "wbot"

    @property
    def label(self) -> str: ...  # who answers, for notes: "wiro/chat-llm", "the Wbot chat app"

    @property
    def conversation(self) -> str | None: ...  # the server's id of the conversation

    @property
    def turns(self) -> list[ChatMessage]: ...  # the finished turns of the current conversation

    def changed_environment(self) -> str: ...  # why its key or URL no longer match the environment; ''

    def new(self) -> Any: ...

    def send(self, text: str, *, on_event: Callable[[ChatEvent], Any] | None = None) -> ChatMessage: ...

    def stream(self, text: str) -> Iterator[ChatEvent]: ...

    def stop(self) -> bool: ...

    def widget(self, **kwargs: Any) -> ChatView: ...


@dataclass
class ChatSession:
    """One named conversation: its chat (either backend), the model chosen for it, when it began."""

    name: str
    chat: ChatBackend
    model: str  # owner/model of a Wiro LLM; "" for a Dify-compatible app (the key chooses the app)
    created_at: float = field(default_factory=time.time)

    @property
    def backend(self) -> str:
        return self.chat.backend

    @property
    def label(self) -> str:
        return self.chat.label

    @property
    def conversation(self) -> str | None:
        return self.chat.conversation

    @property
    def turns(self) -> list[ChatMessage]:
        return list(self.chat.turns)

    def new(self) -> None:
        """Start over: a new conversation with the same backend, model and settings."""
        self.chat.new()

    def widget(self, **kwargs: Any) -> ChatView:
        """A chat widget with this conversation so far, and every later turn, live."""
        kwargs.setdefault("messages", self.turns)
        return self.chat.widget(**kwargs)


_lock = threading.RLock()
_SESSIONS: dict[str, ChatSession] = {}
# The last explicit choice: the default of sessions created later ("remembered for the notebook").
_choice: dict[str, str | None] = {"backend": None, "model": None}


def open_session(
    name: str = DEFAULT_SESSION, *, model: str | None = None, wbot: bool = False, new: bool = False
) -> tuple[ChatSession, str]:
    """The kept session `name` (created on first use) and a note ('' when there is nothing to say).

    `model` (a Wiro LLM) or `wbot=True` chooses the backend; neither keeps what the session
    (or, for a new session, the notebook) chose last. A different choice for an existing
    session starts a new conversation there; the note says so. `new=True` starts over.
    Raises ValidationError for a bad model slug or `model` with `wbot`, AuthenticationError
    when the backend's API key is missing (nothing is kept then).
    """
    from ._wiro import _check_slug, default_chat_model

    name = (name or "").strip() or DEFAULT_SESSION
    if wbot and model:
        raise ValidationError(
            "A Wbot session has no model to choose: the app is the one of WBOT_API_KEY.",
            hint="Drop the model, or drop wbot=True (--wbot) to chat with that Wiro model.",
            code="invalid_argument",
        )
    if model:
        model = _check_slug(model)
    wanted = "wbot" if wbot else ("wiro" if model else None)
    with _lock:
        session = _SESSIONS.get(name)
        note = ""
        if session is not None:
            switch = (wanted == "wbot" and session.backend != "wbot") or (
                wanted == "wiro" and (session.backend != "wiro" or session.model.lower() != str(model).lower())
            )
            stale = "" if switch else session.chat.changed_environment()
            if not switch and not stale:
                if new:
                    session.new()
                _remember(wanted, model)
                return session, ""
            if stale:
                wanted, model = session.backend, model or (session.model if session.backend == "wiro" else None)
                note = f"Chat session {name!r}: {stale}; starting a new conversation."
            else:
                target = "the Wbot chat app" if wanted == "wbot" else str(model)
                note = (
                    f"Chat session {name!r} was a conversation with {session.label}; starting a new conversation with {target}."
                )
        backend = wanted or _choice["backend"] or "wiro"
        chosen = model or (_choice["model"] if backend == "wiro" else None) or (default_chat_model() if backend == "wiro" else "")
        session = ChatSession(name=name, chat=_make_chat(backend, chosen), model=chosen)
        _SESSIONS[name] = session
        _remember(wanted, model)
        return session, note


def chat_session(
    name: str = DEFAULT_SESSION, *, model: str | None = None, wbot: bool = False, new: bool = False
) -> ChatBackend:
    """The kept chat of session `name`: a `Chat` (Wiro LLM) or a `WbotChat`. See `open_session`."""
    session, note = open_session(name, model=model, wbot=wbot, new=new)
    if note:
        sys.stderr.write(note + "\n")
    return session.chat


def sessions() -> dict[str, ChatSession]:
    """The sessions kept so far, by name."""
    with _lock:
        return dict(_SESSIONS)


def forget_sessions() -> None:
    """Drop every session and the remembered choice (the next chat_session() starts from scratch)."""
    with _lock:
        _SESSIONS.clear()
        _choice.update(backend=None, model=None)


def _remember(backend: str | None, model: str | None) -> None:
    if backend is not None:
        _choice["backend"] = backend
    if model:
        _choice["model"] = model


def _make_chat(backend: str, model: str) -> ChatBackend:
    if backend == "wbot":
        if not os.environ.get("WBOT_API_KEY", "").strip():
            raise AuthenticationError("No API key for the Wbot chat.", hint=_WBOT_KEY_HINT, code="no_api_key")
        from ..dify._sync import WbotChat

        return WbotChat()
    from .._config import Settings
    from ._wiro import Chat

    if not Settings.resolve().api_key:
        raise AuthenticationError("No Wiro API key is set.", hint=_WIRO_KEY_HINT, code="no_api_key")
    return Chat(model)
