"""What several runners may share: a limit on tasks in flight (`Gate`) and a budget (`Budget`).

The models of a `compare()` share a `LocalGate` and a `Budget`; the partitions of a Dask batch share a
`distributed.Semaphore` (`_dask.DistributedGate`). Everything here lives on one event loop.
"""

from __future__ import annotations

import asyncio
from typing import Protocol


class Gate(Protocol):
    """A limit shared by several runners: the models of a `compare()`, the partitions of a Dask batch."""

    async def acquire(self) -> None: ...

    async def release(self) -> None: ...


class LocalGate:
    """A `Gate` for runners on one event loop."""

    def __init__(self, leases: int) -> None:
        self._slots = asyncio.Semaphore(leases)

    async def acquire(self) -> None:
        await self._slots.acquire()

    async def release(self) -> None:
        self._slots.release()


class Signal:
    """Wakes everything waiting on it at the next `notify()` (an event that re-arms itself)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self) -> None:
        await self._event.wait()


class Budget:
    """Spent + reserved against a ceiling; shared by the runners of one `compare()`."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.spent = 0.0
        self.reserved = 0.0
        self.changed = Signal()

    def fits(self, amount: float) -> bool:
        return self.limit is None or self.spent + self.reserved + amount <= self.limit + 1e-12

    def reserve(self, amount: float) -> None:
        self.reserved += amount

    def settle(self, reserved: float, cost: float) -> None:
        """An item in flight ended: its reservation becomes what it really cost."""
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += cost
        self.changed.notify()
