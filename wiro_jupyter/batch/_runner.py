"""Running a batch: bounded concurrency, the account's limit, a budget, resume from the journal, Stop.

One `BatchRun` per batch, on the event loop of the client that runs it (the package's private loop for
`Wiro`, the caller's for `AsyncWiro`). What it guarantees:

- **Never more than `concurrency` tasks in flight** (a Run sent and its task not terminal yet). A slot is
  taken before the Run goes out and given back once the task's follower has seen it end, which is after
  the server has stopped counting it.
- **The account's limit slows a batch, it never fails an item.** Over the concurrent-task limit Wiro
  answers `result:false`, code 96, and starts nothing (docs/protocol.md, Wiro §10); 429 means the same.
  The transport already retries those a few times; when it gives up (`RateLimitError`,
  `maybe_submitted=False`), the item goes back to the front of the queue and the batch lowers its own
  limit to the tasks it has in flight, so the next Run goes out only when one of them has ended (after a
  backoff when none is in flight: the limit is then taken by tasks that are not ours).
- **A budget is a ceiling, not a target.** An item starts only when what was spent, plus what is
  reserved for the items in flight (each at its estimated price, `_plan.estimate`), plus its own estimate
  stays within `max_cost`. An item that does not fit waits while something in flight may free budget
  (a task can cost less than its estimate), and is `skipped` when nothing can.
- **Nothing is paid twice.** Each Run is in the journal, with the batch's name and the item's index,
  before it is sent (`Tasks.submit`). Calling the same batch again reads those rows first: finished items
  are collected (Task/Detail), running ones followed, rows whose Run may have reached the server
  (`submitting`, `submit_unknown`) are matched against the server's own task list (`Tasks.reconcile`),
  and only items that never started a task are sent. Failed items are sent again only with
  `retry_failed=True`; items stopped by Stop (cancelled) are sent again.
- **Stop** stops sending and stops every task in flight (`AsyncTask.stop()`: cancel when queued, kill
  when running). Items not sent are `skipped`, stopped tasks `cancelled`.

Listeners (the progress widget, a text bar) are called on the runner's loop after every change.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from .._exceptions import (
    AuthenticationError,
    RateLimitError,
    WiroError,
    WiroTimeoutError,
)
from .._journal import UNSURE, JournalEntry
from .._params import prepare_run
from ._limits import Budget, Gate, Signal
from ._plan import FIXED_PRICE_METHODS, Plan
from ._result import FINAL, BatchItem, BatchProgress, BatchResult

if TYPE_CHECKING:
    from .._models import Model
    from .._task import AsyncTask
    from .._tasks import Tasks

log = logging.getLogger("wiro_jupyter")

Listener = Callable[[BatchItem | None], None]
MAX_BACKOFF = 30.0  # seconds between Runs refused while none of ours is in flight
RESUME_READS = 16  # Task/Detail reads at once when a batch is called again
STOP_WAIT = 15.0  # how long an interrupted wait gives the tasks in flight to stop
STOPPED = "The batch was stopped before this item was sent."


class BatchClient(Protocol):
    """What a batch needs of its client (`AsyncWiro`): the tasks service and the models."""

    tasks: Tasks

    async def model(self, slug: str) -> Model: ...


class BatchRun:
    """A batch while it runs: `progress()`, `result` (filled in live), `stop()`, `wait()` / `await wait_async()`.

    Made by `Wiro.start_batch()` / `AsyncWiro.start_batch()`; shows as the live progress widget in a
    notebook. `Wiro.batch()` is `start_batch()` + a progress display + `wait()`.
    """

    def __init__(
        self,
        tasks: Tasks,
        model: Model,
        result: BatchResult,
        plans: list[Plan],
        *,
        concurrency: int,
        budget: Budget,
        gate: Gate | None,
        retry_failed: bool,
        wrap: Callable[[AsyncTask], Any] | None,
    ) -> None:
        self.result = result
        self.name = result.name
        self.model = model.slug
        self.concurrency = concurrency
        self.limit = concurrency
        self._tasks = tasks
        self._model = model
        self._plans = {plan.index: plan for plan in plans}
        self._budget = budget
        self._gate = gate
        self._retry_failed = retry_failed
        self._wrap = wrap or (lambda task: task)
        self._loop = asyncio.get_running_loop()
        self._queue: deque[Plan] = deque()
        self._in_flight = 0
        self._submitting = 0  # Runs on the wire: a refused one comes back to the queue
        self._running: dict[int, AsyncTask] = {}
        self._jobs: set[asyncio.Future[Any]] = set()
        self._signal = Signal()
        self._listeners: list[Listener] = []
        self._counts = Counter(item.status for item in result.items)
        self._spent = 0.0
        self._dearest = 0.0  # the highest real cost seen: the floor of estimates for prices not fixed up front
        self._refusals = 0
        self._not_before = 0.0
        self._wake: asyncio.TimerHandle | None = None
        self._stopping = False
        self._fatal: str | None = None
        self._started = time.time()
        self._sent_at: float | None = None
        self._finished_here = 0  # items this run saw finish (collected ones do not count for the pace)
        self._finished: concurrent.futures.Future[BatchResult] = concurrent.futures.Future()
        self._main = asyncio.ensure_future(self._run())

    # -- looking at it (any thread) -----------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self._finished.done()

    @property
    def items(self) -> list[BatchItem]:
        return self.result.items

    def progress(self) -> BatchProgress:
        counts = self._counts
        now = time.time()
        finished = sum(counts[s] for s in FINAL)
        remaining = len(self.result.items) - finished
        pace = None
        if self._sent_at is not None and self._finished_here and now > self._sent_at:
            pace = self._finished_here / (now - self._sent_at)
        state = {(False, False): "running", (False, True): "stopping", (True, False): "done", (True, True): "stopped"}[
            (self.done, self._stopping)
        ]
        return BatchProgress(
            total=len(self.result.items),
            ok=counts["ok"],
            failed=counts["failed"],
            skipped=counts["skipped"],
            cancelled=counts["cancelled"],
            running=counts["running"],
            waiting=counts["waiting"],
            spent=self._spent,
            budget=self._budget.limit,
            limit=self.limit,
            concurrency=self.concurrency,
            elapsed=now - self._started,
            throughput=pace,
            eta=(remaining / pace) if pace and not self.done else None,
            state=state,
        )

    def add_listener(self, listener: Listener) -> None:
        """Call `listener(item)` on the runner's loop after every change (`item` None: the batch as a whole)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    def __repr__(self) -> str:
        p = self.progress()
        return (
            f"<BatchRun {self.model} {self.name} {p.state}: {p.ok} ok, {p.failed} failed, {p.running} running, "
            f"{p.waiting} waiting, {p.skipped} skipped, {p.cancelled} cancelled>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        from ..widgets._batch import batch_run_bundle  # the notebook layer, loaded only to show it

        return batch_run_bundle(self, include, exclude)

    # -- control (any thread) --------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop sending, and stop every task in flight (cancel when queued, kill when running). Returns at
        once; `wait()` returns when everything has stopped."""
        self._loop.call_soon_threadsafe(self._request_stop)

    def wait(self, timeout: float | None = None, *, progress: bool = False) -> BatchResult:
        """Block until every item has its final status. Ctrl-C (or interrupting the kernel) stops the batch.

        `progress=True` shows the progress meanwhile: the live widget in a notebook (whose display
        becomes its static copy at the end), a text bar elsewhere. A notebook cell that blocks here
        handles the widget's Stop only after it: `await run.wait_async(progress=True)` does not block."""
        with contextlib.suppress(RuntimeError):
            if asyncio.get_running_loop() is self._loop:
                raise RuntimeError("BatchRun.wait() would block the loop the batch runs on: await run.wait_async()")
        finish = None
        try:  # from here on, a Ctrl-C stops the batch
            finish = _show(self) if progress else None
            return self._finished.result(timeout)
        except concurrent.futures.TimeoutError:
            raise WiroTimeoutError(f"Batch {self.name} has not finished after {timeout:g} s ({self!r}).") from None
        except KeyboardInterrupt:
            self.stop()
            with contextlib.suppress(BaseException):
                self._finished.result(STOP_WAIT)
            sys.stderr.write(f"\nInterrupted: batch {self.name} was stopped ({self!r}).\n")
            raise
        finally:
            if finish is not None:
                finish()

    async def wait_async(self, timeout: float | None = None, *, progress: bool = False) -> BatchResult:
        """Await the end of the batch from any event loop (the caller's stays free: a notebook keeps
        handling the progress widget's Stop button). Cancelling the awaiting coroutine (an interrupted
        cell) stops the batch. `progress`: as for `wait()`."""
        from .._loop import await_waking

        finish = _show(self) if progress else None
        end = asyncio.shield(asyncio.wrap_future(self._finished))
        try:
            return await await_waking(asyncio.wait_for(end, timeout))
        except asyncio.TimeoutError:
            raise WiroTimeoutError(f"Batch {self.name} has not finished after {timeout:g} s ({self!r}).") from None
        except asyncio.CancelledError:
            self.stop()
            await asyncio.wait({asyncio.wrap_future(self._finished)}, timeout=STOP_WAIT)
            sys.stderr.write(f"\nInterrupted: batch {self.name} was stopped ({self!r}).\n")
            raise
        finally:
            if finish is not None:
                await asyncio.to_thread(finish)  # it waits for the last thumbnails: not on this loop

    # -- bookkeeping (the runner's loop) ------------------------------------------------------------------
    def _set(self, item: BatchItem, status: str, error: str | None = None, task: AsyncTask | None = None) -> None:
        if task is not None:
            item.task = self._wrap(task)
        self._counts[item.status] -= 1
        self._counts[status] += 1
        item.status, item.error = status, error
        if status in FINAL and item.task is not None and item.task.done:
            cost = float(item.task.cost or 0.0)
            self._spent += cost
            self._dearest = max(self._dearest, cost)
        self._notify(item)

    def _notify(self, item: BatchItem | None = None) -> None:
        self._signal.notify()
        for listener in list(self._listeners):
            try:
                listener(item)
            except Exception:  # a display bug must never stop a batch
                log.exception("batch listener failed")

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        job = asyncio.ensure_future(coro)
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    def _request_stop(self) -> None:
        if self._stopping or self.done:
            return
        self._stopping = True
        self._budget.changed.notify()
        self._notify()
        for task in list(self._running.values()):
            self._spawn(self._stop_task(task))

    @staticmethod
    async def _stop_task(task: AsyncTask) -> None:
        try:
            await task.stop()
        except WiroError as exc:  # it may have ended meanwhile; its follower still reports how it ended
            log.info("stopping task %s: %s", task.id, exc)

    # -- the run ----------------------------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._resume()
            await self._dispatch()
            while self._jobs:
                await asyncio.wait(set(self._jobs))
        except asyncio.CancelledError:  # the loop is going away: leave nothing running unseen
            await asyncio.gather(*(self._stop_task(t) for t in list(self._running.values())), return_exceptions=True)
            raise
        except Exception as exc:  # a bug must not leave waiters hanging, nor items half-done
            log.exception("batch %s failed", self.name)
            self._fatal = f"The batch stopped on an unexpected error: {exc!r}"
        finally:
            reason = self._fatal or "The batch ended before this item was sent."
            for item in self.result.items:
                if item.status not in FINAL:
                    self._set(item, "failed" if item.status == "running" else "skipped", reason)
            self.result.done = True
            self._finished.set_result(self.result)
            self._notify()

    async def _resume(self) -> None:
        """Collect, follow or reconcile what earlier calls of this batch started (see the module docstring)."""
        self._queue.extend(self._plans[i] for i in sorted(self._plans))
        journal = self._tasks.journal
        if journal is None:
            return
        api_url = self._tasks.api_url
        rows = [r for r in journal.batch_rows(self.name, api_url) if r.item in self._plans]
        unsure = [r for r in rows if r.status in UNSURE]
        if unsure:
            try:
                await self._tasks.reconcile(unsure)
            except WiroError as exc:  # unknown whether they started: sending them again could pay twice
                undecided = {r.item for r in unsure}
                for index in sorted(i for i in undecided if i is not None):
                    reason = (
                        f"Its Run may have started a task, and Task/List could not be read to check ({exc}): "
                        "call the batch again later."
                    )
                    self._set(self.result.items[index], "failed", reason)
                self._queue = deque(p for p in self._queue if p.index not in undecided)
                rows = [r for r in rows if r.item not in undecided]
            else:
                rows = [r for r in journal.batch_rows(self.name, api_url) if r.item in self._plans]
        latest: dict[int, JournalEntry] = {}
        for row in rows:
            if row.token and row.item is not None:
                latest[row.item] = row  # rows come oldest first: the last attempt wins
        if not latest:
            return
        reads = asyncio.Semaphore(RESUME_READS)
        collected: set[int] = set()

        async def collect(index: int, row: JournalEntry) -> None:
            async with reads:
                if await self._collect(self._plans[index], row):
                    collected.add(index)

        await asyncio.gather(*(collect(i, row) for i, row in latest.items()))
        self._queue = deque(p for p in self._queue if p.index not in collected)

    async def _collect(self, plan: Plan, row: JournalEntry) -> bool:
        """One item an earlier call started; False when it is to be sent (again)."""
        item = self.result.items[plan.index]
        try:
            task = await self._tasks.resume(row)
        except WiroError as exc:
            if self._retry_failed:
                return False
            self._set(item, "failed", f"Task {row.task_id} of an earlier run could not be read: {exc}")
            return True
        if not task.done:
            self._in_flight += 1
            self._budget.reserve(plan.estimate)
            self._running[plan.index] = task
            self._set(item, "running", task=task)
            self._spawn(self._follow(plan, task, gated=False))
            return True
        status, error = _outcome(task)
        if status == "cancelled" or (status == "failed" and self._retry_failed):
            return False
        self._set(item, status, error, task=task)
        self._budget.settle(0.0, float(task.cost or 0.0))
        return True

    async def _dispatch(self) -> None:
        while not (self._stopping or self._fatal):
            if not self._queue:
                if not self._submitting:
                    break
                await self._signal.wait()  # a Run on the wire may be refused and come back
                continue
            now = self._loop.time()
            if self._in_flight >= self.limit or now < self._not_before:
                if now < self._not_before and self._wake is None:
                    self._wake = self._loop.call_at(self._not_before, self._woken)
                await self._signal.wait()
                continue
            plan = self._queue.popleft()
            item = self.result.items[plan.index]
            price = plan.estimate if self._model.price_method in FIXED_PRICE_METHODS else max(plan.estimate, self._dearest)
            if not await self._afford(price):
                if not self._stopping:
                    self._set(item, "skipped", self._over_budget(price))
                    continue
                self._queue.appendleft(plan)
                break
            self._budget.reserve(price)
            if self._gate is not None:
                await self._gate.acquire()
            self._in_flight += 1
            plan.estimate = price
            if self._stopping:
                await self._release(plan, gated=True)
                self._queue.appendleft(plan)
                break
            self._sent_at = self._sent_at or time.time()
            self._submitting += 1
            self._spawn(self._send(plan))
        reason = self._fatal or STOPPED
        for plan in self._queue:
            self._set(self.result.items[plan.index], "skipped", reason)
        self._queue.clear()

    def _woken(self) -> None:
        self._wake = None
        self._signal.notify()

    async def _afford(self, price: float) -> bool:
        budget = self._budget
        while not budget.fits(price):
            if budget.reserved <= 0 or self._stopping:
                return False  # nothing in flight could free any budget
            await budget.changed.wait()
        return True

    def _over_budget(self, price: float) -> str:
        budget = self._budget
        return (
            f"Not started: it may cost up to ${price:.4f}, and with ${budget.spent:.4f} spent that would pass "
            f"max_cost=${budget.limit:g}."
        )

    async def _release(self, plan: Plan, *, gated: bool, cost: float = 0.0) -> None:
        self._in_flight -= 1
        self._budget.settle(plan.estimate, cost)
        if gated and self._gate is not None:
            await self._gate.release()
        self._signal.notify()

    async def _send(self, plan: Plan) -> None:
        item = self.result.items[plan.index]
        try:
            task = await self._submit(plan)
        finally:
            self._submitting -= 1
            self._signal.notify()
        if task is None:
            return
        self._refusals = 0
        self._running[plan.index] = task
        self._set(item, "running", task=task)
        if self._stopping:
            await self._stop_task(task)
        await self._follow(plan, task, gated=True)

    async def _submit(self, plan: Plan) -> AsyncTask | None:
        """Send one item's Run; None when it did not start a task (the item was settled or requeued)."""
        item = self.result.items[plan.index]
        try:
            prepared = prepare_run(self._model, plan.params)  # files are read again now, not held since the check
            return await self._tasks.submit(self._model, prepared, batch=self.name, item=plan.index)
        except RateLimitError as exc:
            if not exc.maybe_submitted:
                await self._refused(plan, exc)
                return None
            error: WiroError = exc
        except WiroError as exc:
            error = exc
        if error.maybe_submitted:
            found, checked = await self._reconcile_now(plan.index)
            if found is not None:
                return found
            if checked and not plan.resent:  # the server's task list shows it started nothing: safe to send again, once
                plan.resent = True
                await self._release(plan, gated=True)
                self._requeue(plan)
                return None
        await self._release(plan, gated=True)
        if isinstance(error, AuthenticationError) or str(error.code) == "97":
            self._fatal = f"Not sent: an earlier item was refused ({error})"  # every later Run would be too
        self._set(item, "failed", str(error))
        return None

    async def _refused(self, plan: Plan, exc: RateLimitError) -> None:
        """Over the account's limit: nothing was started. Lower our limit and send the item again later."""
        await self._release(plan, gated=True)
        self._refusals += 1
        self.limit = max(1, self._in_flight)
        if self._in_flight == 0:  # the limit is taken by tasks that are not this batch's
            wait = exc.retry_after if exc.retry_after is not None else min(MAX_BACKOFF, 0.5 * 2 ** (self._refusals - 1))
            self._not_before = self._loop.time() + wait
        self._requeue(plan)
        log.info("batch %s: Run refused (%s); limit now %d", self.name, exc.message, self.limit)
        self._notify()

    def _requeue(self, plan: Plan) -> None:
        """Send an item that started nothing again later; once the dispatcher has stopped, it was not sent."""
        if self._stopping or self._fatal:
            self._set(self.result.items[plan.index], "skipped", self._fatal or STOPPED)
        else:
            self._queue.appendleft(plan)

    async def _reconcile_now(self, index: int) -> tuple[AsyncTask | None, bool]:
        """A Run whose outcome is unknown: look for its task on the server now rather than on the next call.
        Returns (the task, or None; whether the server's task list could be checked)."""
        journal = self._tasks.journal
        if journal is None:
            return None, False
        rows = [r for r in journal.batch_rows(self.name, self._tasks.api_url) if r.item == index and r.status in UNSURE]
        if not rows:
            return None, False
        try:
            found = await self._tasks.reconcile(rows[-1:])
        except WiroError as exc:
            log.info("batch %s: could not look for item %d's task: %s", self.name, index, exc)
            return None, False
        return found.get(rows[-1].rowid), True

    async def _follow(self, plan: Plan, task: AsyncTask, *, gated: bool) -> None:
        item = self.result.items[plan.index]
        try:
            with contextlib.suppress(WiroError):  # the outcome is read from the task below
                await task.wait()
        finally:
            self._running.pop(plan.index, None)
            await self._release(plan, gated=gated, cost=float(task.cost or 0.0) if task.done else 0.0)
        self._finished_here += 1
        status, error = _outcome(task)
        self._set(item, status, error)


def _show(run: BatchRun) -> Callable[[], None]:
    from ._progress import show_progress  # the text bar or (in a notebook) the widget

    return show_progress(run)


def _outcome(task: AsyncTask) -> tuple[str, str | None]:
    """(status, error sentence) of a task whose follower has ended."""
    if task.ok:
        return "ok", None
    if not task.done:  # the follower gave up (credentials revoked, the task vanished)
        return "failed", task.error or f"Task {task.id} had not finished when the batch ended."
    if task.status == "task_cancel":
        return "cancelled", f"Task {task.id}: {task.error or 'The task was cancelled.'}"
    lines = [line.strip() for line in (task.error or "").splitlines() if line.strip()]
    return "failed", f"Task {task.id} failed: {lines[-1] if lines else 'no error text'}"
