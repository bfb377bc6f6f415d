"""Task records and their progression through the statuses (§6, §8); the Task/* routes.

Everything here runs on the server loop, except `TaskEngine.wait_task` (another thread,
through a condition) and the `paused` flag.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from ._envelope import NO_TASK, fail, ok
from ._files import StoredFile
from ._ids import cdn_folder, hex_id, random_token, unix_now
from ._models import InputFile, ModelFailure, ModelSpec
from ._parameters import missing, to_int
from ._runs import TaskRun

if TYPE_CHECKING:
    from ._app import EmulatorState
    from ._auth import Project

TERMINAL = ("task_postprocess_end", "task_cancel")
PRE_RUN = ("task_accept", "task_assign", "task_preprocess_start", "task_preprocess_end", "task_start")
STATUS_TIMES = {
    "task_queue": "createtime", "task_accept": "accepttime", "task_assign": "assigntime",
    "task_preprocess_start": "preprocessstarttime", "task_preprocess_end": "preprocessendtime",
    "task_start": "starttime", "task_end": "endtime", "task_postprocess_start": "postprocessstarttime",
    "task_postprocess_end": "postprocessendtime", "task_cancel": "canceltime",
}


@dataclass(eq=False)
class TaskRecord:
    """One task as the emulator knows it. `detail()` is its Task/Detail wire form (§6); `record["status"]` works too."""

    id: str
    token: str
    project: Project
    spec: ModelSpec
    parameters: dict[str, Any]  # echoed, string-coerced
    values: dict[str, Any]  # effective typed values for the model run
    inputs: dict[str, list[InputFile]]
    callback_url: str = ""
    status: str = "task_queue"
    pexit: str | None = None
    times: dict[str, str] = field(default_factory=lambda: dict.fromkeys(STATUS_TIMES.values(), "0"))
    outputs: list[dict[str, Any]] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    debugoutput: str = ""
    debugerror: str = ""
    totalcost: str = "0"
    started_at: float | None = None
    ended_at: float | None = None
    turns: int = 0
    progress_frames: int = 0
    llm: dict[str, Any] | None = None
    folder_id: str = field(default_factory=hex_id)
    cdn: str = field(default_factory=cdn_folder)
    runner: asyncio.Task[None] | None = None
    listener: asyncio.Event = field(default_factory=asyncio.Event)
    audio: asyncio.Queue[bytes | str | None] = field(default_factory=asyncio.Queue)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def realtime(self) -> bool:
        return self.spec.price_method == "cp-realtimeturn"

    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.ended_at or time.time()) - self.started_at)

    def detail(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": self.id, "uuid": self.project.uuid, "name": "", "description": "",
            "socketaccesstoken": self.token, "parameters": dict(self.parameters),
            "debugoutput": self.debugoutput, "debugerror": self.debugerror,
            "status": self.status, "pexit": self.pexit,  # null while running (§6)
            **self.times,
            "elapsedseconds": f"{self.elapsed():.4f}", "cps": spec.cps, "totalcost": self.totalcost,
            "guestid": None, "projectid": self.project.id, "modelid": spec.id, "runtype": "model",
            "callbackurl": self.callback_url, "marketplaceid": None,
            "categories": json.dumps(list(spec.categories)),  # a JSON string (§6 [?], ALTU)
            "dynamicprice": spec.dynamicprice, "modeldescription": spec.description,
            "modelslugowner": spec.owner, "modelslugproject": spec.clean,
            "size": str(sum(int(o.get("size", 0)) for o in self.outputs if "size" in o)),
            "outputs": [dict(o) for o in self.outputs],
        }

    def __getitem__(self, key: str) -> Any:
        return self.detail()[key]


class TaskEngine:
    """The tasks (by id and by socket token) and their way from task_queue to a terminal status."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.tasks: dict[str, TaskRecord] = {}
        self.by_token: dict[str, TaskRecord] = {}
        self.loop: asyncio.AbstractEventLoop | None = None
        self.paused = False
        self._queue_event: asyncio.Event | None = None
        # Real ids are unique across the service; emulators started one after another must not
        # hand out the same ids into one shared journal.
        self._next_task_id = 2221 + secrets.randbelow(1_000_000) * 1000
        self._background: set[asyncio.Task[Any]] = set()
        self._status_changed = threading.Condition()

    # lifecycle (see EmulatorState)

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
        seconds = self.state.stage_delay * factor
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
        stat = self.state.taskstats[spec.id]
        stat["run"] += 1
        stat["last"] = int(time.time())
        self._advance(task, "task_queue")
        task.runner = asyncio.get_running_loop().create_task(self._lifecycle(task))
        return task

    def emit(self, task: TaskRecord, type_: str, message: Any = None) -> None:
        # Frame envelope (§8).
        self.state.hub.broadcast(task.token, {"type": type_, "id": task.id, "tasktoken": task.token,
                                              "message": message, "result": True})

    def _advance(self, task: TaskRecord, status: str, message: Any = None) -> None:
        task.status = status
        task.times[STATUS_TIMES[status]] = unix_now()
        self.emit(task, status, message)
        with self._status_changed:
            self._status_changed.notify_all()

    def add_output(self, task: TaskRecord, stored: StoredFile) -> None:
        state = self.state
        if state.output_ttl is not None:
            stored.expires_at = time.time() + state.output_ttl
        state.files.put(task.cdn, stored)
        now = unix_now()
        task.outputs.append({
            "id": hex_id(), "name": stored.name, "contenttype": stored.content_type, "parentid": task.folder_id,
            "uuid": task.project.uuid, "size": str(stored.size), "addedtime": now, "modifiedtime": now,
            "accesskey": random_token(), "foldercount": "0", "filecount": "0", "ispublic": 0,
            "expiretime": None if stored.expires_at is None else str(int(stored.expires_at)),
            "url": f"{state.base_url}/files/{task.cdn}/{stored.name}",
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
            await task.spec.run(TaskRun(self.state, task))
        except ModelFailure as exc:
            failure = str(exc)
        except Exception as exc:  # a crashing model ends its task the same way a failing one does
            failure = f"{type(exc).__name__}: {exc}"
        task.ended_at = time.time()
        if task.llm is not None:
            # LLM: the answer lives in debugoutput and a raw output item (§6, llm-chat-streaming.md).
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
        stat = self.state.taskstats[task.spec.id]
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
        self._advance(task, "task_cancel")  # terminal (§8)
        if task.runner is not None and task.runner is not asyncio.current_task():
            task.runner.cancel()
        if task.callback_url and (task.runner is None or task.runner.done()):
            self._spawn(self._callback(task))

    async def _callback(self, task: TaskRecord) -> None:
        """Best effort POST of the final Task/Detail to `callbackUrl`; loopback only (no network)."""
        url = task.callback_url
        stats = self.state.stats
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
        # A realtime session whose client disconnects without task_session_end is ended by the server (§9).
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


def _task_response(tasks: list[TaskRecord], total: int | None = None) -> Response:
    # `total` is a STRING in Task/* answers (§6).
    return ok(total=str(len(tasks) if total is None else total), tasklist=[t.detail() for t in tasks])


def _lookup(state: EmulatorState, project: Project, body: dict[str, Any]) -> TaskRecord | Response:
    """The task a Task/* body names, or the error answer: code 0 for a bad body, code 1 when unknown."""
    task = state.engine.find(project, body)
    if isinstance(task, str):
        return fail(0, task)
    if task is None:
        return fail(1, NO_TASK)
    return task


async def task_detail(state: EmulatorState, project: Project, body: dict[str, Any]) -> Response:
    task = _lookup(state, project, body)
    if not isinstance(task, TaskRecord):
        return task
    return _task_response([task])


async def task_list(state: EmulatorState, project: Project, body: dict[str, Any]) -> Response:
    tasks = [t for t in state.tasks.values() if t.project is project]
    model = str(body.get("modelName") or "").strip().lower()
    if model:
        tasks = [t for t in tasks if f"{t.spec.owner}/{t.spec.clean}" == model]
    tasks.sort(key=lambda t: int(t.id), reverse=str(body.get("order") or "DESC").upper() != "ASC")
    start, limit = max(0, to_int(body.get("start"), 0)), to_int(body.get("limit"), 20) or 20
    return _task_response(tasks[start: start + limit], total=len(tasks))


async def task_cancel(state: EmulatorState, project: Project, body: dict[str, Any]) -> Response:
    task = _lookup(state, project, body)
    if not isinstance(task, TaskRecord):
        return task
    if task.status != "task_queue":
        # Cancel is for queued tasks only; running ones need Task/Kill (§7).
        return fail(1, "Task is not cancellable. Only queued tasks can be cancelled; use Task/Kill for "
                       "running tasks.")
    state.engine.end_cancelled(task, killed=False)
    return _task_response([task])


async def task_kill(state: EmulatorState, project: Project, body: dict[str, Any]) -> Response:
    task = _lookup(state, project, body)
    if not isinstance(task, TaskRecord):
        return task
    if task.status == "task_queue" or task.terminal:
        return fail(1, "Task is not killable. Only running tasks can be killed; use Task/Cancel for "
                       "queued tasks.")
    state.engine.end_cancelled(task, killed=True)
    return _task_response([task])


async def task_io_delete(state: EmulatorState, project: Project, body: dict[str, Any]) -> Response:
    task = state.engine.find(project, body)
    if not isinstance(task, TaskRecord):
        return fail(1, "task-not-exist")
    if not task.terminal:
        return fail(1, "Task must be completed or cancelled before deleting files")
    for output in task.outputs:
        if "name" in output:
            state.files.remove(task.cdn, output["name"])
    for entries in task.inputs.values():
        for entry in entries:
            parts = urllib.parse.urlsplit(entry.url).path.strip("/").split("/")
            if len(parts) == 4 and parts[:2] == ["v1", "File"]:
                state.files.remove(parts[2], parts[3])
    return ok()
