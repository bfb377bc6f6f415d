"""The task engine: tasks' progression through the statuses (Wiro §6, §8), and the Task/* routes.

Everything here runs on the server loop, except `TaskEngine.wait_task` (another thread,
through a condition) and the `paused` flag. References like "Wiro §8" are sections of
docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter, defaultdict
from typing import Any, Protocol

from starlette.responses import Response

from .._stats import Stats
from ._auth import Project
from ._envelope import NO_TASK, fail, ok
from ._files import FileStore, StoredFile
from ._ids import hex_id, random_token, unix_now
from ._models import InputFile, ModelFailure, ModelSpec
from ._parameters import missing, to_int
from ._records import PRE_RUN, STATUS_TIMES, TERMINAL, TaskRecord
from ._task_run import TaskRun


class FrameSink(Protocol):
    """Where task frames go (`_sockets.SocketHub`)."""

    def broadcast(self, token: str, frame: dict[str, Any]) -> None: ...
    def send_binary(self, token: str, data: bytes) -> None: ...


class EngineHost(Protocol):
    """What the engine needs from the emulator's state."""

    @property
    def stage_delay(self) -> float: ...
    @property
    def output_ttl(self) -> float | None: ...
    @property
    def base_url(self) -> str: ...
    @property
    def files(self) -> FileStore: ...
    @property
    def stats(self) -> Stats: ...
    @property
    def hub(self) -> FrameSink: ...


