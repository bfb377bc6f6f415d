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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._exceptions import AuthenticationError, ValidationError
from ._messages import ChatMessage

if TYPE_CHECKING:
    from ._chat import Chat
    from ._dify import WbotChat
    from .widgets._chat import ChatView

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


@dataclass
class ChatSession:
    """One named conversation: its backend ("wiro" or "wbot"), model, chat, and the turns sent through it."""

    name: str
    backend: str
    model: str  # owner/model for "wiro"; "" for "wbot" (the app is chosen by its key)
    chat: Any  # Chat | WbotChat
    created_at: float = field(default_factory=time.time)
    _wbot_history: list[ChatMessage] = field(default_factory=list, repr=False)

    @property
    def label(self) -> str:
        """'wiro/chat-llm' or 'the Wbot chat app'."""
        return self.model if self.backend == "wiro" else "the Wbot chat app"

    @property
    def conversation(self) -> str | None:
        """The server's id of the conversation: `session_id` (Wiro) or `conversation_id` (Wbot; None before the first answer)."""
        if self.backend == "wiro":
            return str(self.chat.session_id)
        return self.chat.conversation_id

    @property
    def history(self) -> list[ChatMessage]:
        """The finished turns of the current conversation (Wbot: those recorded with `record()`)."""
        if self.backend == "wiro":
            return list(self.chat.history)
        return list(self._wbot_history)

    def record(self, message: ChatMessage) -> None:
        """Keep a finished Wbot turn for `history` / `widget()` (a Wiro chat keeps its own history)."""
        if self.backend == "wbot":
            self._wbot_history.append(message)

    def new(self) -> None:
        """Start over: a new conversation with the same backend, model and settings."""
        self.chat.new()
        self._wbot_history = []

    def widget(self, **kwargs: Any) -> ChatView:
        """A chat widget with this conversation so far (and, for Wiro, every later turn, live)."""
        from .widgets._chat import ChatView

        kwargs.setdefault("messages", self.history)
        return ChatView(self.chat, **kwargs)


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
    from ._chat import _check_slug, default_chat_model

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
            stale = "" if switch else _stale(session)
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
        session = ChatSession(name=name, backend=backend, model=chosen, chat=_make_chat(backend, chosen))
        _SESSIONS[name] = session
        _remember(wanted, model)
        return session, note


def chat_session(
    name: str = DEFAULT_SESSION, *, model: str | None = None, wbot: bool = False, new: bool = False
) -> Chat | WbotChat:
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


def _stale(session: ChatSession) -> str:
    """Why the session's chat no longer matches the environment ('' when it does): e.g. after %wiro login."""
    if session.backend == "wbot":
        from ._dify import DEFAULT_WBOT_URL

        key = os.environ.get("WBOT_API_KEY", "").strip() or None
        url = (os.environ.get("WBOT_API_URL", "").strip() or DEFAULT_WBOT_URL).rstrip("/")
        if key != session.chat.api_key or url != session.chat.base_url:
            return "WBOT_API_KEY or WBOT_API_URL changed"
        return ""
    from ._config import Settings

    if session.chat.client.settings != Settings.resolve():
        return "the Wiro API key or URL changed"
    return ""


def _make_chat(backend: str, model: str) -> Any:
    if backend == "wbot":
        if not os.environ.get("WBOT_API_KEY", "").strip():
            raise AuthenticationError("No API key for the Wbot chat.", hint=_WBOT_KEY_HINT, code="no_api_key")
        from ._dify import WbotChat

        return WbotChat()
    from ._chat import Chat
    from ._config import Settings

    if not Settings.resolve().api_key:
        raise AuthenticationError("No Wiro API key is set.", hint=_WIRO_KEY_HINT, code="no_api_key")
    return Chat(model)
