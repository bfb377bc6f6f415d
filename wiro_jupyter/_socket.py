"""The task socket: one WebSocket connection shared by every task a client follows.

Wire facts (docs/protocol.md, Wiro §8): the server greets with `{"type":"connected"}`;
`{"type":"task_info","tasktoken":…}` registers a task, many per connection;
frames carry `tasktoken`, so one reader demultiplexes them. There is no replay
of frames sent before registration, so every subscriber resynchronises with
Task/Detail after each (re)connect — the socket says *when* something
happened, Task/Detail says *what* the result is.

Binary frames (realtime voice, Wiro §9) are `<tasktoken>|<pcm bytes>` in both
directions; they are routed the same way, so voice sessions share this layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any, Protocol

from ._loop import spawn

log = logging.getLogger("wiro_jupyter")


class Subscriber(Protocol):
    def on_frame(self, frame: dict[str, Any]) -> None: ...

    def on_binary(self, payload: bytes) -> None: ...

    def on_socket_state(self, connected: bool, reason: str = "") -> None: ...


class TaskSocket:
    """Keeps one connection open while anyone is subscribed (and `idle_close` seconds after); reconnects with backoff.

    The grace period matters: tasks run one after another (notebook cells, a script's loop) would
    otherwise close and reopen the socket for every task, and one subscribing while the old
    connection closed saw a spurious drop and a reconnect backoff (measured by
    `benchmarks/bench_finish.py`: 3-5% of back-to-back tasks ended ~0.3 s late).
    """

    def __init__(
        self,
        url: str,
        *,
        open_timeout: float = 10.0,
        max_backoff: float = 10.0,
        max_message: int = 16 * 1024**2,
        idle_close: float = 5.0,
    ) -> None:
        self.url = url
        self.open_timeout = open_timeout
        self.max_backoff = max_backoff
        self.max_message = max_message
        self.idle_close = idle_close
        self._subscribers: dict[str, Subscriber] = {}
        self._connection: Any = None
        self._runner: asyncio.Task[None] | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._closing = False  # this side is closing the connection: not a drop
        self.connected = False
        self.connections_opened = 0  # for tests and benchmarks

    def subscribe(self, token: str, subscriber: Subscriber) -> None:
        self._subscribers[token] = subscriber
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._connection is not None and self.connected:
            spawn(self._register(token))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.ensure_future(self._run())

    def unsubscribe(self, token: str) -> None:
        # The protocol has no unsubscribe; we just stop routing. The connection
        # closes when nobody has listened for `idle_close` seconds.
        self._subscribers.pop(token, None)
        if not self._subscribers and self._connection is not None and self._idle is None:
            self._idle = asyncio.get_running_loop().call_later(self.idle_close, self._close_if_idle)

    def _close_if_idle(self) -> None:
        self._idle = None
        if not self._subscribers and self._connection is not None:
            self._closing = True
            spawn(self._close())

    async def send_json(self, payload: dict[str, Any]) -> None:
        if self._connection is None:
            raise ConnectionError("the task socket is not connected")
        await self._connection.send(json.dumps(payload))

    async def send_audio(self, token: str, pcm: bytes) -> None:
        """A realtime voice frame: `<tasktoken>|<PCM16 24 kHz mono>`."""
        if self._connection is None:
            raise ConnectionError("the task socket is not connected")
        await self._connection.send(token.encode() + b"|" + pcm)

    async def aclose(self) -> None:
        self._subscribers.clear()
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        self._closing = True
        await self._close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._runner

    async def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()

    async def _register(self, token: str) -> None:
        with contextlib.suppress(Exception):
            await self.send_json({"type": "task_info", "tasktoken": token})

    def _set_connected(self, connected: bool, reason: str = "") -> None:
        if self.connected == connected:
            return
        self.connected = connected
        for subscriber in list(self._subscribers.values()):
            try:
                subscriber.on_socket_state(connected, reason)
            except Exception:  # a subscriber's bug must not kill the reader
                log.exception("task socket subscriber failed")

    async def _run(self) -> None:
        import websockets

        failures = 0
        while self._subscribers:
            reason = ""
            try:
                async with websockets.connect(
                    self.url,
                    open_timeout=self.open_timeout,
                    max_size=self.max_message,
                    ping_interval=20,
                    ping_timeout=20,
                    close_timeout=2,
                ) as connection:
                    self._connection = connection
                    self.connections_opened += 1
                    for token in list(self._subscribers):
                        await connection.send(json.dumps({"type": "task_info", "tasktoken": token}))
                    failures = 0
                    self._set_connected(True)
                    async for message in connection:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except websockets.ConnectionClosed as exc:
                if exc.sent is not None and exc.sent.code == 1009:  # we closed it: a message over max_size
                    reason = (
                        f"A message on the task socket was larger than {self.max_message:,} bytes, so the socket was "
                        "closed (raise the cap with max_response_bytes=); following by polling."
                    )
                log.info("task socket %s: %s", self.url, reason or exc)
            except Exception as exc:
                log.info("task socket %s: %s", self.url, exc)
            finally:
                self._connection = None
                ours, self._closing = self._closing, False
                if ours:
                    self.connected = False  # nobody lost anything; a new subscriber resyncs on the reconnect
                else:
                    self._set_connected(False, reason)
            if not self._subscribers:
                break
            if ours:
                continue  # someone subscribed while the idle connection closed: connect again at once
            failures += 1
            delay = min(self.max_backoff, 0.2 * 2 ** min(failures, 8)) + random.uniform(0, 0.1)
            await asyncio.sleep(delay)

    def _dispatch(self, message: str | bytes) -> None:
        if isinstance(message, bytes):
            token, sep, payload = message.partition(b"|")
            subscriber = self._subscribers.get(token.decode(errors="replace")) if sep else None
            if subscriber is not None:
                subscriber.on_binary(payload)
            return
        try:
            frame = json.loads(message)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        subscriber = self._subscribers.get(str(frame.get("tasktoken") or ""))
        if subscriber is not None:
            try:
                subscriber.on_frame(frame)
            except Exception:
                log.exception("task socket subscriber failed")
