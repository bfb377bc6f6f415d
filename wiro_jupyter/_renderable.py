"""What the renderer (`_render.py`) reads of the objects it shows, as Protocols.

The objects (`Model`, `Output`, `Task`, `ChatMessage`, …) delegate their displays to `_render`;
`_render` knows them only by these shapes, so the arrows between them point one way. Members are
attributes where the objects' own fields have exactly these types, and read-only properties where
they hold their own kinds of items (a list of `_models.Parameter` is no list of this `Parameter`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Parameter(Protocol):
    id: str
    label: str
    description: str

    def describe(self) -> str: ...


class Model(Protocol):
    slug: str
    title: str
    description: str
    categories: list[str]
    price: float | None

    @property
    def parameters(self) -> Sequence[Parameter]: ...


class JournalEntry(Protocol):
    created: float
    task_id: str | None
    model: str
    status: str
    outputs: list[dict[str, Any]]
    saved: list[str]


class Output(Protocol):
    name: str
    url: str
    content_type: str
    size: int | None

    @property
    def kind(self) -> str: ...

    def read(self, *, max_bytes: int = ...) -> bytes: ...


class Task(Protocol):
    id: str
    model: str
    status: str
    done: bool
    ok: bool
    error: str | None
    cost: float | None
    text: str
    thinking: str

    @property
    def elapsed(self) -> float | None: ...

    @property
    def files(self) -> Sequence[Output]: ...


class ChatFile(Protocol):
    type: str
    url: str
    filename: str
    mime_type: str
    belongs_to: str
    embedded: str | None  # a data: URL once fetched ('' when it is to stay a link); the renderer sets it


class AgentStep(Protocol):
    tool: str
    tool_input: Any


class ChatMessage(Protocol):
    answer: str
    thinking: str
    audio: bytes | None

    @property
    def agent_thoughts(self) -> Sequence[AgentStep]: ...

    @property
    def files(self) -> Sequence[ChatFile]: ...
