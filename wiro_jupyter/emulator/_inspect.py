"""Read-only inspection of the emulator's own state over HTTP, for a client in another process (benchmarks):

- `GET /_emulator/stats`: the counters of `emu.stats`;
- `GET /_emulator/voice/<socket token>`: a realtime task's `VoiceLog`: the size and arrival time of every
  audio frame it received, the size of every frame it sent, never the audio itself.

Every answer carries the server's `time.monotonic()` as `monotonic`: on Linux that clock is the same in
every process, so a client can put the server's arrival times next to its own.

It stands in front of the gateway: these requests are not counted in `emu.stats` and no fault knob
touches them. They take no key, and give no way around the keys of the real API routes: they only
read counters, and a task's voice log needs its socket token.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from ._stats import Stats
from .wiro._tasks import TaskEngine

PREFIX = "/_emulator/"


class InspectHost(Protocol):
    """What the inspection routes read from the emulator's state."""

    @property
    def stats(self) -> Stats: ...
    @property
    def engine(self) -> TaskEngine: ...


class Inspection:
    """Answers `GET /_emulator/...` itself and hands every other request (and every WebSocket) to `app`."""

    def __init__(self, app: ASGIApp, host: InspectHost) -> None:
        self.app, self.host = app, host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        await self._answer(Request(scope, receive))(scope, receive, send)

    def _answer(self, request: Request) -> JSONResponse:
        if request.method != "GET":
            return _json({"error": "the inspection routes are read-only: use GET"}, 405)
        route = request.url.path[len(PREFIX):].strip("/").split("/")
        if route == ["stats"]:
            return _json(self._stats())
        if len(route) == 2 and route[0] == "voice":
            task = self.host.engine.by_token.get(route[1])
            if task is None:
                return _json({"error": "no task has this socket token"}, 404)
            log = task.voice
            return _json({"status": task.status, "realtime": task.realtime, "turns": task.turns,
                          "bytes_in": log.bytes_in, "frames_in": list(log.frames_in), "times_in": list(log.times_in),
                          "bytes_out": log.bytes_out, "frames_out": list(log.frames_out),
                          "interrupts": log.interrupts, "session_end": log.session_end})
        return _json({"error": "no such inspection route: GET /_emulator/stats or /_emulator/voice/<token>"}, 404)

    def _stats(self) -> dict[str, Any]:
        stats = self.host.stats
        return {"requests": dict(stats.requests), "socket_connections": stats.socket_connections,
                "sockets_refused": stats.sockets_refused, "socket_frames": stats.socket_frames,
                "max_active": stats.max_active}


def _json(payload: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse({**payload, "monotonic": time.monotonic()}, status_code=status)
