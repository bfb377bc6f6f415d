"""`Faults` (`emu.faults`): one set of bounded, resettable fault knobs for the Wiro and the Dify half.

Knobs are set from any thread (behind a lock) and consumed on the server loop. This module only
keeps the books; `_gateway` plays the HTTP answers, the services play the rest.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from ._route_names import DIFY, route_matches

CONCURRENCY_LIMIT = "You have reached your concurrent task limit. Wait for one of your tasks to finish, then run again."


@dataclass(frozen=True)
class HttpError:
    """An error answer in the shape of the service the route belongs to (see `_gateway`)."""

    status: int
    headers: dict[str, str]


@dataclass(frozen=True)
class CannedResponse:
    status: int
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Redirect:
    status: int
    location: str


@dataclass(frozen=True)
class BusinessError:
    code: int
    message: str


FrontFault = HttpError | CannedResponse | Redirect  # answered in front of the services, like a proxy would


@dataclass
class _Armed:
    path: str
    times: int
    fault: Any


@dataclass
class _SocketDrop:
    after_frames: int
    times: int
    frames_seen: int = 0


@dataclass
class _Padding:
    times: int
    size: int


@dataclass
class _VoiceEnd:
    after_turns: int
    times: int


@dataclass
class _Knobs:
    front: list[_Armed] = field(default_factory=list)
    business: list[_Armed] = field(default_factory=list)
    drop_socket: _SocketDrop | None = None
    silent: bool = False
    refuse: int = 0
    oversized: _Padding | None = None
    drop_stream: int = 0
    concurrency: int | None = None
    end_voice: _VoiceEnd | None = None


class Faults:
    """Bounded, resettable fault knobs (`emu.faults`) for both services; `reset()` clears them all.

    `path` names a route relative to the root of its service; the prefix `dify:` selects the Dify
    half, so a pattern can never match both:

    - Wiro: `"Tool/List"`, `"Task/Detail"`, `"Run"` (every Run), `"Run/wiro/slow"`, `"files"`.
    - Dify: `"dify:chat-messages"` (also `dify:chat-messages/<task>/stop`), `"dify:files/upload"`,
      `"dify:"` (every Dify route).

    A pattern matches a route equal to it, or the route's leading or trailing path segments,
    case-insensitively; `""` matches every route of both services (see `_route_names`).
    HTTP knobs (`http_error`, `respond`, `redirect`) answer before authentication, like a proxy in
    front of the service; when several match one request, the one set first wins.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._knobs = _Knobs()

    def reset(self) -> None:
        """Every knob off, including `concurrency_limit`."""
        with self._lock:
            self._knobs = _Knobs()

    # ---- HTTP, both services

    def http_error(self, path: str, status: int = 500, times: int = 1, *,
                   retry_after: float | str | None = None) -> None:
        """The next `times` requests to `path` get HTTP `status` in the shape of their service.

        Wiro: 4xx the JSON envelope, 500/501 plain text, 502 and up a proxy's HTML page.
        Dify: 502-504 a proxy's HTML page, any other status Dify's JSON error. `retry_after` is sent
        as the `Retry-After` header: a number as seconds, a string verbatim (`"soon"`, an HTTP date).
        """
        if not 400 <= int(status) <= 599:
            raise ValueError("status must be 4xx or 5xx")
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after if isinstance(retry_after, str) else f"{retry_after:g}"
        self._arm("front", path, times, HttpError(int(status), headers))

    def respond(self, path: str, *, status: int = 200, body: bytes | str | dict[str, Any] | list[Any] = b"",
                content_type: str = "application/json", headers: dict[str, str] | None = None,
                times: int = 1) -> None:
        """The next `times` requests to `path` get exactly this answer (a dict or list body is JSON-encoded).

        For malformed server data: a Tool/Detail with odd numbers, oversized bodies or SSE lines.
        """
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
        elif isinstance(body, str):
            data = body.encode("utf-8")
        else:
            data = bytes(body)
        answer_headers = {**(headers or {}), "content-type": content_type}
        self._arm("front", path, times, CannedResponse(int(status), data, answer_headers))

    def redirect(self, path: str, location: str, *, status: int = 307, times: int = 1) -> None:
        """The next `times` requests to `path` get a redirect (`status`, empty body) to `location`."""
        if not 300 <= int(status) <= 399:
            raise ValueError("status must be 3xx")
        self._arm("front", path, times, Redirect(int(status), location))

    # ---- Wiro REST

    def business_error(self, path: str = "Run", code: int = 96, message: str = CONCURRENCY_LIMIT,
                       times: int = 1) -> None:
        """The next `times` authenticated Wiro calls matching `path` answer HTTP 200 `result:false` with this error."""
        if path.lower().startswith(DIFY):
            raise ValueError("business errors are Wiro's envelope; Dify has none (use http_error)")
        self._arm("business", path, times, BusinessError(int(code), message))

    def concurrency_limit(self, n: int | None) -> None:
        """While set, a Run that would make more than `n` of its project's tasks active is refused like the
        real service does over the account's limit: HTTP 200, error code 96, nothing started. `None` lifts it."""
        if n is not None and int(n) < 0:
            raise ValueError("the limit must be 0 or more (or None)")
        with self._lock:
            self._knobs.concurrency = None if n is None else int(n)

    # ---- Wiro task socket

    def drop_socket(self, after_frames: int = 3, times: int = 1) -> None:
        """After `after_frames` task frames (counted across connections) every open socket is cut abruptly."""
        with self._lock:
            self._knobs.drop_socket = _SocketDrop(max(0, int(after_frames)), _bounded(times))

    def silent_socket(self, enabled: bool = True) -> None:
        """Sockets still accept and send `connected`, but no task frames (tasks progress regardless)."""
        with self._lock:
            self._knobs.silent = bool(enabled)

    def refuse_socket(self, times: int = 1) -> None:
        """The next `times` WebSocket handshakes are rejected (HTTP 403)."""
        with self._lock:
            self._knobs.refuse = _bounded(times)

    def oversized_socket_frame(self, size: int, times: int = 1) -> None:
        """The next `times` task frames sent get an extra `"padding"` field that makes them at least `size` bytes."""
        with self._lock:
            self._knobs.oversized = _Padding(_bounded(times), max(0, int(size)))

    def end_voice_session(self, after_turns: int = 1, times: int = 1) -> None:
        """The next `times` realtime sessions to connect are ended by the server once `after_turns` turns are
        done, as when the balance runs out: a final `task_cost`, then `task_end` (Wiro §9)."""
        with self._lock:
            self._knobs.end_voice = _VoiceEnd(max(0, int(after_turns)), _bounded(times))

    # ---- Dify streams

    def drop_stream(self, times: int = 1) -> None:
        """The next `times` Dify chat streams break after a few deltas (no message_end, connection cut)."""
        with self._lock:
            self._knobs.drop_stream = _bounded(times)

    # ---- consumers (server loop)

    def take_front(self, route: str) -> FrontFault | None:
        fault: FrontFault | None = self._take("front", route)
        return fault

    def take_business(self, route: str) -> BusinessError | None:
        fault: BusinessError | None = self._take("business", route)
        return fault

    @property
    def concurrency(self) -> int | None:
        return self._knobs.concurrency

    @property
    def silent(self) -> bool:
        return self._knobs.silent

    def take_refuse(self) -> bool:
        with self._lock:
            if self._knobs.refuse > 0:
                self._knobs.refuse -= 1
                return True
            return False

    def take_padding(self) -> int | None:
        """The size the next task frame must reach, if `oversized_socket_frame` is armed."""
        with self._lock:
            knob = self._knobs.oversized
            if knob is None:
                return None
            knob.times -= 1
            if knob.times <= 0:
                self._knobs.oversized = None
            return knob.size

    def count_task_frame(self) -> bool:
        """Count one sent task frame; True when the sockets must be dropped now."""
        with self._lock:
            drop = self._knobs.drop_socket
            if drop is None:
                return False
            drop.frames_seen += 1
            if drop.frames_seen < drop.after_frames:
                return False
            drop.frames_seen = 0
            drop.times -= 1
            if drop.times <= 0:
                self._knobs.drop_socket = None
            return True

    def take_end_voice_session(self) -> int | None:
        """After how many turns the server must end a realtime session now connecting, if `end_voice_session` is armed."""
        with self._lock:
            knob = self._knobs.end_voice
            if knob is None:
                return None
            knob.times -= 1
            if knob.times <= 0:
                self._knobs.end_voice = None
            return knob.after_turns

    def take_drop_stream(self) -> bool:
        with self._lock:
            if self._knobs.drop_stream > 0:
                self._knobs.drop_stream -= 1
                return True
            return False

    def _arm(self, kind: Literal["front", "business"], path: str, times: int, fault: Any) -> None:
        with self._lock:
            getattr(self._knobs, kind).append(_Armed(path, _bounded(times), fault))

    def _take(self, kind: Literal["front", "business"], route: str) -> Any:
        with self._lock:
            knobs: list[_Armed] = getattr(self._knobs, kind)
            for knob in knobs:
                if route_matches(route, knob.path):
                    knob.times -= 1
                    if knob.times <= 0:
                        knobs.remove(knob)
                    return knob.fault
        return None


def _bounded(times: int) -> int:
    return max(1, min(int(times), 10_000))
