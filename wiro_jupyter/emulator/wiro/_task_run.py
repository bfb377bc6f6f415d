"""`TaskRun`: the `RunContext` a model's run gets, on top of the engine that runs it (`RunHost`).

References like "Wiro §8" are sections of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Protocol

from ._files import StoredFile
from ._models import InputFile
from ._records import TaskRecord


class RunHost(Protocol):
    """What a run needs from the task engine (`_tasks.TaskEngine`)."""

    async def delay(self, factor: float = 1.0) -> None: ...
    def emit(self, task: TaskRecord, type_: str, message: Any = None) -> None: ...
    def send_frame(self, task: TaskRecord, frame: dict[str, Any]) -> None: ...
    def send_binary(self, task: TaskRecord, data: bytes) -> None: ...
    def add_output(self, task: TaskRecord, name: str, stored: StoredFile) -> None: ...
    def session(self, session_id: str) -> list[str]: ...


class TaskRun:
    """The `RunContext` a model run gets (see `_models.RunContext`)."""

    def __init__(self, host: RunHost, task: TaskRecord) -> None:
        self.host, self.task = host, task
        self.task_id = task.id
        self.parameters = task.parameters

    def value(self, name: str) -> Any:
        return self.task.values.get(name)

    def files(self, name: str) -> list[InputFile]:
        return list(self.task.inputs.get(name, []))

    async def tick(self, factor: float = 1.0) -> None:
        await self.host.delay(factor)

    async def output_line(self, text: str) -> None:
        self.task.stdout.append(text)
        self.host.emit(self.task, "task_output", text)

    async def progress(self, message: dict[str, str]) -> None:
        # Quirk (Wiro §8): `message` is sometimes the progress object JSON-encoded as a string,
        # sometimes the object itself. Alternate.
        n = self.task.progress_frames
        self.task.progress_frames += 1
        self.host.emit(self.task, "task_output", json.dumps(message) if n % 2 == 0 else message)

    async def error_line(self, text: str) -> None:
        self.task.stderr.append(text)
        self.host.emit(self.task, "task_error", text)

    async def llm_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.host.emit(self.task, "task_output", snapshot)

    def llm_result(self, prompt: str, raw: str, thinking: list[str], answer: list[str]) -> None:
        self.task.llm = {"prompt": prompt, "raw": raw, "thinking": list(thinking), "answer": list(answer)}

    def add_output(self, name: str, content_type: str, data: bytes) -> None:
        self.host.add_output(self.task, name, StoredFile(name, content_type, len(data), data=data))

    def add_blob_output(self, name: str, content_type: str, size: int, seed: str) -> None:
        self.host.add_output(self.task, name, StoredFile(name, content_type, size, blob_seed=seed))

    async def render(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(func, *args)  # Pillow work off the loop

    def session(self, session_id: str) -> list[str]:
        return self.host.session(session_id)

    async def send_event(self, type_: str, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": type_, "id": self.task.id, "tasktoken": self.task.token, "result": True}
        self.host.send_frame(self.task, {**frame, **extra})  # realtime frames have no `message` (Wiro §8)

    async def send_audio(self, pcm: bytes) -> None:
        self.host.send_binary(self.task, self.task.token.encode("ascii") + b"|" + pcm)

    async def wait_for_listener(self) -> None:
        await self.task.listener.wait()

    async def next_audio(self) -> bytes | str | None:
        return await self.task.audio.get()

    def add_turn(self) -> None:
        self.task.turns += 1
