"""Dify-compatible chat ("Wbot"): the protocol client.

Talks to any Dify Service API chat app: Wbot (`https://servicewbot.ecylt.top/v1`,
the default), Dify Cloud, or a self-hosted Dify (`http://host/v1`). Chat,
agent-chat and chatflow (advanced-chat) apps all work; their event sets are
folded into one stream of typed `ChatEvent`s and one finished `ChatMessage`.

Layout: `AsyncWbotChat` does the I/O once, asynchronously; `WbotChat` is the
synchronous flavour, a thin wrapper that runs the async core on the package's
private loop (`_loop`). Around them, without client state:

- `_turn`: `_Turn`, the sans-I/O state machine of one turn (feed it event
  dicts, it returns ChatEvents and builds the ChatMessage), and the wire rules;
- `_errors`: Dify error envelopes and transport failures → our exceptions,
  the retry policy, blocking-mode answers as events;
- `_files`: Dify file dicts ↔ ChatFile, file types, remote URLs, reading
  what gets uploaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import uuid
from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any

import httpx

from .._config import mask
from .._exceptions import AuthenticationError, WiroConnectionError, WiroError, WiroTimeoutError, register_secret
from .._fields import list_field, object_list, require_object, to_text
from .._transport import DEFAULT_MAX_BODY, Answer, HttpCore
from ..chat._messages import AgentThought, ChatEvent, ChatListeners, ChatMessage, Page
from ._errors import (
    _KEY_HINT,
    _TURN_UNSURE_HINT,
    DEFAULT_WBOT_URL,
    DIFY,
    _bad_arg,
    _non_stream_events,
    _transport_error,
)
from ._files import _api_root, _chat_file, _file_type, _read_source, _remote_file
from ._turn import _merge_thought, _ordered, _Turn

if TYPE_CHECKING:
    from ..widgets._chat import ChatView

__all__ = ["DEFAULT_WBOT_URL", "AsyncWbotChat", "ChatEvent"]

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


class _Done:
    """End-of-stream marker from the reader task (with the error that ended it, if any)."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


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
        transport: httpx.AsyncBaseTransport | None = None,
        max_response_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self._api_key: str | None = None
        self.api_key = api_key if api_key is not None else os.environ.get("WBOT_API_KEY") or None
        self.base_url = (base_url or os.environ.get("WBOT_API_URL") or DEFAULT_WBOT_URL).rstrip("/")
        self.user = user or default_user()
        self.conversation_id = conversation_id or None
        self.inputs: dict[str, Any] = dict(inputs or {})
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0) if timeout else 15.0)
        #: The HTTP core (pool, retry policy, caps); `http.retry_base` is the first retry delay.
        self.http = HttpCore(
            timeout=timeout, max_retries=max_retries, retry_base=0.5, max_body=max_response_bytes, transport=transport
        )
        self.last: ChatMessage | None = None
        #: The finished turns of the current conversation sent from here (`history()` pages the server's).
        self.turns: list[ChatMessage] = []
        self._app: dict[str, Any] = {}
        self._turn: _Turn | None = None
        self._unfinished_task_id: str | None = None

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
        self.turns = []
        self._notify(ChatEvent(kind="progress", text="new conversation", raw={"new_session": True}))
        return self

    reset = new

    # -- HTTP

    async def aclose(self) -> None:
        """Close the connection pool of the running loop."""
        await self.http.aclose()

    async def __aenter__(self) -> AsyncWbotChat:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _headers(self) -> dict[str, str]:
        if not self._api_key:
            raise AuthenticationError("No API key for the Wbot/Dify chat.", hint=_KEY_HINT, code="no_api_key")
        return {"Authorization": f"Bearer {self._api_key}"}

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        files: Any = None,
        data: dict[str, Any] | None = None,
        idempotent: bool = True,
    ) -> Answer:
        return await self.http.request(
            method,
            self.base_url + path,
            service=DIFY,
            headers=self._headers,
            idempotent=idempotent,
            json=json_body,
            params=params,
            files=files,
            data=data,
        )

    async def _json(self, method: str, path: str, **kw: Any) -> dict[str, Any]:
        """The answer's JSON object ({} for an empty answer)."""
        answer = await self._request(method, path, **kw)
        if answer.status == 204 or not answer.content:
            return {}
        try:
            payload = answer.json()
        except ValueError:
            raise WiroError(
                f"The chat server answered {method} {path} with something that is not JSON.",
                hint="Check base_url: it must be a Dify Service API root ending in /v1.",
                status_code=answer.status,
            ) from None
        return require_object(payload, f"{method} {path}")

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
            return _remote_file(item)
        content, filename, mime = await _read_source(item, None, None)
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
                failure.partial_message = turn.message
                turn.message.metadata["error"] = str(failure)
                if not turn.error_announced:
                    turn.error_announced = True
                    yield self._notify(turn._event("error", {}, text=str(failure)))
                raise failure
            completed = True
            self.last = turn.message
            self.turns.append(turn.message)
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
        url = self.base_url + "/chat-messages"
        turn.restart_clock()  # latency counts from the request, not from file uploads
        try:
            # A turn is paid work: sent once (see _transport), never again after a 5xx or a timeout.
            async with self.http.stream(
                "POST",
                url,
                service=DIFY,
                headers=self._stream_headers,
                idempotent=False,
                unsure_hint=_TURN_UNSURE_HINT,
                json=body,
            ) as response:
                if "text/event-stream" not in response.headers.get("content-type", "").lower():
                    content = await self.http.read(response, DIFY)
                    for data in _non_stream_events(content, response.status_code):
                        queue.put_nowait(data)
                    return
                turn.started = True
                async for sse in self.http.sse_events(response):
                    if sse.event == "ping" or not sse.data.strip():
                        continue
                    try:
                        data = sse.json()
                    except ValueError:
                        continue  # e.g. an OpenAI-style "[DONE]" from a proxy
                    if isinstance(data, dict):
                        queue.put_nowait(data)
        except httpx.TransportError as exc:  # while reading the stream (the core words errors before it)
            raise _transport_error(exc, self.base_url, streaming=turn.started) from exc

    def _stream_headers(self) -> dict[str, str]:
        return {**self._headers(), "Accept": "text/event-stream", "Cache-Control": "no-store"}

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
        items = object_list(body, "data", "GET /conversations")
        return Page(items, has_more=body.get("has_more") is True, limit=body.get("limit"))

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
        items = object_list(body, "data", "GET /messages")
        # Current Dify sends each page oldest first, older versions newest first: normalise.
        if len(items) >= 2 and (items[0].get("created_at") or 0) > (items[-1].get("created_at") or 0):
            items.reverse()
        return Page(
            [self._history_message(item) for item in items],
            has_more=body.get("has_more") is True,
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
        where = "GET /messages"
        thoughts: dict[str, AgentThought] = {}
        for raw in object_list(item, "agent_thoughts", where):
            _merge_thought(thoughts, raw)
        feedback = item.get("feedback")
        created = item.get("created_at")
        return ChatMessage(
            answer=to_text(item.get("answer")),
            query=to_text(item.get("query")),
            conversation_id=to_text(item.get("conversation_id")) or None,
            message_id=to_text(item.get("id")) or None,
            agent_thoughts=_ordered(thoughts),
            files=[_chat_file(f, root, default_owner="user") for f in object_list(item, "message_files", where)],
            retriever_resources=list_field(item, "retriever_resources", where),
            created_at=float(created) if isinstance(created, (int, float)) and not isinstance(created, bool) else None,
            model=self._app_name(),
            backend="wbot",
            metadata={
                "feedback": feedback.get("rating") if isinstance(feedback, dict) else None,
                "status": item.get("status"),
                "error": item.get("error"),
                "inputs": item.get("inputs") if isinstance(item.get("inputs"), dict) else {},
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
        return [to_text(q) for q in list_field(body, "data", "GET /messages/{id}/suggested")]

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
        content, name, mime = await _read_source(source, filename, mime_type)
        return str((await self._upload(content, name, mime))["id"])

    def widget(self, **kwargs: Any) -> ChatView:
        """A chat widget bound to this chat: the whole conversation, live, with an input box and Stop.

        Create it inside the event loop this chat runs on (its buttons run the chat there).
        """
        from ..widgets._chat import ChatView

        return ChatView(self, **kwargs)

    async def _upload(self, content: bytes, filename: str, mime: str) -> dict[str, Any]:
        body = await self._json(
            "POST", "/files/upload", files={"file": (filename, content, mime)}, data={"user": self.user}, idempotent=False
        )
        if not isinstance(body, dict) or not body.get("id"):
            raise WiroError("The upload answer has no file id.", hint="Check that base_url is a Dify Service API root.")
        return body
