"""`WbotChat`: the blocking flavour of the Dify-compatible chat, a thin wrapper that runs the
async core (`AsyncWbotChat`, in `_client.py`) on the package's private event loop."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from .. import _loop
from .._delegate import Delegated
from ..chat._messages import ChatEvent, ChatMessage, Page
from ._client import AsyncWbotChat
from ._errors import DEFAULT_WBOT_URL

if TYPE_CHECKING:
    from typing_extensions import TypedDict, Unpack

    from ..widgets._chat import ChatView

    class WbotOptions(TypedDict, total=False):
        """The keyword options of `AsyncWbotChat` (and so of `WbotChat`)."""

        user: str | None
        conversation_id: str | None
        inputs: dict[str, Any] | None
        timeout: float | httpx.Timeout | None
        max_retries: int
        transport: httpx.AsyncBaseTransport | None
        max_response_bytes: int

__all__ = ["WbotChat"]


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

    def __init__(self, api_key: str | None = None, base_url: str | None = None, **options: Unpack[WbotOptions]) -> None:
        """The options are `AsyncWbotChat`'s (user, conversation_id, inputs, timeout, max_retries, …)."""
        self.aio = AsyncWbotChat(api_key, base_url, **options)

    # -- state, shared with the async core

    api_key: Delegated[str | None] = Delegated("aio", settable=True)

    @property
    def base_url(self) -> str:
        return self.aio.base_url

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.aio.base_url = value.rstrip("/")

    api_root: Delegated[str] = Delegated("aio")
    user: Delegated[str] = Delegated("aio", settable=True)

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

    last: Delegated[ChatMessage | None] = Delegated("aio")
    turns: Delegated[list[ChatMessage]] = Delegated(
        "aio", doc="The finished turns of the current conversation sent from here (`history()` pages the server's)."
    )

    # -- what a kept session needs (chat._sessions.ChatBackend)
    backend = "wbot"

    @property
    def label(self) -> str:
        """Who answers: the app (its name once `info()` has been read)."""
        name = self.aio._app_name()
        return f"the chat app {name!r}" if name else "the Wbot chat app"

    @property
    def conversation(self) -> str | None:
        """The server's id of the conversation (None before the first answer)."""
        return self.conversation_id

    def changed_environment(self) -> str:
        """Why this chat no longer matches WBOT_API_KEY / WBOT_API_URL (e.g. after `%env`); '' when it does."""
        key = os.environ.get("WBOT_API_KEY", "").strip() or None
        url = (os.environ.get("WBOT_API_URL", "").strip() or DEFAULT_WBOT_URL).rstrip("/")
        return "WBOT_API_KEY or WBOT_API_URL changed" if key != self.api_key or url != self.base_url else ""

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

    def widget(self, **kwargs: Any) -> ChatView:
        """A chat widget bound to this chat: the whole conversation, live, with an input box and Stop."""
        from ..widgets._chat import ChatView

        return ChatView(self, **kwargs)


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
