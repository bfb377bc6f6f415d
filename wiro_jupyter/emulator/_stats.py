"""Counters for assertions (`emu.stats`)."""

from __future__ import annotations

from collections import Counter

from ._faults import route_matches


class Stats:
    """Counters for assertions (`emu.stats`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()  # by route, e.g. "Task/Detail", "Run/wiro/slow", "files/…"
        self.socket_connections = 0  # accepted WebSocket connections
        self.sockets_refused = 0
        self.socket_frames = 0  # task frames sent
        self.callbacks: list[tuple[str, int | str]] = []  # (callbackUrl, HTTP status or error name)

    def count(self, path: str = "") -> int:
        """Requests whose route matches `path` (same matching rule as the fault knobs)."""
        return sum(n for route, n in list(self.requests.items()) if route_matches(route, path))
