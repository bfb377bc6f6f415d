"""Fault knobs (`emu.faults`), the route names they match, and the middleware that plays HTTP faults.

The knobs are set from any thread (behind a lock) and consumed on the server loop.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from ._app import EmulatorState


def route_of(path: str) -> str:
    """`/v1/Task/Detail` → `Task/Detail`; `/files/x/y` → `files/x/y` (the name faults and stats use)."""
    path = path.strip("/")
    return path[3:] if path.startswith("v1/") else path


def route_matches(route: str, pattern: str | None) -> bool:
    """A knob's `path` matches the route itself, its tail (`Task/Detail`) or its head (`Run`)."""
    pattern = (pattern or "").strip("/")
    if not pattern:
        return True
    low, pat = route.lower(), pattern.lower()
    return low == pat or low.endswith("/" + pat) or low.startswith(pat + "/")


@dataclass
class _HttpFault:
    path: str
    status: int
    times: int
    retry_after: float | None
    body: str | None

    def response(self) -> Response:
        headers = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
        if self.body is not None:
            return PlainTextResponse(self.body, self.status, headers=headers)
        if self.status == 429:
            return JSONResponse({"result": False, "errors": [{"code": 0, "message": "Too many requests"}]},
                                self.status, headers=headers)
        if self.status >= 502:
            # What a proxy in front of the API sends: HTML, not the JSON envelope.
            title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
                     504: "504 Gateway Time-out"}.get(self.status, f"{self.status} Error")
            html = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>"
                    "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
            return HTMLResponse(html, self.status, headers=headers)
        if self.status >= 500:
            return PlainTextResponse("Internal Server Error", self.status, headers=headers)
        return JSONResponse({"result": False, "errors": [{"code": 0, "message": f"HTTP {self.status}"}]},
                            self.status, headers=headers)


@dataclass
class _BusinessFault:
    path: str
    code: int
    message: str
    times: int


class Faults:
    """Bounded, resettable fault knobs (`emu.faults`). Set from any thread, consumed on the server loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: list[_HttpFault] = []
        self._business: list[_BusinessFault] = []
        self._drop_after: int | None = None
        self._drop_times = 0
        self._frames_seen = 0
        self._silent = False
        self._refuse = 0

    def reset(self) -> None:
        with self._lock:
            self._http.clear()
            self._business.clear()
            self._drop_after, self._drop_times, self._frames_seen = None, 0, 0
            self._silent = False
            self._refuse = 0

    def http_error(self, path: str = "", status: int = 500, times: int = 1, retry_after: float | None = None,
                   body: str | None = None) -> None:
        """The next `times` HTTP requests whose route matches `path` get `status` instead of an answer."""
        if not 400 <= int(status) <= 599:
            raise ValueError("status must be 4xx or 5xx")
        with self._lock:
            self._http.append(_HttpFault(path, int(status), _bounded(times), retry_after, body))

    def business_error(self, path: str = "Run", code: int = 96,
                       message: str = "You have reached your concurrent task limit.", times: int = 1) -> None:
        """The next `times` API calls matching `path` answer HTTP 200 `result:false` with this error."""
        with self._lock:
            self._business.append(_BusinessFault(path, int(code), message, _bounded(times)))

    def drop_socket(self, after_frames: int = 3, times: int = 1) -> None:
        """After `after_frames` task frames (counted across connections) every open socket is cut abruptly."""
        with self._lock:
            self._drop_after, self._drop_times, self._frames_seen = max(0, int(after_frames)), _bounded(times), 0

    def silent_socket(self, enabled: bool = True) -> None:
        """Sockets still accept and send `connected`, but no task frames (tasks progress regardless)."""
        with self._lock:
            self._silent = bool(enabled)

    def refuse_socket(self, times: int = 1) -> None:
        """The next `times` WebSocket handshakes are rejected (HTTP 403)."""
        with self._lock:
            self._refuse = _bounded(times)

    # consumers (server loop)

    def take_http(self, route: str) -> _HttpFault | None:
        return self._take(self._http, route)

    def take_business(self, route: str) -> _BusinessFault | None:
        return self._take(self._business, route)

    def _take(self, knobs: list[Any], route: str) -> Any:
        with self._lock:
            for knob in knobs:
                if route_matches(route, knob.path):
                    knob.times -= 1
                    if knob.times <= 0:
                        knobs.remove(knob)
                    return knob
        return None

    def take_refuse(self) -> bool:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                return True
            return False

    @property
    def silent(self) -> bool:
        return self._silent

    def count_task_frame(self) -> bool:
        """Count one sent task frame; True when the sockets must be dropped now."""
        with self._lock:
            if self._drop_after is None:
                return False
            self._frames_seen += 1
            if self._frames_seen < self._drop_after:
                return False
            self._frames_seen = 0
            self._drop_times -= 1
            if self._drop_times <= 0:
                self._drop_after = None
            return True


def _bounded(times: int) -> int:
    return max(1, min(int(times), 10_000))


class FaultMiddleware:
    """Counts every HTTP request and plays `faults.http_error` in front of the app, like a proxy would."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = route_of(scope["path"])
            self.state.stats.requests[route] += 1
            fault = self.state.faults.take_http(route)
            if fault is not None:
                await fault.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
