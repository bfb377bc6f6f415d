"""Wiro LLM chat: a conversation with a Wiro language model, kept on the server by `session_id`.

    chat = Chat("wiro/chat-llm", temperature=0.3)      # WIRO_API_KEY etc. from the environment
    reply = chat.send("Hello")                          # a ChatMessage: answer, thinking, task id, timing
    for event in chat.stream("And then?"):              # ChatEvents: progress, thinking / text deltas, end
        print(event.text, end="")
    chat.reset()                                        # a fresh session_id: the model starts over

Each `send()` runs the model once (`AsyncWiro.run`) with the chat's `session_id` and
`user_id` (when the model declares them), so the server keeps the history. The task's
events (cumulative LLM snapshots, see `_task`) become the same `ChatEvent` kinds the
Dify-compatible chat (`wiro_jupyter.dify`) emits, and a turn ends as the same `ChatMessage`
(`backend="wiro"`), so one widget and one magic serve both backends:

- "progress": the turn was sent / the task is queued / running (`text` is a short label);
- "thinking" / "text": deltas of the reasoning and of the answer ("replace" when a
  snapshot did not extend the previous one; `text` is then the whole answer);
- "end": the turn is complete (the last event; the answer is the task's final text, exact);
- "error": the turn failed (`text` says why); the exception is raised right after.

Stopping: `stop()` (from another thread or task, or inside a `stream()` loop) cancels or
kills the task on the server; the turn then ends normally with what arrived and
`message.metadata["stopped"] = True`. Leaving a `stream()` early, Ctrl-C in a blocking
call and cancelling an awaiting coroutine stop the task too.

Layout: `_WiroTurn` (`_turn.py`) is the sans-I/O state of one turn (TaskEvents in, ChatEvents out);
`AsyncChat` does the I/O once, asynchronously; `Chat` is the blocking flavour, a thin
wrapper running the async core on the package's private loop (`_loop`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from .. import _loop
from .._delegate import Delegated
from .._exceptions import ValidationError, WiroError
from .._models import split_slug
from ._messages import ChatEvent, ChatListeners, ChatMessage
from ._turn import _WiroTurn

if TYPE_CHECKING:
    from .._client import AsyncWiro, Wiro
    from .._models import Model
    from .._task import AsyncTask, Task
    from ..widgets._chat import ChatView

__all__ = ["DEFAULT_CHAT_MODEL", "AsyncChat", "Chat", "default_chat_model"]

log = logging.getLogger("wiro_jupyter")

#: The model a chat uses when none is given (WIRO_CHAT_MODEL overrides it).
DEFAULT_CHAT_MODEL = "wiro/chat-llm"

ChatListener = Callable[[ChatEvent], Any]

# What the chat sets itself: passing them as model parameters is a mistake.
_RESERVED = ("session_id", "user_id")
_process_user: str | None = None


def default_chat_model() -> str:
    """WIRO_CHAT_MODEL, else `wiro/chat-llm`."""
    return os.environ.get("WIRO_CHAT_MODEL", "").strip() or DEFAULT_CHAT_MODEL


def default_user() -> str:
    """The `user_id` this process sends (WIRO_CHAT_USER, else one generated per process)."""
    global _process_user
    env = os.environ.get("WIRO_CHAT_USER", "").strip()
    if env:
        return env
    if _process_user is None:
        _process_user = "wiro-jupyter-" + uuid.uuid4().hex[:12]
    return _process_user


def new_session_id() -> str:
    return str(uuid.uuid4())


def _check_slug(model: str) -> str:
    owner, project = split_slug(model)
    return f"{owner}/{project}"


# --------------------------------------------------------------------------- async core


class AsyncChat(ChatListeners):
    """A conversation with a Wiro LLM, for `async` code.

    >>> chat = AsyncChat("wiro/chat-llm", temperature=0.2)   # doctest: +SKIP
    >>> reply = await chat.send("Hello")                       # the server keeps the history
    >>> async for event in chat.stream("And?"):                # ChatEvents as they arrive
    ...     print(event.text, end="")

    `client` is an `AsyncWiro` used on the loop you await this chat from (by default
    one of its own, created on first use; `aclose()` closes it). `params` are model
    parameters sent with every message (`temperature`, `system_prompt`, `max_tokens`,
    …); `send(text, **params)` adds or overrides them for one message. They are
    checked against the model's definition before anything is sent.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        client: AsyncWiro | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        **params: Any,
    ) -> None:
        self.model = _check_slug(model or default_chat_model())
        if client is not None and _is_blocking_client(client):
            raise TypeError("AsyncChat(client=...) takes an AsyncWiro; for a Wiro (blocking) client use Chat(client=...).")
        self._client = client
        self._owns_client = client is None
        self.session_id = session_id or new_session_id()
        self.user_id = user_id or default_user()
        _check_params(params)
        self.params: dict[str, Any] = dict(params)
        self.turns: list[ChatMessage] = []
        self.last: ChatMessage | None = None
        self.last_task: AsyncTask | None = None
        self._turn: _WiroTurn | None = None
        self._unfinished: AsyncTask | None = None

    # -- configuration

    @property
    def client(self) -> AsyncWiro:
        if self._client is None:
            from .._client import AsyncWiro

            self._client = AsyncWiro()
        return self._client

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self.model!r}, session_id={self.session_id!r}, "
            f"turns={len(self.turns)}" + (f", params={self.params!r}" if self.params else "") + ")"
        )

    def new(self) -> AsyncChat:
        """Start a fresh conversation: a new `session_id` (the model forgets), an empty history."""
        self.session_id = new_session_id()
        self.turns = []
        self.last = None
        self._notify(ChatEvent(kind="progress", text="new conversation", raw={"new_session": self.session_id}))
        return self

    reset = new

    @property
    def busy(self) -> bool:
        """True while a turn is in flight."""
        return self._turn is not None and not self._turn.finished

    async def aclose(self) -> None:
        """Close the client this chat created itself (not one passed in)."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> AsyncChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- a turn

    async def send(self, text: str, *, on_event: ChatListener | None = None, **params: Any) -> ChatMessage:
        """Send `text`, stream the reply, and return the finished ChatMessage.

        `on_event` gets every ChatEvent (it may be a coroutine function). Raises
        ValidationError (nothing sent), TaskFailedError (the model failed), or another
        WiroError; an "error" event precedes it, and the exception's `.partial_message`
        holds what arrived.
        """
        turn = self._new_turn(text, params)
        async with contextlib.aclosing(self._run(turn)) as events:
            async for event in events:
                if on_event is not None:
                    result = on_event(event)
                    if inspect.isawaitable(result):
                        await result
        return turn.message

    async def stream(self, text: str, **params: Any) -> AsyncIterator[ChatEvent]:
        """Send `text` and yield ChatEvents as they arrive; leaving the loop early stops the task."""
        turn = self._new_turn(text, params)
        async with contextlib.aclosing(self._run(turn)) as events:
            async for event in events:
                yield event

    async def stop(self) -> bool:
        """Stop the answer in flight (cancel or kill its task); the turn ends with what arrived.

        Returns False when nothing is in flight. Safe from another task or from inside a
        `stream()` loop (and, on `Chat`, from another thread).
        """
        turn = self._turn
        if turn is not None and not turn.finished:
            turn.stop_requested = True
            if turn.task is not None:
                await self._stop_task(turn)
            # Without a task yet, the turn stops it as soon as the Run request returns.
            return True
        task, self._unfinished = self._unfinished, None
        if task is not None and not task.done:
            with contextlib.suppress(WiroError):
                await task.stop()
            return True
        return False

    async def _stop_task(self, turn: _WiroTurn) -> None:
        """One stop request per turn, however many callers ask (a second Task/Kill would be refused)."""
        assert turn.task is not None
        if turn.stop_job is None:
            turn.stop_job = asyncio.ensure_future(turn.task.stop())
        with contextlib.suppress(WiroError):
            await asyncio.shield(turn.stop_job)

    def _new_turn(self, text: str, params: dict[str, Any]) -> _WiroTurn:
        if not isinstance(text, str):
            raise ValidationError(
                f"The message must be a str, not {type(text).__name__}.", hint="Pass the text to send.", code="invalid_argument"
            )
        if not text.strip():
            raise ValidationError("The message is empty.", hint="Pass the text to send.", code="invalid_argument")
        _check_params(params)
        merged = {**self.params, **params}
        return _WiroTurn(text, merged, model=self.model, session_id=self.session_id, user_id=self.user_id)

    def _inputs(self, model: Model, turn: _WiroTurn) -> dict[str, Any]:
        main = model.main_text_parameter
        if main is None:
            raise ValidationError(
                f"{model.slug} takes no text prompt, so it cannot chat.",
                hint="Pick a language model (category 'llm' or 'chat': Wiro().models(categories='llm')).",
            )
        if main.id in turn.params:
            raise ValidationError(
                f"{main.id!r} is the chat message itself; it cannot also be a parameter.",
                hint="Pass the text to send() and leave it out of the parameters.",
            )
        ids = {p.id for p in model.parameters}
        inputs = dict(turn.params)
        inputs[main.id] = turn.query
        if "session_id" in ids:
            inputs["session_id"] = self.session_id
        if "user_id" in ids:
            inputs["user_id"] = self.user_id
        turn.message.metadata["memory"] = "session_id" in ids  # False: every turn stands alone
        return inputs

    async def _run(self, turn: _WiroTurn) -> AsyncGenerator[ChatEvent, None]:
        if self.busy:
            raise WiroError(
                "Another answer is still streaming on this chat.",
                hint="Wait for it, or call chat.stop(), before sending again; use a second chat for parallel turns.",
                code="turn_in_flight",
            )
        self._turn = turn
        try:
            yield self._notify(turn.start())
            client = self.client
            model = await client.model(self.model)
            inputs = self._inputs(model, turn)
            task = await client.run(self.model, inputs, wait=False)
            turn.task = self.last_task = task
            if turn.stop_requested:
                await self._stop_task(turn)
            async for event in task.events():
                for chat_event in turn.feed(event):
                    yield self._notify(chat_event)
            for chat_event in turn.finish(task):
                yield self._notify(chat_event)
            turn.close()
            if not (turn.stop_requested and task.status == "task_cancel"):
                await task.wait()  # raises when the model failed, or the task was stopped by someone else
            self.last = turn.message
            self.turns.append(turn.message)
            turn.finished = True
            yield self._notify(turn.end())
        except WiroError as exc:
            turn.close()
            exc.partial_message = turn.message
            turn.message.metadata["error"] = str(exc)
            turn.finished = True
            yield self._notify(turn._event("error", {}, text=str(exc)))
            raise
        except BaseException:
            # Cancelled, closed early, or the consumer raised: the paid task must not run on unseen.
            task_ = turn.task
            if task_ is not None and not task_.done:
                self._unfinished = task_
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(self._stop_task(turn), 15)
                if task_.done:
                    self._unfinished = None
            raise
        finally:
            turn.finished = True
            turn.close()
            if self._turn is turn:
                self._turn = None

    # -- display

    def widget(self, **kwargs: Any) -> ChatView:
        """A chat widget bound to this chat: the whole conversation, live, with an input box and Stop.

        Create it inside the event loop this chat runs on (its buttons run the chat there).
        """
        from ..widgets._chat import ChatView

        return ChatView(self, **kwargs)


def _is_blocking_client(client: Any) -> bool:
    from .._client import AsyncWiro

    return not isinstance(client, AsyncWiro)


def _check_params(params: dict[str, Any]) -> None:
    for name in _RESERVED:
        if name in params:
            raise ValidationError(
                f"{name!r} is set by the chat itself.",
                hint=f"Pass {name}= to Chat(...) instead (or call chat.new() for a fresh session).",
                code="invalid_argument",
            )


# --------------------------------------------------------------------------- sync flavour


class Chat:
    """A conversation with a Wiro LLM: the blocking API (scripts, threads and notebooks alike).

    >>> chat = Chat("wiro/chat-llm", temperature=0.2)    # doctest: +SKIP
    >>> print(chat.send("Hello"))                        # the answer; the conversation continues
    >>> for event in chat.stream("And then?"):           # ChatEvents as they arrive
    ...     print(event.text, end="")
    >>> chat.widget()                                    # the whole conversation, with an input box

    Every method runs the async core (`chat.aio`, an AsyncChat) on the package's private
    event loop, with `client` (a `Wiro`; the default client of the environment when not
    given). Ctrl-C during send()/stream() stops the task on the server, then re-raises.
    `on_event` of send() is called in the calling thread; listeners (`add_listener`, how
    a widget follows the chat) on the package's loop thread.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        client: Wiro | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        **params: Any,
    ) -> None:
        if client is None:
            from .._client import default_client

            client = default_client()
        elif not hasattr(client, "aio"):
            raise TypeError("Chat(client=...) takes a Wiro; for an AsyncWiro use AsyncChat(client=...).")
        self.client = client
        self.aio = AsyncChat(model, client=client.aio, session_id=session_id, user_id=user_id, **params)

    # -- state, shared with the async core

    model: Delegated[str] = Delegated("aio")

    @property
    def session_id(self) -> str:
        return self.aio.session_id

    @session_id.setter
    def session_id(self, value: str) -> None:
        self.aio.session_id = value or new_session_id()

    @property
    def user_id(self) -> str:
        return self.aio.user_id

    @user_id.setter
    def user_id(self, value: str) -> None:
        self.aio.user_id = value or default_user()

    @property
    def params(self) -> dict[str, Any]:
        return self.aio.params

    @params.setter
    def params(self, value: dict[str, Any]) -> None:
        _check_params(dict(value or {}))
        self.aio.params = dict(value or {})

    turns: Delegated[list[ChatMessage]] = Delegated("aio")

    # -- what a kept session needs (chat._sessions.ChatBackend)
    backend = "wiro"

    @property
    def label(self) -> str:
        """Who answers: the model's slug."""
        return self.model

    @property
    def conversation(self) -> str:
        """The server's id of the conversation: the `session_id` sent with every turn."""
        return self.session_id

    def changed_environment(self) -> str:
        """Why this chat no longer matches WIRO_* (e.g. after `%wiro login`); '' when it does."""
        from .._config import Settings

        return "the Wiro API key or URL changed" if self.client.settings != Settings.resolve() else ""

    last: Delegated[ChatMessage | None] = Delegated("aio")

    @property
    def last_task(self) -> Task | None:
        """The task of the last turn (a `Task`), e.g. for its event log."""
        from .._task import Task

        return Task(self.aio.last_task) if self.aio.last_task is not None else None

    busy: Delegated[bool] = Delegated("aio")

    def __repr__(self) -> str:
        return repr(self.aio).replace("AsyncChat(", "Chat(", 1)

    def new(self) -> Chat:
        """Start a fresh conversation: a new `session_id` (the model forgets), an empty history."""
        self.aio.new()
        return self

    reset = new

    def add_listener(self, listener: ChatListener) -> None:
        """Call `listener(event)` for every ChatEvent of every turn (on the package's loop thread)."""
        self.aio.add_listener(listener)

    def remove_listener(self, listener: ChatListener) -> None:
        self.aio.remove_listener(listener)

    # -- a turn

    def stream(self, text: str, **params: Any) -> Iterator[ChatEvent]:
        """Send `text` and yield ChatEvents as they arrive (see AsyncChat.stream)."""
        from .._loop import iterate_sync

        turn = self.aio._new_turn(text, params)
        return iterate_sync(self.aio._run(turn), on_interrupt=self.aio.stop, on_abandon=self.aio.stop)

    def send(self, text: str, *, on_event: ChatListener | None = None, **params: Any) -> ChatMessage:
        """Send `text` and return the finished ChatMessage; `on_event` gets each ChatEvent in this thread."""
        from .._loop import iterate_sync

        turn = self.aio._new_turn(text, params)
        events = iterate_sync(self.aio._run(turn), on_interrupt=self.aio.stop, on_abandon=self.aio.stop)
        try:
            for event in events:
                if on_event is not None:
                    on_event(event)
        finally:
            events.close()  # an error in on_event: close the stream now and stop the task
        return turn.message

    def stop(self) -> bool:
        """Stop the answer in flight; callable from another thread while send() runs."""
        return _loop.run_sync(self.aio.stop())

    def widget(self, **kwargs: Any) -> ChatView:
        """A chat widget bound to this chat: the whole conversation, live, with an input box and Stop."""
        from ..widgets._chat import ChatView

        return ChatView(self, **kwargs)


for _name in ("send", "stream", "stop"):
    getattr(Chat, _name).__doc__ = getattr(Chat, _name).__doc__ or getattr(AsyncChat, _name).__doc__
del _name
