"""The task WebSocket (Wiro §8, §9): connections, which task tokens each listens to, frames in and out.

The socket faults (`refuse_socket`, `silent_socket`, `drop_socket`, `oversized_socket_frame`) are
played here, and `end_voice_session` is armed here; realtime audio in and out is recorded on each
task's `VoiceLog` (`emu.tasks[id].voice`). References like "Wiro §8" are sections of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from typing import Any, Protocol

from starlette.websockets import WebSocket

from .._faults import Faults
from .._stats import Stats
from ._records import INTERRUPT, SERVER_END, TaskRecord
from ._tasks import TaskEngine


class SocketHost(Protocol):
    """What the socket hub needs from the emulator's state."""

    @property
    def faults(self) -> Faults: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def engine(self) -> TaskEngine: ...


class _Connection:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.tokens: set[str] = set()
        self.outbox: asyncio.Queue[tuple[str | bytes, bool] | None] = asyncio.Queue()
        self.dropped = False

    def push(self, payload: str | bytes, task_frame: bool = True) -> None:
        self.outbox.put_nowait((payload, task_frame))

    def drop(self) -> None:
        self.dropped = True
        self.outbox.put_nowait(None)


class SocketHub:
    """Connections and which task tokens each listens to (many per connection, Wiro §8)."""

    def __init__(self, state: SocketHost) -> None:
        self.state = state
        self.connections: set[_Connection] = set()
        self.listeners: dict[str, set[_Connection]] = {}
        self._registered = threading.Condition()
        self._registrations: Counter[str] = Counter()

    def register(self, conn: _Connection, token: str) -> None:
        if token in conn.tokens:
            return  # duplicates ignored (Wiro §8)
        conn.tokens.add(token)
        self.listeners.setdefault(token, set()).add(conn)

    def remove(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        for token in conn.tokens:
            listeners = self.listeners.get(token)
            if listeners is None:
                continue
            listeners.discard(conn)
            if not listeners:
                del self.listeners[token]
                self.state.engine.on_last_listener_gone(token)

    def broadcast(self, token: str, frame: dict[str, Any]) -> None:
        if frame.get("type") == "task_cost":
            self._on_cost(token, frame)
        listeners = self.listeners.get(token, ())
        if self.state.faults.silent or not listeners:
            return
        size = self.state.faults.take_padding()
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False) if size is None else _padded(frame, size)
        for conn in listeners:
            conn.push(text)

    def send_binary(self, token: str, data: bytes) -> None:
        task = self.state.engine.by_token.get(token)
        if task is not None:
            task.voice.sent(data.partition(b"|")[2])
        if self.state.faults.silent:
            return
        for conn in self.listeners.get(token, ()):
            conn.push(data)

    def drop_all(self) -> None:
        for conn in list(self.connections):
            conn.drop()

    def wait_registered(self, token: str, timeout: float = 5.0) -> bool:
        """Block (another thread) until a socket has sent `task_info` for `token`."""
        with self._registered:
            return self._registered.wait_for(lambda: self._registrations[token] > 0, timeout)

    # ---- one connection

    async def endpoint(self, ws: WebSocket) -> None:
        state = self.state
        if state.faults.take_refuse():
            state.stats.sockets_refused += 1
            await ws.close(code=1008)  # before accept: uvicorn answers the handshake with HTTP 403
            return
        await ws.accept()
        state.stats.socket_connections += 1
        conn = _Connection(ws)
        self.connections.add(conn)
        conn.push(json.dumps({"type": "connected", "version": "1.0"}), task_frame=False)  # welcome frame (Wiro §8)
        reader = asyncio.get_running_loop().create_task(self._read(conn))
        writer = asyncio.get_running_loop().create_task(self._write(conn))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in (reader, writer):
                job.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self.remove(conn)
        # Returning without a close frame makes uvicorn drop the TCP connection: that is
        # the abrupt cut of `faults.drop_socket`; for a closed client there is nothing left to do.

    async def _write(self, conn: _Connection) -> None:
        while True:
            item = await conn.outbox.get()
            if item is None or conn.dropped:
                return
            payload, task_frame = item
            try:
                if isinstance(payload, bytes):
                    await conn.ws.send_bytes(payload)
                else:
                    await conn.ws.send_text(payload)
            except Exception:  # the client went away
                return
            if task_frame:
                self.state.stats.socket_frames += 1
                if self.state.faults.count_task_frame():
                    self.drop_all()

    async def _read(self, conn: _Connection) -> None:
        while True:
            message = await conn.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                self._on_binary(message["bytes"])
            elif message.get("text") is not None:
                self._on_text(conn, message["text"])

    def _on_text(self, conn: _Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        kind, token = frame.get("type"), str(frame.get("tasktoken") or "")
        task = self.state.engine.by_token.get(token)
        if task is None:
            return  # unknown tokens are ignored (Wiro §8)
        if kind == "task_info":
            # No ack and no replay of past frames: late listeners sync with Task/Detail (Wiro §8).
            first = not task.listener.is_set()
            self.register(conn, token)
            task.listener.set()
            if first and task.realtime:
                self._arm_server_end(task)
            with self._registered:
                self._registrations[token] += 1
                self._registered.notify_all()
        elif kind == "task_session_end" and task.realtime and not task.terminal:
            task.voice.session_end = True
            task.audio.put_nowait(None)
        elif kind == "task_session_interrupt" and task.realtime and not task.terminal:
            task.voice.interrupts += 1
            task.audio.put_nowait(INTERRUPT)

    def _on_binary(self, data: bytes) -> None:
        # Realtime audio: ASCII token, "|", raw PCM16 (Wiro §9).
        head, sep, pcm = data.partition(b"|")
        if not sep:
            return
        task = self.state.engine.by_token.get(head.decode("ascii", errors="replace"))
        if task is None or not task.realtime:
            return
        task.voice.received(pcm)
        if task.status == "task_start":
            task.audio.put_nowait(pcm)

    # ---- the server's own end of a realtime session (faults.end_voice_session, Wiro §9)

    def _arm_server_end(self, task: TaskRecord) -> None:
        after = self.state.faults.take_end_voice_session()
        if after is None:
            return
        if after == 0:
            task.audio.put_nowait(SERVER_END)
        else:
            task.voice.end_after_turns = after

    def _on_cost(self, token: str, frame: dict[str, Any]) -> None:
        # Every turn ends with a task_cost frame, so counting them counts the turns.
        task = self.state.engine.by_token.get(token)
        if task is None:
            return
        voice = task.voice
        voice.costs.append({k: frame.get(k) for k in ("turnCost", "cumulativeCost", "usage")})
        if voice.end_after_turns is not None and len(voice.costs) >= voice.end_after_turns:
            voice.end_after_turns = None
            task.audio.put_nowait(SERVER_END)


def _padded(frame: dict[str, Any], size: int) -> str:
    """`frame` with a `"padding"` field of spaces that brings its UTF-8 form to at least `size` bytes."""
    bare = json.dumps({**frame, "padding": ""}, separators=(",", ":"), ensure_ascii=False)
    extra = max(0, size - len(bare.encode("utf-8")))
    return json.dumps({**frame, "padding": " " * extra}, separators=(",", ":"), ensure_ascii=False)
