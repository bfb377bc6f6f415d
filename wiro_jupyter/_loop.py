"""The private event loop that the synchronous API runs on.

Why not nest-asyncio: with ipykernel 7 a cell already runs inside the kernel's
event loop, and `nest_asyncio.apply()` + `run_until_complete()` inside a cell
fails there (`RuntimeError: cannot enter context`). So the async core runs on
one daemon thread with its own loop, started on first use, and the sync API
submits coroutines to it and waits. This works the same in scripts, threads
and notebooks, and never touches the caller's loop.

A KeyboardInterrupt while waiting (Ctrl-C, or "interrupt kernel") reaches the
waiting thread; `run_sync` then runs the caller's `on_interrupt` coroutine (used
to cancel/kill a paid task) before re-raising.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Generator
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None


def background_loop() -> asyncio.AbstractEventLoop:
    """The package's private loop, started on first use (a daemon thread)."""
    global _loop, _thread
    with _lock:
        if _loop is None or _loop.is_closed() or _thread is None or not _thread.is_alive():
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            thread = threading.Thread(target=run, name="wiro-jupyter-loop", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread = loop, thread
        return _loop


def in_background_loop() -> bool:
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule `coro` on the private loop without waiting for it."""
    return asyncio.run_coroutine_threadsafe(coro, background_loop())


def run_sync(
    coro: Coroutine[Any, Any, T],
    *,
    on_interrupt: Callable[[], Awaitable[Any]] | None = None,
    timeout: float | None = None,
) -> T:
    """Run `coro` on the private loop and wait for its result in this thread."""
    if in_background_loop():
        coro.close()
        raise RuntimeError("run_sync() called from the wiro-jupyter loop itself; await the async API instead")
    future = submit(coro)
    try:
        return future.result(timeout)
    except KeyboardInterrupt:
        future.cancel()
        if on_interrupt is not None:
            # Give the stop request a bounded time; a second Ctrl-C abandons it.
            stop = submit(_as_coroutine(on_interrupt))
            # The interrupt itself must still reach the caller, whatever the stop request did.
            with contextlib.suppress(KeyboardInterrupt, concurrent.futures.TimeoutError, Exception):
                stop.result(15)
        raise
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise


async def _as_coroutine(fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()


_background_tasks: set[asyncio.Future[Any]] = set()


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
    """Start `coro` on the running loop and keep a reference until it ends
    (the loop itself only keeps weak references to tasks)."""
    task = asyncio.ensure_future(coro)
    _background_tasks.add(task)
    task.add_done_callback(_background_tasks.discard)
    return task


WAKE_INTERVAL = 0.1


async def await_waking(awaitable: Awaitable[T], *, period: float = WAKE_INTERVAL) -> T:
    """Await `awaitable` while waking the caller's loop every `period` seconds.

    Why: ipykernel 7.4 turns "interrupt kernel" during an awaited cell into a
    cancellation scheduled from its SIGINT handler without waking the loop
    (ipykernel#881; measured: an interrupted `await asyncio.sleep(20)` still ends
    after 20 s). A periodic timer bounds that delay. On cancellation the inner
    awaitable is cancelled and awaited, so its own clean-up (stopping a paid task)
    runs before CancelledError propagates.
    """
    inner = asyncio.ensure_future(awaitable)
    try:
        while not inner.done():
            await asyncio.wait({inner}, timeout=period)
    except asyncio.CancelledError:
        inner.cancel()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await inner
        raise
    return inner.result()


class _Stepper:
    """Steps an async generator on the private loop and knows the step in flight, so it can always be cancelled.

    (A Ctrl-C can land after a step was scheduled but before `run_sync` holds its future;
    `close()` then still finds the step's task here.)
    """

    def __init__(self, agen: AsyncGenerator[Any, None]) -> None:
        self.agen = agen
        self.task: asyncio.Task[Any] | None = None

    async def step(self) -> Any:
        self.task = asyncio.current_task()
        try:
            return await self.agen.__anext__()
        finally:
            self.task = None

    async def close(self) -> None:
        task = self.task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task], timeout=5)
        with contextlib.suppress(RuntimeError):
            await self.agen.aclose()


def iterate_sync(
    agen: AsyncGenerator[T, None],
    on_interrupt: Callable[[], Awaitable[Any]] | None = None,
    on_abandon: Callable[[], Coroutine[Any, Any, Any]] | None = None,
) -> Generator[T, None, None]:
    """Drive an async generator on the private loop, one item per step, from this thread.

    Ctrl-C while waiting cancels the step and runs `on_interrupt` (stop the turn) before
    re-raising. Leaving early in any other way (break, an exception in the loop body, a
    Ctrl-C between steps) closes the generator and runs `on_abandon`.
    """
    stepper = _Stepper(agen)
    exhausted = False
    try:
        while True:
            try:
                item = run_sync(stepper.step(), on_interrupt=on_interrupt)
            except StopAsyncIteration:
                exhausted = True
                return
            yield item
    finally:
        if not exhausted:
            # Bounded; a no-op when the generator already ended (an error, a cancelled step).
            with contextlib.suppress(BaseException):
                run_sync(stepper.close(), timeout=10)
            if on_abandon is not None:
                with contextlib.suppress(BaseException):
                    run_sync(on_abandon(), timeout=10)
