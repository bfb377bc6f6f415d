"""What a synthetic model is: its spec, its parameter items, and the `RunContext` its run talks to.

Parameter items use the RAW server field names (docs/protocol.md, Wiro §4.1): `defaultvalue`,
string `minvalue`/`maxvalue`/`incrementby`, options `{text, value}`, `maxinputlenght` (sic),
`advanced`. Each model's behaviour (`_behaviours`) is an async `run(ctx)` that talks to the task
engine only through `RunContext`, so the models know nothing about HTTP or sockets; the
catalogue itself is `_catalogue`.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

OWNER = "wiro"
FILE_TYPES = ("fileinput", "multifileinput", "combinefileinput")
NUMERIC_TYPES = ("range", "number", "float")
SELECT_TYPES = ("select", "selectwithcover")


class ModelFailure(Exception):
    """Raised by a model run: the task ends with pexit "1" and this text in `debugerror`."""


@dataclass(frozen=True)
class InputFile:
    """One file given to a model: its URL as echoed in `parameters`, and its bytes when the emulator has them."""

    url: str
    name: str
    data: bytes | None


class RunContext(Protocol):
    """What a model run may do; implemented by `_task_run.TaskRun`."""

    task_id: str
    parameters: dict[str, Any]  # the echoed (string-coerced) parameters, as in Task/Detail

    def value(self, name: str) -> Any: ...
    def files(self, name: str) -> list[InputFile]: ...
    async def tick(self, factor: float = 1.0) -> None: ...
    async def output_line(self, text: str) -> None: ...
    async def progress(self, message: dict[str, str]) -> None: ...
    async def error_line(self, text: str) -> None: ...
    async def llm_snapshot(self, snapshot: dict[str, Any]) -> None: ...
    def llm_result(self, prompt: str, raw: str, thinking: list[str], answer: list[str]) -> None: ...
    def add_output(self, name: str, content_type: str, data: bytes) -> None: ...
    def add_blob_output(self, name: str, content_type: str, size: int, seed: str) -> None: ...
    async def render(self, func: Callable[..., Any], *args: Any) -> Any: ...
    def session(self, session_id: str) -> list[str]: ...
    async def send_event(self, type_: str, **extra: Any) -> None: ...
    async def send_audio(self, pcm: bytes) -> None: ...
    async def wait_for_listener(self) -> None: ...
    async def next_audio(self) -> bytes | str | None: ...
    def add_turn(self) -> None: ...


Runner = Callable[[RunContext], Awaitable[None]]


@dataclass(frozen=True)
class ModelSpec:
    id: str
    project: str  # raw `slugproject`, display-ish ("Text To Image") like the real catalogue (Wiro §3)
    clean: str  # `cleanslugproject`, URL-safe
    title: str
    description: str
    categories: tuple[str, ...]
    groups: list[dict[str, Any]]
    run: Runner
    price: float
    price_method: str = "cpr"
    computingtime: str = "5 seconds"
    inspire: list[dict[str, Any]] = field(default_factory=list)
    owner: str = OWNER

    @property
    def items(self) -> list[dict[str, Any]]:
        return [item for group in self.groups for item in group["items"]]

    @property
    def dynamicprice(self) -> str:
        # A JSON-encoded STRING, not an array (Wiro §3, §4).
        return json.dumps([{"inputs": {}, "price": self.price, "priceMethod": self.price_method,
                            "priceExtra": 0.0, "priceInput": 0.0}], separators=(",", ":"))

    @property
    def cps(self) -> str:
        return f"{self.price / 10:.12f}"

    @property
    def readme(self) -> str:
        return (f"<p><strong>{self.title}</strong> is a synthetic model served by the local Wiro emulator.</p>"
                f"<p>{self.description}</p><ul><li>Owner: {self.owner}</li><li>Categories: "
                f"{', '.join(self.categories)}</li></ul>")


def param(pid: str, type_: str, label: str, *, required: bool = False, default: Any = "",
          placeholder: str = "", note: str = "", advanced: bool = False, minvalue: str | None = None,
          maxvalue: str | None = None, step: str | None = None, options: list[tuple[str, str]] | None = None,
          maxlen: int | None = None, covers: bool = False) -> dict[str, Any]:
    """One parameter item with raw field names; type-specific fields only where they apply."""
    item: dict[str, Any] = {"id": pid, "type": type_, "label": label, "placeholder": placeholder, "note": note,
                            "required": required, "defaultvalue": default, "advanced": advanced}
    if minvalue is not None:
        item["minvalue"] = minvalue  # strings (Wiro §4.1)
        item["maxvalue"] = maxvalue
        item["incrementby"] = step or "1"
    if options is not None:
        item["options"] = [{"text": text, "value": value} for text, value in options]
        if covers:
            for option in item["options"]:
                option["cover"] = f"/files/covers/{option['value'] or 'default'}.jpg"
    if maxlen is not None:
        item["maxinputlenght"] = maxlen  # (sic) int
    return item


def group(title: str, items: list[dict[str, Any]], subtitle: str = "") -> dict[str, Any]:
    return {"title": title, "subtitle": subtitle, "items": items}
