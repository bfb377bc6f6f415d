"""Coalesce bursts of updates: a widget sends at most one update per interval, and the last one always."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Throttle:
    """Call `fn` at most once per `interval` seconds.

    A call inside the window is deferred to the window's end (one timer, however
    many calls arrive meanwhile), so the state that `fn` reads is never lost.
    `flush(final=True)` runs `fn` at once and closes the throttle: later calls
    and pending timers do nothing, so nothing can overwrite the final state.
    `fn` never runs twice at the same time.
    """

    def __init__(self, fn: Callable[[], None], interval: float = 0.05) -> None:
        self._fn = fn
        self.interval = interval
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()
        self._last = float("-inf")
        self._timer: threading.Timer | None = None
        self._closed = False

    def __call__(self) -> None:
        with self._lock:
            if self._closed:
                return
            now = time.monotonic()
            due = self._last + self.interval
            if now >= due and self._timer is None:
                self._last = now
                run_now = True
            else:
                run_now = False
                if self._timer is None:
                    self._timer = threading.Timer(max(0.0, due - now), self._fire)
                    self._timer.daemon = True
                    self._timer.start()
        if run_now:
            self._run()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            if self._closed:
                return
            self._last = time.monotonic()
        self._run()

    def flush(self, *, final: bool = False) -> None:
        """Run `fn` now (cancelling a pending timer); with `final`, nothing runs after this."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._closed:
                return
            self._closed = final
            self._last = time.monotonic()
        self._run(final=final)

    @property
    def closed(self) -> bool:
        return self._closed

    def _run(self, final: bool = False) -> None:
        with self._run_lock:
            if self._closed and not final:
                return  # a timer that lost the race against the final flush
            self._fn()
