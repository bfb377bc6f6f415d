"""A task: its state (`TaskState`, fed by socket frames and Task/Detail reads) and the
`AsyncTask` / `Task` handles users hold.

A handle talks to the tasks service of the client that made it (`client.tasks`, see
`_tasks.py`) through the small `TaskService` protocol below, never to the client itself.
LLM `task_output` frames are cumulative snapshots; the state turns them into deltas so
consumers see only the new text (docs/protocol.md, Wiro §8).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._delegate import Delegated
from ._events import STAGES, TERMINAL, TaskEvent
from ._exceptions import TaskCancelledError, TaskFailedError, WiroError, WiroTimeoutError
from ._fields import maybe_json, to_number, to_text
from ._loop import spawn
from ._outputs import Output, unique_names

if TYPE_CHECKING:
    from PIL.Image import Image

    from ._transport import HttpCore

log = logging.getLogger("wiro_jupyter")

Listener = Callable[[TaskEvent], None]


class Follower(Protocol):
    """What keeps one task current and tells its listeners (`_tasks.TaskFollower`)."""

    finished: asyncio.Event

    def add_listener(self, listener: Listener, *, replay: bool = False) -> None: ...

    def remove_listener(self, listener: Listener) -> None: ...


class TaskService(Protocol):
    """What a task handle needs from its client (`client.tasks`, `_tasks.Tasks`)."""

    def follow(self, state: TaskState) -> Follower: ...

    async def detail(self, *, token: str | None = None, task_id: str | None = None) -> dict[str, Any]: ...

    async def cancel(self, task: str | dict[str, str]) -> dict[str, Any]: ...

    async def kill(self, task: str | dict[str, str]) -> dict[str, Any]: ...

    def saved(self, state: TaskState, paths: list[Path]) -> None: ...


def join_text(value: Any) -> str:
    if isinstance(value, list):
        return "".join(str(v) for v in value if v is not None)
    return "" if value is None else str(value)


def _stage_index(status: str) -> int:
    return STAGES.index(status) if status in STAGES else -1


def delta(old: str, new: str) -> str:
    """The new text of a cumulative snapshot (the whole text when it replaced rather than grew)."""
    return new[len(old) :] if new.startswith(old) else new


@dataclass
class TaskState:
    """Everything known about one task; updated by frames and Task/Detail reads."""

    token: str
    id: str = ""
    model: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    status: str = "task_queue"
    pexit: str | None = None
    outputs: list[Output] = field(default_factory=list)
    answer: str = ""
    thinking: str = ""
    debug_output: str = ""
    debug_error: str = ""
    stderr: list[str] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    cost: float | None = None
    elapsed: float | None = None
    created: float = field(default_factory=time.time)
    finished: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    events: list[TaskEvent] = field(default_factory=list)
    failure: WiroError | None = None  # the follower could not finish (auth revoked, …)
    complete: bool = False  # a Task/Detail read showed a terminal status: outputs and pexit are final
    http: HttpCore | None = field(default=None, repr=False, compare=False)  # downloads go through the client's core

    @property
    def done(self) -> bool:
        return self.complete

    @property
    def ok(self) -> bool:
        return self.done and self.status != "task_cancel" and self.pexit == "0"

    def apply_detail(self, item: dict[str, Any]) -> None:
        self.detail = item
        self.id = to_text(item.get("id")) or self.id
        self.token = to_text(item.get("socketaccesstoken")) or self.token
        status = to_text(item.get("status"))
        if status in TERMINAL:
            self.status, self.complete = status, True
        elif status and _stage_index(status) >= _stage_index(self.status):
            self.status = status  # a lagging read must not move the status backwards
        pexit = to_text(item.get("pexit"))
        self.pexit = pexit or None
        owner, project = to_text(item.get("modelslugowner")), to_text(item.get("modelslugproject"))
        if owner and project and not self.model:
            self.model = f"{owner}/{project}"
        self.debug_output = to_text(item.get("debugoutput"))
        self.debug_error = to_text(item.get("debugerror"))
        outputs = item.get("outputs")
        if isinstance(outputs, list):
            self.outputs = [Output.from_raw(o, http=self.http) for o in outputs if isinstance(o, dict)]
        for out in self.outputs:
            if out.kind == "raw" and isinstance(out.content, dict):
                # LLMs: the answer lives in the raw output (and debugoutput), not in files.
                self.answer = join_text(out.content.get("answer")) or self.answer
                self.thinking = join_text(out.content.get("thinking")) or self.thinking
        if not self.answer and self.debug_output and not any(o.kind != "raw" for o in self.outputs):
            self.answer = self.debug_output
        cost = to_number(item.get("totalcost"))
        self.cost = float(cost) if cost is not None else self.cost
        elapsed = to_number(item.get("elapsedseconds"))
        self.elapsed = float(elapsed) if elapsed is not None else self.elapsed
        if self.done and self.finished is None:
            self.finished = time.time()

    def event_from_frame(self, frame: dict[str, Any]) -> TaskEvent:
        kind = str(frame.get("type") or "unknown")
        message = maybe_json(frame.get("message"))
        event = TaskEvent(kind=kind, message=message, raw=frame)
        if kind in STAGES or kind in ("task_cancel", "task_error"):
            if kind not in ("task_output", "task_error"):
                self.status = kind
            elif self.status in STAGES[:6]:
                self.status = "task_start"
        if kind == "task_output" and isinstance(message, dict) and ("answer" in message or "thinking" in message):
            answer, thinking = join_text(message.get("answer")), join_text(message.get("thinking"))
            event.answer_delta = delta(self.answer, answer)
            event.thinking_delta = delta(self.thinking, thinking)
            self.answer, self.thinking = answer, thinking
            event.answer, event.thinking = answer, thinking
        elif kind == "task_output_full" and isinstance(message, dict):
            self.answer = join_text(message.get("answer")) or self.answer
            self.thinking = join_text(message.get("thinking")) or self.thinking
            event.answer, event.thinking = self.answer, self.thinking
        elif isinstance(message, dict) and ("percentage" in message or "stepCurrent" in message):
            self.progress = message
            event.progress = message
        elif kind == "task_error" and isinstance(message, str):
            self.stderr.append(message)
            del self.stderr[:-200]
        elif kind == "task_cost":
            cumulative = to_number(frame.get("cumulativeCost"))
            self.cost = float(cumulative) if cumulative is not None else self.cost
        elif kind == "task_postprocess_end" and isinstance(message, list):
            self.outputs = [Output.from_raw(o, http=self.http) for o in message if isinstance(o, dict)] or self.outputs
        return event

    @property
    def error(self) -> str | None:
        if self.failure is not None:
            return str(self.failure)
        if self.status == "task_cancel":
            # Cancelled tasks never ran (no exit code); killed ones did.
            what = "cancelled" if self.pexit is None else "killed"
            detail = self.debug_error.strip()
            return f"The task was {what}." + (f" {detail}" if detail.lower() not in ("", "killed", "cancelled") else "")
        if self.done and not self.ok:
            text = self.debug_error.strip() or "\n".join(self.stderr[-5:]).strip()
            return text or f"The task ended with exit code {self.pexit}."
        return None


class _TaskBase:
    """What sync and async task handles share: state, properties and displays."""

    _state: TaskState
    _service: TaskService

    # What the task's state knows, read through (`Delegated`: `task.id` is `task._state.id`).
    id: Delegated[str] = Delegated("_state")
    token: Delegated[str] = Delegated("_state")
    model: Delegated[str] = Delegated("_state")
    status: Delegated[str] = Delegated("_state")
    done: Delegated[bool] = Delegated("_state")
    ok: Delegated[bool] = Delegated("_state")
    text: Delegated[str] = Delegated(
        "_state", "answer", doc="An LLM's answer (from the raw output / debugoutput), '' for file-producing models."
    )
    thinking: Delegated[str] = Delegated("_state")
    error: Delegated[str | None] = Delegated("_state")
    debug_error: Delegated[str] = Delegated("_state")
    progress: Delegated[dict[str, Any] | None] = Delegated("_state")
    cost: Delegated[float | None] = Delegated("_state")
    created: Delegated[float] = Delegated("_state", doc="When this process submitted (or first saw) the task, epoch seconds.")
    finished: Delegated[float | None] = Delegated(
        "_state", doc="When this process saw the task end, epoch seconds; None while it runs."
    )

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self._state.parameters)

    @property
    def outputs(self) -> list[Output]:
        return [o for o in self._state.outputs if o.kind != "raw"] or list(self._state.outputs)

    @property
    def files(self) -> list[Output]:
        return [o for o in self._state.outputs if o.kind != "raw"]

    @property
    def elapsed(self) -> float | None:
        if self._state.elapsed is not None:
            return self._state.elapsed
        end = self._state.finished or time.time()
        return end - self._state.created

    @property
    def event_log(self) -> list[TaskEvent]:
        return list(self._state.events)

    def _follower(self) -> Follower:
        return self._service.follow(self._state)

    def _raise_for_outcome(self) -> None:
        state = self._state
        if state.failure is not None:
            raise state.failure
        if state.status == "task_cancel":
            raise TaskCancelledError(f"Task {state.id or state.token} ({state.model}) was cancelled.", task=self)
        if state.done and not state.ok:
            # The model's own last error line leads; the whole text stays in task.error.
            lines = [line.strip() for line in (state.error or "").splitlines() if line.strip()]
            raise TaskFailedError(f"Task {state.id} ({state.model}) failed: {lines[-1] if lines else 'no error text'}", task=self)

    def __repr__(self) -> str:
        bits = [f"id={self.id!r}", f"model={self.model!r}", f"status={self.status!r}"]
        if self.done:
            bits.append("ok" if self.ok else f"error={(self.error or '')[:80]!r}")
            if self.files:
                bits.append(f"outputs={[o.name for o in self.files]}")
            if self.text:
                bits.append(f"text={self.text[:60] + ('…' if len(self.text) > 60 else '')!r}")
        return f"<{type(self).__name__} {' '.join(bits)}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        from ._render import task_bundle

        return task_bundle(self)


class AsyncTask(_TaskBase):
    """A task, for `async` code. Obtained from `AsyncWiro.run()` / `.task()`."""

    def __init__(self, service: TaskService, state: TaskState) -> None:
        self._service = service
        self._state = state

    async def refresh(self) -> AsyncTask:
        self._state.apply_detail(await self._service.detail(token=self.token or None, task_id=self.id or None))
        return self

    async def wait(self, timeout: float | None = None) -> AsyncTask:
        """Wait until the task ends; raises TaskFailedError / TaskCancelledError when it did not succeed."""
        if not self.done:
            follower = self._follower()
            try:
                await asyncio.wait_for(follower.finished.wait(), timeout)
            except asyncio.TimeoutError:
                raise WiroTimeoutError(
                    f"Task {self.id} ({self.model}) has not finished after {timeout:g} s (status {self.status})."
                ) from None
        self._raise_for_outcome()
        return self

    async def events(self) -> AsyncIterator[TaskEvent]:
        """Every event of the task from its start (replayed) until it ends."""
        inbox: asyncio.Queue[TaskEvent] = asyncio.Queue()
        follower = self._follower()
        follower.add_listener(inbox.put_nowait, replay=True)
        try:
            while True:
                if follower.finished.is_set() and inbox.empty():
                    return
                getter = asyncio.ensure_future(inbox.get())
                finished = asyncio.ensure_future(follower.finished.wait())
                done, _ = await asyncio.wait({getter, finished}, return_when=asyncio.FIRST_COMPLETED)
                finished.cancel()
                if getter in done:
                    yield getter.result()
                else:
                    getter.cancel()
        finally:
            follower.remove_listener(inbox.put_nowait)

    async def cancel(self) -> AsyncTask:
        """Cancel a task that is still queued (the server refuses once it runs: use kill())."""
        await self._service.cancel(self._handle())
        return await self._settle()

    async def kill(self) -> AsyncTask:
        """Stop a running task."""
        await self._service.kill(self._handle())
        return await self._settle()

    async def stop(self) -> str:
        """Cancel when queued, kill when running; returns which one was asked ('cancel'/'kill'/'none')."""
        if self.done:
            return "none"
        queued = self.status in ("task_queue", "task_accept")
        try:
            if queued:
                await self._service.cancel(self._handle())
                action = "cancel"
            else:
                raise WiroError("running")
        except WiroError:
            # Not cancellable any more (it started meanwhile): kill it.
            await self._service.kill(self._handle())
            action = "kill"
        with contextlib.suppress(WiroError):
            await self._settle()
        return action

    def _handle(self) -> dict[str, str]:
        return {"taskid": self.id, "tasktoken": self.token}

    async def _settle(self) -> AsyncTask:
        follower = self._follower()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(follower.finished.wait(), 10)
        if not self.done:
            await self.refresh()
        return self

    async def save(self, directory: str | Path = ".", *, max_bytes: int | None = None) -> list[Path]:
        """Download every output file into `directory` (streamed; safe, distinct names). Returns the paths."""
        kwargs = {"max_bytes": max_bytes} if max_bytes else {}
        outputs = self.outputs
        names = unique_names([o.name if o.kind != "raw" or "." in o.name else f"{o.name}.json" for o in outputs])
        paths = [await output.asave(directory, filename=name, **kwargs) for output, name in zip(outputs, names, strict=True)]
        self._service.saved(self._state, paths)
        return paths

    def add_listener(self, listener: Listener, *, replay: bool = True) -> None:
        self._follower().add_listener(listener, replay=replay)


class Task(_TaskBase):
    """A task, for ordinary (blocking) code. Obtained from `Wiro.run()` / `.task()`.

    Its methods run on the package's private event loop, so they work the same
    in scripts, threads and notebooks.
    """

    def __init__(self, atask: AsyncTask) -> None:
        self._async = atask
        self._service = atask._service
        self._state = atask._state

    def refresh(self) -> Task:
        from ._loop import run_sync

        run_sync(self._async.refresh())
        return self

    def wait(self, timeout: float | None = None) -> Task:
        """Wait until the task ends; Ctrl-C / kernel interrupt stops the paid task on the server."""
        from ._loop import run_sync

        try:
            run_sync(self._async.wait(timeout), on_interrupt=self._stop_on_interrupt)
        except KeyboardInterrupt:
            sys.stderr.write(f"\n{self._interrupt_note}\n")
            raise
        return self

    async def wait_async(self, timeout: float | None = None) -> Task:
        """Await the end of the task from *any* event loop (e.g. a notebook cell's).

        The waiting happens on the package's loop; the caller's loop stays free,
        so a kernel keeps handling widget messages (a status bar's Cancel button)
        while a cell awaits this. Cancelling the awaiting coroutine (an
        interrupted cell) stops the paid task on the server.
        """
        from ._loop import await_waking, submit

        future = submit(self._async.wait(timeout))
        try:
            await await_waking(asyncio.wrap_future(future))
        except (asyncio.CancelledError, KeyboardInterrupt):
            future.cancel()
            await asyncio.wrap_future(submit(self._stop_on_interrupt()))
            sys.stderr.write(f"\n{self._interrupt_note}\n")
            raise
        return self

    _interrupt_note = ""

    async def _stop_on_interrupt(self) -> None:
        was = self.status
        try:
            action = await self._async.stop()
        except WiroError as exc:
            self._interrupt_note = f"Interrupted. Could not stop task {self.id} on the server: {exc}"
            return
        if action == "none":
            self._interrupt_note = f"Interrupted. Task {self.id} had already ended ({self.status})."
        else:
            verb = "cancelled" if action == "cancel" else "killed"
            self._interrupt_note = (
                f"Interrupted: task {self.id} ({self.model}) was {verb} on the server (it was {was}), "
                "so it does not keep running unseen."
            )

    def events(self, timeout: float | None = None) -> Iterator[TaskEvent]:
        """Iterate over the task's events (replayed from its start) until it ends."""
        from ._loop import background_loop, run_sync

        inbox: queue.Queue[TaskEvent | None] = queue.Queue()
        ended = threading.Event()

        def listener(event: TaskEvent) -> None:
            inbox.put(event)

        async def attach() -> Follower:
            follower = self._follower()
            follower.add_listener(listener, replay=True)

            async def close_when_finished() -> None:
                await follower.finished.wait()
                ended.set()
                inbox.put(None)

            spawn(close_when_finished())
            return follower

        follower = run_sync(attach())
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
                try:
                    event = inbox.get(timeout=remaining)
                except queue.Empty:
                    raise WiroTimeoutError(f"No end of task {self.id} within {timeout:g} s.") from None
                if event is None:
                    return
                yield event
        finally:
            background_loop().call_soon_threadsafe(follower.remove_listener, listener)

    def cancel(self) -> Task:
        from ._loop import run_sync

        run_sync(self._async.cancel())
        return self

    def kill(self) -> Task:
        from ._loop import run_sync

        run_sync(self._async.kill())
        return self

    def stop(self) -> str:
        from ._loop import run_sync

        return run_sync(self._async.stop())

    def save(self, directory: str | Path = ".", *, max_bytes: int | None = None) -> list[Path]:
        from ._loop import run_sync

        return run_sync(self._async.save(directory, max_bytes=max_bytes))

    def add_listener(self, listener: Listener, *, replay: bool = True) -> None:
        """Call `listener(event)` for every event (on the package's loop thread)."""
        from ._loop import background_loop

        background_loop().call_soon_threadsafe(lambda: self._async.add_listener(listener, replay=replay))

    @property
    def images(self) -> list[Image]:
        """Image outputs as PIL images (downloaded on first use)."""
        return [o.open() for o in self.outputs if o.kind == "image"]