class TaskEngine:
    """The tasks (by id and by socket token) and their way from task_queue to a terminal status."""

    def __init__(self, host: EngineHost) -> None:
        self.host = host
        self.tasks: dict[str, TaskRecord] = {}
        self.by_token: dict[str, TaskRecord] = {}
        self.active: set[TaskRecord] = set()  # not terminal yet
        self.taskstats: defaultdict[str, Counter[str]] = defaultdict(Counter)  # by model id: Tool/List `taskstat`
        self.sessions: dict[str, list[str]] = {}  # LLM memory: prompts by session_id
        self.loop: asyncio.AbstractEventLoop | None = None
        self.paused = False
        self._queue_event: asyncio.Event | None = None
        # Real ids are unique across the service; emulators started one after another must not
        # hand out the same ids into one shared journal.
        self._next_task_id = 2221 + secrets.randbelow(1_000_000) * 1000
        self._background: set[asyncio.Task[Any]] = set()
        self._status_changed = threading.Condition()

    # lifecycle (see `_state.EmulatorState`)

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._queue_event = asyncio.Event()

    async def shutdown(self) -> None:
        pending = [t.runner for t in self.tasks.values() if t.runner is not None and not t.runner.done()]
        pending += list(self._background)
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def pause_queue(self) -> None:
        self.paused = True

    def resume_queue(self) -> None:
        self.paused = False
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake_queue)

    def _wake_queue(self) -> None:
        event, self._queue_event = self._queue_event, asyncio.Event()
        if event is not None:
            event.set()

    def wait_task(self, ident: str, timeout: float = 10.0, statuses: tuple[str, ...] = TERMINAL) -> TaskRecord:
        """Block (another thread) until the task with this id or token reaches one of `statuses`."""

        ident = str(ident)

        def reached() -> bool:
            task = self.tasks.get(ident) or self.by_token.get(ident)
            return task is not None and task.status in statuses

        with self._status_changed:
            if not self._status_changed.wait_for(reached, timeout):
                raise TimeoutError(f"task {ident} did not reach {statuses} within {timeout} s")
        return self.tasks.get(ident) or self.by_token[ident]

    async def delay(self, factor: float = 1.0) -> None:
        seconds = self.host.stage_delay * factor
        await asyncio.sleep(seconds if seconds > 0 else 0)  # 0 still yields to the loop between frames

    def _spawn(self, coro: Any) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    # ---- a task's life

    def start(self, project: Project, spec: ModelSpec, parameters: dict[str, Any], values: dict[str, Any],
              inputs: dict[str, list[InputFile]], callback_url: str) -> TaskRecord:
        """Record a new task in task_queue and start its progression on the running loop."""
        task = TaskRecord(str(self._next_task_id), random_token(), project, spec, parameters, values, inputs,
                          callback_url=callback_url)
        self._next_task_id += 1
        self.tasks[task.id] = task
        self.by_token[task.token] = task
        self.active.add(task)
        self.host.stats.note_active(len(self.active))
        stat = self.taskstats[spec.id]
        stat["run"] += 1
        stat["last"] = int(time.time())
        self._advance(task, "task_queue")
        task.runner = asyncio.get_running_loop().create_task(self._lifecycle(task))
        return task

    def active_count(self, project: Project) -> int:
        return sum(1 for task in self.active if task.project is project)

    # RunHost (what `TaskRun` calls)

    def emit(self, task: TaskRecord, type_: str, message: Any = None) -> None:
        # Frame envelope (Wiro §8).
        self.send_frame(task, {"type": type_, "id": task.id, "tasktoken": task.token, "message": message,
                               "result": True})

    def send_frame(self, task: TaskRecord, frame: dict[str, Any]) -> None:
        self.host.hub.broadcast(task.token, frame)

    def send_binary(self, task: TaskRecord, data: bytes) -> None:
        self.host.hub.send_binary(task.token, data)

    def session(self, session_id: str) -> list[str]:
        return self.sessions.setdefault(session_id, [])

    def _advance(self, task: TaskRecord, status: str, message: Any = None) -> None:
        task.status = status
        task.times[STATUS_TIMES[status]] = unix_now()
        if status in TERMINAL:
            self.active.discard(task)
        self.emit(task, status, message)
        with self._status_changed:
            self._status_changed.notify_all()

    def add_output(self, task: TaskRecord, name: str, stored: StoredFile) -> None:
        """Record an output under the `name` the model declared; the bytes go to a URL-safe path of the store's."""
        host = self.host
        if host.output_ttl is not None:
            stored.expires_at = time.time() + host.output_ttl
        served = host.files.put_unique(task.cdn, stored)
        now = unix_now()
        task.outputs.append({
            "id": hex_id(), "name": name, "contenttype": stored.content_type, "parentid": task.folder_id,
            "uuid": task.project.uuid, "size": str(stored.size), "addedtime": now, "modifiedtime": now,
            "accesskey": random_token(), "foldercount": "0", "filecount": "0", "ispublic": 0,
            "expiretime": None if stored.expires_at is None else str(int(stored.expires_at)),
            "url": f"{host.base_url}/files/{task.cdn}/{served}",
        })

    async def _lifecycle(self, task: TaskRecord) -> None:
        try:
            await self._progress(task)
        finally:
            if task.terminal and task.callback_url:
                self._spawn(self._callback(task))

    async def _progress(self, task: TaskRecord) -> None:
        await self.delay()
        while self.paused:  # pause_queue(): stay in task_queue (cancel-while-queued tests)
            assert self._queue_event is not None
            await self._queue_event.wait()
        for status in PRE_RUN:
            self._advance(task, status)
            await self.delay()
        task.started_at = time.time()
        failure: str | None = None
        try:
            await task.spec.run(TaskRun(self, task))
        except ModelFailure as exc:
            failure = str(exc)
        except Exception as exc:  # a crashing model ends its task the same way a failing one does
            failure = f"{type(exc).__name__}: {exc}"
        task.ended_at = time.time()
        if task.llm is not None:
            # LLM: the answer lives in debugoutput and a raw output item (Wiro §6, §8).
            task.debugoutput = "".join(task.llm["answer"])
            self.emit(task, "task_output_full", {k: task.llm[k] for k in ("raw", "thinking", "answer")})
        elif task.stdout:
            task.debugoutput = "\n".join(task.stdout)
            self.emit(task, "task_output_full", {"raw": task.debugoutput})
        if failure is not None:
            task.debugerror = failure
            self.emit(task, "task_error_full", {"raw": failure})
        await self.delay()
        self._advance(task, "task_end")
        await self.delay()
        self._advance(task, "task_postprocess_start")
        await self.delay()
        stat = self.taskstats[task.spec.id]
        if failure is not None:
            task.pexit, task.outputs, task.totalcost = "1", [], "0"
            stat["error"] += 1
        else:
            if task.llm is not None:
                task.outputs = [{"contenttype": "raw", "content": dict(task.llm)}]
            task.pexit, task.totalcost = "0", f"{_cost(task):.12f}"
            stat["success"] += 1
        self._advance(task, "task_postprocess_end", [dict(o) for o in task.outputs])

    def end_cancelled(self, task: TaskRecord, killed: bool) -> None:
        if killed:
            task.pexit, task.debugerror = "-1", (task.debugerror + "\nkilled").strip()
            task.ended_at = time.time()
        task.outputs, task.totalcost = [], "0"
        self._advance(task, "task_cancel")  # terminal (Wiro §8)
        if task.runner is not None and task.runner is not asyncio.current_task():
            task.runner.cancel()
        if task.callback_url and (task.runner is None or task.runner.done()):
            self._spawn(self._callback(task))

    async def _callback(self, task: TaskRecord) -> None:
        """Best effort POST of the final Task/Detail to `callbackUrl`; loopback only (no network)."""
        url = task.callback_url
        stats = self.host.stats
        host = urllib.parse.urlsplit(url).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            stats.callbacks.append((url, "skipped"))
            return
        payload = json.dumps({"result": True, "errors": [], "total": "1", "tasklist": [task.detail()]}).encode()

        def post() -> int:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            request = urllib.request.Request(url, data=payload, method="POST",
                                             headers={"content-type": "application/json"})
            with opener.open(request, timeout=5) as response:
                return int(response.status)

        try:
            status: int | str = await asyncio.to_thread(post)
        except Exception as exc:
            status = type(exc).__name__
        stats.callbacks.append((url, status))

    def on_last_listener_gone(self, token: str) -> None:
        # A realtime session whose client disconnects without task_session_end is ended by the server (Wiro §9).
        task = self.by_token.get(token)
        if task is not None and task.realtime and task.status == "task_start" and task.listener.is_set():
            task.audio.put_nowait(None)

    def find(self, project: Project, body: dict[str, Any]) -> TaskRecord | str | None:
        """The project's task named by `tasktoken`/`socketaccesstoken` or `taskid`; an error text if neither is given."""
        token = body.get("tasktoken") or body.get("socketaccesstoken")
        task_id = body.get("taskid")
        if missing(token) and missing(task_id):
            return "taskid or socketaccesstoken is required"
        task = self.by_token.get(str(token)) if not missing(token) else self.tasks.get(str(task_id).strip())
        if task is None or task.project is not project:
            return None
        return task


