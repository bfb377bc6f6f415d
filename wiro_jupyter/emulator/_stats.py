"""Counters for assertions (`emu.stats`), for both services."""

from __future__ import annotations

from collections import Counter

from ._route_names import route_matches


class Stats:
    """Counters for assertions (`emu.stats`). Written on the server loop, read from any thread."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        # by route name: "Task/Detail", "Run/wiro/slow", "files/…", "dify:chat-messages" (see `_route_names`)
        self.requests: Counter[str] = Counter()
        self.socket_connections = 0  # accepted WebSocket connections
        self.sockets_refused = 0
        self.socket_frames = 0  # task frames sent
        self.callbacks: list[tuple[str, int | str]] = []  # (callbackUrl, HTTP status or error name)
        self.max_active = 0  # the most tasks active (not terminal) at once, across projects

    def count(self, path: str = "") -> int:
        """HTTP requests whose route matches `path`, by the fault knobs' rule (`"Run"`, `"dify:chat-messages"`)."""
        return sum(n for route, n in list(self.requests.items()) if route_matches(route, path))

    def note_active(self, active: int) -> None:
        self.max_active = max(self.max_active, active)
