"""Model runs: the Run route that starts a task, and the `RunContext` a model's run talks to (see `_models`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ._envelope import close_uploads, fail, ok, read_body
from ._files import StoredFile
from ._models import InputFile
from ._parameters import prepare

if TYPE_CHECKING:
    from ._app import EmulatorState
    from ._auth import Project
    from ._tasks import TaskRecord


async def run(state: EmulatorState, request: Request, project: Project, owner: str, slug: str) -> Response:
    """Run/<owner>/<slug>: validate the body, record the task and start it (§5)."""
    spec = state.catalogue.find(owner, slug)
    if spec is None:
        return fail(1, "slug-owner-project-not-exist")
    body, files, error = await read_body(request)
    if error is not None:
        return error
    try:
        prepared = await prepare(spec, body, files, state.files, state.base_url)
    finally:
        await close_uploads(files)
    if isinstance(prepared, str):
        return fail(0, prepared)
    parameters, values, inputs = prepared
    task = state.engine.start(project, spec, parameters, values, inputs, str(body.get("callbackUrl") or ""))
    return ok(taskid=task.id, socketaccesstoken=task.token)  # taskid: numeric string (§5)


class TaskRun:
    """The `RunContext` a model run gets (see `_models.RunContext`)."""

    def __init__(self, state: EmulatorState, task: TaskRecord) -> None:
        self.state, self.task = state, task
        self.task_id = task.id
        self.parameters = task.parameters

    def value(self, name: str) -> Any:
        return self.task.values.get(name)

    def files(self, name: str) -> list[InputFile]:
        return list(self.task.inputs.get(name, []))

    async def tick(self, factor: float = 1.0) -> None:
        await self.state.engine.delay(factor)

    async def output_line(self, text: str) -> None:
        self.task.stdout.append(text)
        self.state.engine.emit(self.task, "task_output", text)

    async def progress(self, message: dict[str, str]) -> None:
        # Quirk (§8, Dart CHANGELOG): `message` is sometimes the progress object
        # JSON-encoded as a string, sometimes the object itself. Alternate.
        n = self.task.progress_frames
        self.task.progress_frames += 1
        self.state.engine.emit(self.task, "task_output", json.dumps(message) if n % 2 == 0 else message)

    async def error_line(self, text: str) -> None:
        self.task.stderr.append(text)
        self.state.engine.emit(self.task, "task_error", text)

    async def llm_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.state.engine.emit(self.task, "task_output", snapshot)

    def llm_result(self, prompt: str, raw: str, thinking: list[str], answer: list[str]) -> None:
        self.task.llm = {"prompt": prompt, "raw": raw, "thinking": list(thinking), "answer": list(answer)}

    def add_output(self, name: str, content_type: str, data: bytes) -> None:
        self.state.engine.add_output(self.task, StoredFile(name, content_type, len(data), data=data))

    def add_blob_output(self, name: str, content_type: str, size: int, seed: str) -> None:
        self.state.engine.add_output(self.task, StoredFile(name, content_type, size, blob_seed=seed))

    async def render(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(func, *args)  # Pillow work off the loop

    def session(self, session_id: str) -> list[str]:
        return self.state.sessions.setdefault(session_id, [])

    async def send_event(self, type_: str, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": type_, "id": self.task.id, "tasktoken": self.task.token, "result": True}
        self.state.hub.broadcast(self.task.token, {**frame, **extra})  # realtime frames have no `message` (§8)

    async def send_audio(self, pcm: bytes) -> None:
        self.state.hub.send_binary(self.task.token, self.task.token.encode("ascii") + b"|" + pcm)

    async def wait_for_listener(self) -> None:
        await self.task.listener.wait()

    async def next_audio(self) -> bytes | str | None:
        return await self.task.audio.get()

    def add_turn(self) -> None:
        self.task.turns += 1
