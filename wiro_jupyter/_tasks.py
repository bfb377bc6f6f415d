"""The tasks service of one client (`client.tasks`): the shared task socket, the one
follower per task, and the journal. Task handles (`_task.AsyncTask`) talk to it.

Following a task (docs/protocol.md, Wiro §6 and §8):
- The socket tells us *when*: every frame becomes a `TaskEvent`, and the
  terminal frame (`task_postprocess_end` or `task_cancel`; `task_end` and
  `task_error` are NOT terminal) triggers one Task/Detail read for the
  authoritative outputs and `pexit`. That read is the only delay between the
  server's last frame and `done`.
- Task/Detail is also read right after subscribing (the server does not
  replay frames sent before registration), after each reconnect, when the
  socket has been silent for `socket_silence` seconds, and on a backoff
  schedule while the socket is down. So a dropped or silent socket costs
  latency, never the result.

Every consumer (the status bar, the chat widget, the journal, a terminal
progress line, a user's `on_event`) is a listener of one event stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from ._api import WiroApi
from ._events import TERMINAL, TaskEvent
from ._exceptions import AuthenticationError, NotFoundError, WiroError
from ._fields import object_list, to_number, to_text
from ._journal import Journal, JournalEntry
from ._loop import spawn
from ._models import Model
from ._params import PreparedRun
from ._socket import TaskSocket
from ._task import AsyncTask, Listener, TaskState

log = logging.getLogger("wiro_jupyter")

EventCallback = Callable[[TaskEvent], None]

# How `reconcile` searches Task/List: pages of this size, at most this many, and tasks created this
# many seconds around the journal row (clocks of client and server differ).
RECONCILE_PAGE = 100
RECONCILE_PAGES = 10
RECONCILE_SLACK = 120.0


class Tasks:
    """Everything a client knows about its tasks: `client.tasks` (one per client, on its loop)."""

    def __init__(
        self,
        api: WiroApi,
        *,
        poll_interval: float,
        socket_silence: float,
        journal: Journal | None,
    ) -> None:
        self._api = api
        self.poll_interval = poll_interval
        self.socket_silence = socket_silence
        self.journal = journal
        self._socket: TaskSocket | None = None
        self._followers: dict[str, TaskFollower] = {}

    @property
    def socket(self) -> TaskSocket:
        """The one WebSocket every task of this client shares (opened while anyone listens)."""
        if self._socket is None:
            self._socket = TaskSocket(self._api.settings.socket_url, max_message=self._api.http.max_body)
        return self._socket

    async def aclose(self) -> None:
        if self._socket is not None:
            await self._socket.aclose()
            self._socket = None

    # -- starting -----------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        """The API URL this client's tasks run at (journal rows of other servers are not ours to resume)."""
        return self._api.settings.api_url

    async def submit(
        self,
        model: Model,
        prepared: PreparedRun,
        *,
        on_event: EventCallback | None = None,
        batch: str | None = None,
        item: int | None = None,
    ) -> AsyncTask:
        """Send one Run (once: see `_transport`) and follow the task it started.

        The journal has a row for it before the request goes out (with the request's fingerprint,
        and `batch`/`item` for a batch's item), completed with the task's id and token before this
        returns; a Run whose outcome is unknown is left as `submit_unknown`.
        """
        journal = self.journal
        rowid = (
            journal.begin(
                model.slug,
                prepared.summary,
                self._api.settings.api_url,
                batch=batch,
                item=item,
                fingerprint=run_fingerprint(model.slug, prepared.summary),
            )
            if journal
            else 0
        )
        try:
            payload = await self._api.call(
                f"Run/{model.owner}/{model.project}",
                json=prepared.json,
                data=prepared.data,
                files=prepared.files,
                starts_task=True,
            )
            token = to_text(payload.get("socketaccesstoken"))
            task_id = to_text(payload.get("taskid"))
            if not token:
                raise WiroError(
                    f"The Run answer for {model.slug} had no task token: {str(payload)[:200]}",
                    hint="The task may have started anyway: check your Wiro dashboard before running it again.",
                    maybe_submitted=True,
                )
        except BaseException as exc:
            if journal:
                unknown = isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)) or (
                    isinstance(exc, WiroError) and exc.maybe_submitted
                )
                journal.failed_to_submit(rowid, str(exc) or type(exc).__name__, maybe_submitted=unknown)
            raise
        if journal:
            journal.submitted(rowid, task_id, token)
        state = TaskState(token=token, id=task_id, model=model.slug, parameters=prepared.summary, http=self._api.http)
        self.follow(state, on_event)
        return AsyncTask(self, state)

    async def reuse(self, model: Model, prepared: PreparedRun, *, on_event: EventCallback | None = None) -> AsyncTask | None:
        """The journaled, successfully finished task of an identical request (same model, parameters and
        input files by content), read again with Task/Detail; None when there is none (or it is gone).

        Says so on stderr and as a `reused` event on the task, so a re-run notebook never hides that
        nothing ran."""
        if self.journal is None:
            return None
        entry = self.journal.reusable(run_fingerprint(model.slug, prepared.summary), self.api_url)
        if entry is None or not entry.token:
            return None
        try:
            item = await self.detail(token=entry.token)
        except NotFoundError:  # the server forgot it (outputs expired, another emulator): run it again
            return None
        state = TaskState(
            token=entry.token, id=entry.task_id or "", model=model.slug, parameters=entry.parameters, http=self._api.http
        )
        state.apply_detail(item)
        if not state.ok:
            return None
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.created))
        note = f"reused task {state.id} from {when} (reuse=True): nothing was sent or charged."
        state.events.append(TaskEvent(kind="reused", message=note))
        if on_event is not None:
            self.follow(state, on_event)  # a finished task: the listener gets the recorded events
        sys.stderr.write(f"wiro-jupyter: {model.slug}: {note}\n")
        return AsyncTask(self, state)

    async def resume(self, entry: JournalEntry) -> AsyncTask:
        """The task of a journal row that has a token: read with Task/Detail, followed when unfinished.

        A task that ended while nobody followed it (the process died) gets its final state in the
        journal now."""
        assert entry.token, "only a row whose Run was answered can be resumed"
        task = await self.get(entry.token)
        if task.done and self.journal is not None:
            self._journal_listener(task._state)(TaskEvent(kind="done"))
        return task

    async def reconcile(self, entries: list[JournalEntry]) -> dict[int, AsyncTask | None]:
        """Rows whose Run may have reached the server (`submitting`, `submit_unknown`; one model),
        matched against the server's own list of that model's tasks (Task/List, Wiro §7) before
        anything is sent again, so nothing is paid twice.

        A task matches a row when it was created around the time of the row and every parameter the
        row records (file inputs excepted: the server echoes their upload URLs) has the value the
        server echoes; a task another journal row already owns never matches. A matched row gets its
        task's id and token (and is followed); an unmatched one becomes `not_submitted`. Returns the
        task (or None) by row id."""
        found: dict[int, AsyncTask | None] = {}
        if not entries:
            return found
        journal = self.journal
        model = entries[0].model
        claimed = journal.task_ids(model, self.api_url) if journal else set()
        earliest = min(e.created for e in entries) - RECONCILE_SLACK
        latest = max(e.updated for e in entries) + RECONCILE_SLACK
        open_rows = sorted(entries, key=lambda e: e.rowid)
        for page in range(RECONCILE_PAGES):
            listed = await self.list_tasks(model, start=page * RECONCILE_PAGE, limit=RECONCILE_PAGE)
            for item in listed:
                task_id = to_text(item.get("id"))
                created = to_number(item.get("createtime"))
                if not task_id or task_id in claimed or (created is not None and not earliest <= created <= latest):
                    continue
                match = next((e for e in open_rows if _same_parameters(e.parameters, item.get("parameters"))), None)
                if match is None:
                    continue
                open_rows.remove(match)
                claimed.add(task_id)
                found[match.rowid] = self._adopt(match, item)
            oldest = min((n for n in (to_number(i.get("createtime")) for i in listed) if n is not None), default=None)
            if not open_rows or len(listed) < RECONCILE_PAGE or (oldest is not None and oldest < earliest):
                break
        for entry in open_rows:
            if journal:
                journal.failed_to_submit(entry.rowid, "Task/List shows no task for this Run: it never started one.")
            found[entry.rowid] = None
        return found

    def _adopt(self, entry: JournalEntry, item: dict[str, Any]) -> AsyncTask:
        state = TaskState(
            token=to_text(item.get("socketaccesstoken")),
            id=to_text(item.get("id")),
            model=entry.model,
            parameters=entry.parameters,
            http=self._api.http,
        )
        state.apply_detail(item)
        if self.journal:
            self.journal.submitted(entry.rowid, state.id, state.token)
            if state.done:
                self._journal_listener(state)(TaskEvent(kind="done"))
        if not state.done and state.token:
            self.follow(state)
        return AsyncTask(self, state)

    async def list_tasks(self, model: str, *, start: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """Task/List: a page of this account's tasks of `model`, newest first (Wiro §7)."""
        body = {"type": "model", "sort": "id", "order": "DESC", "start": str(start), "limit": str(limit), "modelName": model}
        payload = await self._api.call("Task/List", json=body)
        return [dict(t) for t in object_list(payload, "tasklist", "Task/List")]

    # -- reads and control -------------------------------------------------------------
    async def detail(self, *, token: str | None = None, task_id: str | None = None) -> dict[str, Any]:
        """Task/Detail of one task, by its socket token or its id."""
        body = {"tasktoken": token} if token else {"taskid": task_id or ""}
        payload = await self._api.call("Task/Detail", json=body)
        tasks = object_list(payload, "tasklist", "Task/Detail")
        if not tasks:
            raise NotFoundError(
                f"There is no task {token or task_id}.",
                hint="Check the id or token; wiro_jupyter.tasks() lists the tasks this machine started.",
            )
        return dict(tasks[0])

    async def get(self, token_or_id: str) -> AsyncTask:
        """A task by its socket token or its numeric id; an unfinished one is followed from now on."""
        key = str(token_or_id).strip()
        if key in self._followers:
            return AsyncTask(self, self._followers[key].state)
        item = await self.detail(**({"task_id": key} if key.isdigit() else {"token": key}))
        state = TaskState(token=to_text(item.get("socketaccesstoken")), id=to_text(item.get("id")) or key, http=self._api.http)
        state.apply_detail(item)
        if not state.done and state.token:
            self.follow(state)
        return AsyncTask(self, state)

    async def cancel(self, task: str | dict[str, str]) -> dict[str, Any]:
        """Task/Cancel (queued tasks only)."""
        return await self._api.call("Task/Cancel", json=_handle(task))

    async def kill(self, task: str | dict[str, str]) -> dict[str, Any]:
        """Task/Kill (running tasks)."""
        handle = _handle(task)
        if "tasktoken" in handle:
            handle["socketaccesstoken"] = handle["tasktoken"]
        return await self._api.call("Task/Kill", json=handle)

    # -- following -----------------------------------------------------------------------
    def follow(self, state: TaskState, on_event: EventCallback | None = None) -> TaskFollower:
        """The one follower of a task (created on first need; must run on this client's loop)."""
        follower = self._followers.get(state.token)
        if follower is None:
            follower = TaskFollower(self, state)
            if state.done:
                # Nothing left to follow: listeners get the recorded history only.
                follower.finished.set()
            else:
                self._followers[state.token] = follower
                if self.journal:
                    follower.add_listener(self._journal_listener(state))
                follower.start()
                spawn(self._forget_when_finished(state.token, follower))
        if on_event is not None:
            follower.add_listener(on_event, replay=True)
        return follower

    async def _forget_when_finished(self, token: str, follower: TaskFollower) -> None:
        await follower.finished.wait()
        if self._followers.get(token) is follower:
            del self._followers[token]

    def _journal_listener(self, state: TaskState) -> EventCallback:
        """Keep the task's journal row current: when it starts running, and when it ends (with its outputs).

        Only those two moments: every write happens on the event loop, and the stages in between
        matter to nobody who reads the journal (a resumed task is read again with Task/Detail).
        """
        journal = self.journal
        assert journal is not None
        started = False

        def record(event: TaskEvent) -> None:
            nonlocal started
            if event.kind == "done":
                outputs = [{"name": o.name, "url": o.url, "content_type": o.content_type, "size": o.size} for o in state.outputs]
                journal.update(state.token, status=state.status, outputs=outputs, error=state.error)
            elif not started and state.status == "task_start":
                started = True
                journal.update(state.token, status=state.status)

        return record

    def saved(self, state: TaskState, paths: list[Path]) -> None:
        """Record where a task's outputs were saved (for `recover()`)."""
        if self.journal:
            self.journal.saved(state.token, [str(p.resolve()) for p in paths])


REUSE_ENV = "WIRO_REUSE"  # "1": run() reuses identical finished tasks unless told reuse=False (`%wiro config reuse=on`)


def reuse_by_default() -> bool:
    """The process-wide default of `run(reuse=None)`, read at each run."""
    return os.environ.get(REUSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def run_fingerprint(model: str, summary: dict[str, Any]) -> str:
    """What makes two requests identical: the model and the journal-safe parameters (in which file
    inputs are hashed by content, see `PreparedRun.summary`)."""
    blob = json.dumps([model.lower(), summary], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


def _wire(value: Any) -> Any:
    """A parameter as the server echoes it in a task's `parameters` (strings; Wiro §6)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return [_wire(v) for v in value]
    number = to_number(value) if isinstance(value, (int, float)) else None
    if number is not None:
        return str(int(number)) if float(number).is_integer() else str(number)
    return "" if value is None else str(value)


def _is_file_reference(value: Any) -> bool:
    """A file input as the journal records it: `name (sha256:…)` (the server echoes an upload URL instead)."""
    if isinstance(value, list):
        return any(_is_file_reference(v) for v in value)
    return isinstance(value, str) and "(sha256:" in value


def _same_parameters(ours: dict[str, Any], echoed: Any) -> bool:
    """Does a server task's `parameters` echo carry every parameter we sent, with the same value?"""
    if not isinstance(echoed, dict):
        return False
    for name, value in ours.items():
        if _is_file_reference(value):
            continue
        theirs = echoed.get(name)
        if _wire(value) == _wire(theirs):
            continue
        a, b = to_number(_wire(value)), to_number(theirs)
        if a is None or b is None or abs(float(a) - float(b)) > 1e-9:
            return False
    return True


def _handle(task: str | dict[str, str]) -> dict[str, str]:
    # The docs say `tasktoken`, the official clients send `taskid`: send what we know.
    if isinstance(task, dict):
        return {k: v for k, v in task.items() if v}
    key = str(task).strip()
    return {"taskid": key} if key.isdigit() else {"tasktoken": key}


def _for_the_log(event: TaskEvent) -> TaskEvent:
    """What the event log keeps of an event: an LLM snapshot without its copies of the whole text.

    A snapshot frame carries the whole answer so far (in `raw`, `message`, `answer`), so
    keeping each one would hold the answer once per frame (measured before: 125 MB for a
    90 kB answer in 900 frames). Live listeners get the full event; the log keeps the
    deltas, and the text itself lives once, in the task's state.
    """
    if event.audio is not None:
        # Realtime audio lives once, in the voice session that consumes it; the log notes each frame's size.
        return replace(event, audio=None, raw={"bytes": len(event.audio)})
    if not (event.answer or event.thinking or event.kind == "task_output_full"):
        return event
    raw = {k: v for k, v in event.raw.items() if k != "message"}
    return replace(event, raw=raw, message=None, answer="", thinking="")


class TaskFollower:
    """Keeps one TaskState current from the socket and Task/Detail; emits events."""

    def __init__(self, tasks: Tasks, state: TaskState) -> None:
        self.tasks = tasks
        self.state = state
        self.listeners: list[Listener] = []
        self._wake = asyncio.Event()
        self._terminal_frame = False
        self._resync = True
        self._socket_up = False
        self._last_frame = time.monotonic()
        self._poll_failures = 0
        self.finished = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.ensure_future(self._run())

    # -- listener plumbing ------------------------------------------------------------
    def add_listener(self, listener: Listener, *, replay: bool = False) -> None:
        if replay:
            for event in list(self.state.events):
                self._call(listener, event)
        self.listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with contextlib.suppress(ValueError):
            self.listeners.remove(listener)

    def emit(self, event: TaskEvent) -> None:
        self.state.events.append(_for_the_log(event))
        if len(self.state.events) > 5000:  # a long stream keeps its start and its recent past
            del self.state.events[100:1100]
        for listener in list(self.listeners):
            self._call(listener, event)

    @staticmethod
    def _call(listener: Listener, event: TaskEvent) -> None:
        try:
            listener(event)
        except Exception:  # a display bug must never lose a task
            log.exception("task event listener failed")

    # -- socket subscriber -----------------------------------------------------------
    def on_frame(self, frame: dict[str, Any]) -> None:
        self._last_frame = time.monotonic()
        event = self.state.event_from_frame(frame)
        self.emit(event)
        if event.kind in TERMINAL:
            self._terminal_frame = True
            self._wake.set()

    def on_binary(self, payload: bytes) -> None:
        self._last_frame = time.monotonic()
        self.emit(TaskEvent(kind="audio", audio=payload))

    def on_socket_state(self, connected: bool, reason: str = "") -> None:
        self._socket_up = connected
        if connected:
            self._resync = True  # frames may have been missed while away
        else:
            self.emit(TaskEvent(kind="socket_lost", message=reason or "The task socket dropped; following by polling."))
        self._last_frame = time.monotonic()
        self._wake.set()

    # -- the loop --------------------------------------------------------------------
    async def _run(self) -> None:
        socket = self.tasks.socket
        socket.subscribe(self.state.token, self)
        self._socket_up = socket.connected
        # Read Task/Detail now only when the socket is already up (frames sent before our
        # registration are not replayed). Otherwise the connect itself triggers that read,
        # and a socket that never connects is covered by the polling schedule.
        self._resync = self._socket_up
        try:
            while not self.state.done:
                if self._terminal_frame or self._resync:
                    self._resync = False
                    await self._poll()
                    if self._terminal_frame and not self.state.done:
                        # The socket said it ended but Task/Detail lags behind: ask again shortly.
                        await asyncio.sleep(min(self.tasks.poll_interval, 0.5))
                    continue
                timeout = self._next_poll_in()
                if timeout <= 0:
                    await self._poll()
                    continue
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                self._wake.clear()
        except (AuthenticationError, NotFoundError) as exc:
            self.state.failure = exc
            self.emit(TaskEvent(kind="error", message=str(exc)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never leave waiters hanging on a bug
            log.exception("following task %s failed", self.state.token)
            self.state.failure = WiroError(f"Following the task failed unexpectedly: {exc!r}")
        finally:
            socket.unsubscribe(self.state.token)
            if self.state.failure is None:
                self.emit(TaskEvent(kind="done", message=self.state.status))
            self.finished.set()  # after the last event, so no waiter can miss it

    def _next_poll_in(self) -> float:
        if self._socket_up:
            silence = time.monotonic() - self._last_frame
            return self.tasks.socket_silence - silence
        return min(30.0, self.tasks.poll_interval * (2 ** min(self._poll_failures, 6))) - (time.monotonic() - self._last_frame)

    async def _poll(self) -> None:
        before = self.state.status
        try:
            item = await self.tasks.detail(token=self.state.token)
        except (AuthenticationError, NotFoundError):
            raise
        except WiroError as exc:  # 429/5xx/network after the core's own retries: keep trying, slower
            self._poll_failures += 1
            self._last_frame = time.monotonic()
            log.info("Task/Detail for %s failed (%s); will retry", self.state.token, exc)
            return
        self._poll_failures = 0 if self._socket_up else self._poll_failures + 1
        self._last_frame = time.monotonic()
        self.state.apply_detail(item)
        if self.state.status != before or self.state.done:
            self.emit(TaskEvent(kind="poll", message=self.state.status, raw=item))