def _cost(task: TaskRecord) -> float:
    price, method = task.spec.price, task.spec.price_method
    if method == "cpo":
        return price * len(task.outputs)
    if method == "cps":
        return price * task.elapsed()
    if method == "cp-realtimeturn":
        return price * task.turns
    return price


# --- Task/* routes ---------------------------------------------------------------------------------


class TaskRoutesHost(Protocol):
    """What the Task/* routes need from the emulator's state."""

    @property
    def engine(self) -> TaskEngine: ...
    @property
    def files(self) -> FileStore: ...


def _task_response(tasks: list[TaskRecord], total: int | None = None) -> Response:
    # `total` is a STRING in Task/* answers (Wiro §6).
    return ok(total=str(len(tasks) if total is None else total), tasklist=[t.detail() for t in tasks])


def _lookup(state: TaskRoutesHost, project: Project, body: dict[str, Any]) -> TaskRecord | Response:
    """The task a Task/* body names, or the error answer: code 0 for a bad body, code 1 when unknown."""
    task = state.engine.find(project, body)
    if isinstance(task, str):
        return fail(0, task)
    if task is None:
        return fail(1, NO_TASK)
    return task


async def task_detail(state: TaskRoutesHost, project: Project, body: dict[str, Any]) -> Response:
    task = _lookup(state, project, body)
    if not isinstance(task, TaskRecord):
        return task
    return _task_response([task])


async def task_list(state: TaskRoutesHost, project: Project, body: dict[str, Any]) -> Response:
    tasks = [t for t in state.engine.tasks.values() if t.project is project]
    model = str(body.get("modelName") or "").strip().lower()
    if model:
        tasks = [t for t in tasks if f"{t.spec.owner}/{t.spec.clean}" == model]
    tasks.sort(key=lambda t: int(t.id), reverse=str(body.get("order") or "DESC").upper() != "ASC")
    start, limit = max(0, to_int(body.get("start"), 0)), to_int(body.get("limit"), 20) or 20
    return _task_response(tasks[start: start + limit], total=len(tasks))


async def task_cancel(state: TaskRoutesHost, project: Project, body: dict[str, Any]) -> Response:
    task = _lookup(state, project, body)
    if not isinstance(task, TaskRecord):
        return task
    if task.status != "task_queue":
        # Cancel is for queued tasks only; running ones need Task/Kill (Wiro §7).
        return fail(1, "Task is not cancellable. Only queued tasks can be cancelled; use Task/Kill for "
                       "running tasks.")
    state.engine.end_cancelled(task, killed=False)
    return _task_response([task])


async def task_kill(state: TaskRoutesHost, project: Project, body: dict[str, Any]) -> Response:
    task = _lookup(state, project, body)
    if not isinstance(task, TaskRecord):
        return task
    if task.status == "task_queue" or task.terminal:
        return fail(1, "Task is not killable. Only running tasks can be killed; use Task/Cancel for "
                       "queued tasks.")
    state.engine.end_cancelled(task, killed=True)
    return _task_response([task])


async def task_io_delete(state: TaskRoutesHost, project: Project, body: dict[str, Any]) -> Response:
    task = state.engine.find(project, body)
    if not isinstance(task, TaskRecord):
        return fail(1, "task-not-exist")
    if not task.terminal:
        return fail(1, "Task must be completed or cancelled before deleting files")
    for output in task.outputs:
        if "url" in output:
            state.files.remove(task.cdn, output["url"].rsplit("/", 1)[-1])
    for entries in task.inputs.values():
        for entry in entries:
            parts = urllib.parse.urlsplit(entry.url).path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["v1", "File"]:
                state.files.remove(parts[2], parts[3])
    return ok()
