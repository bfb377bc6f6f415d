"""Awaited magic cells: an input transformer turns `%%wiro …` and `%%wchat …` cells into `await …`.

Why: a blocking cell receives no widget message, so a status bar's Cancel could not act until the cell
ended; an awaited cell runs on the kernel's loop, which handles them (a click ends the cell 0.03-0.11 s
later) and still runs the next cell only after this one: measured in tests/test_magics.py (`test_kernel_*`)
and tests/test_widgets.py (`test_cancel_clicked_while_a_cell_awaits`).

The cell magic itself cannot await (IPython calls magics synchronously), so an input transformer in
`shell.input_transformers_cleanup` rewrites the cell before IPython's own `%%` handling sees it (the
cleanup transformers see the raw text; `input_transformers_post` would only see
`get_ipython().run_cell_magic(...)`):

    %%wiro run wiro/text-to-image width=768        await __import__("wiro_jupyter.magics._transform",
    a lighthouse at dawn                     →        fromlist=["run_async_cell"]).run_async_cell(
                                                     "wiro", 'run wiro/text-to-image width=768',
                                                     'a lighthouse at dawn\\n')

The rewrite only happens where the await runs on the kernel's loop: an ipykernel shell with
`%autoawait` on and the asyncio runner. Elsewhere (terminal IPython, a plain `InteractiveShell`,
`%autoawait off`, a direct `run_cell_magic(...)` call) the magic runs as usual and blocks, and Ctrl-C
stops the paid task (`Task.wait()`); an awaited cell is interrupted through `wait_interruptibly`.

Result values: a handler displays what it wants and returns the cell's value; `run_async_cell` (and
the blocking path, with `publish_result`) store it as the cell's result (`_`, `__`, `_N`, `Out[N]`,
`ExecutionResult.result`) without displaying it a second time.

Registering a cell magic (as `wiro_jupyter.magics` does for `%%wiro` and `%%wchat`):

    async def wchat_cell(shell, line, body):   # the awaited path
        ...; return value                       # becomes `_` / Out[N]
    register_async_cell("wchat", wchat_cell)
    # plus an ordinary @cell_magic "wchat" (the blocking path) that ends with
    # `publish_result(shell, value)` and returns None.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from .._loop import await_waking as wait_interruptibly

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = [
    "ASYNC_CELL_HANDLERS",
    "FORCE_AWAIT",
    "CellInterrupted",
    "can_await",
    "install",
    "publish_result",
    "register_async_cell",
    "run_async_cell",
    "uninstall",
    "unregister_async_cell",
    "wait_interruptibly",
]

AsyncCellHandler = Callable[["InteractiveShell", str, str], Awaitable[Any]]

#: cell magic name (without %%) → `async def handler(shell, line, body) -> result`
ASYNC_CELL_HANDLERS: dict[str, AsyncCellHandler] = {}

#: None: decide per shell (ipykernel + autoawait + asyncio runner); True/False: force (tests).
FORCE_AWAIT: bool | None = None


_MARK = "_wiro_async_cell_transformer"
_HEADER = re.compile(r"^%%(?P<name>[A-Za-z_]\w*)(?:[ \t]+(?P<line>.*?))?[ \t]*$")


def register_async_cell(name: str, handler: AsyncCellHandler) -> None:
    """Make `%%name` cells awaited where possible; `handler(shell, line, body)` runs them."""
    ASYNC_CELL_HANDLERS[name] = handler


def unregister_async_cell(name: str) -> None:
    ASYNC_CELL_HANDLERS.pop(name, None)


class CellInterrupted(Exception):
    """An awaited magic cell was interrupted (kernel interrupt): shown as one line, no traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31mInterrupted\x1b[0m: {self}"]


def can_await(shell: InteractiveShell) -> bool:
    """Whether a rewritten `await` cell would run on the kernel's own asyncio loop."""
    if FORCE_AWAIT is not None:
        return FORCE_AWAIT
    if getattr(shell, "kernel", None) is None or not getattr(shell, "autoawait", False):
        return False
    from IPython.core.interactiveshell import _asyncio_runner

    return getattr(shell, "loop_runner", None) is _asyncio_runner


def _make_transformer(shell: InteractiveShell) -> Callable[[list[str]], list[str]]:
    def transform(lines: list[str]) -> list[str]:
        if not lines or not lines[0].startswith("%%"):
            return lines
        match = _HEADER.match(lines[0].rstrip("\r\n"))
        if match is None:  # `%%wiro?` (help) and anything unusual: IPython's own handling
            return lines
        name, line = match.group("name"), match.group("line") or ""
        if name not in ASYNC_CELL_HANDLERS or not can_await(shell):
            return lines
        if shell.find_cell_magic(name) is None or line.endswith("?"):
            return lines
        body = "".join(lines[1:])
        call = f"await __import__({__name__!r}, fromlist=['run_async_cell']).run_async_cell({name!r}, {line!r}, {body!r})\n"
        return [call]

    transform.has_side_effects = False  # type: ignore[attr-defined]  # IPython may run it in check_complete
    setattr(transform, _MARK, True)
    return transform


def install(shell: InteractiveShell) -> None:
    """Add the transformer once (a second `%load_ext` / `%reload_ext` replaces it)."""
    uninstall(shell)
    shell.input_transformers_cleanup.append(_make_transformer(shell))


def uninstall(shell: InteractiveShell) -> None:
    transformers = shell.input_transformers_cleanup
    transformers[:] = [t for t in transformers if not getattr(t, _MARK, False)]


async def run_async_cell(name: str, line: str, body: str) -> None:
    """What a rewritten cell awaits: run the handler, make its value the cell's result."""
    from IPython import get_ipython

    shell = get_ipython()
    handler = ASYNC_CELL_HANDLERS.get(name)
    if handler is None:
        raise UsageError(f"%%{name} is not available any more (was the extension unloaded?). Run %load_ext wiro_jupyter.")
    try:
        value = await handler(shell, line, body)
    except asyncio.CancelledError:
        raise CellInterrupted(f"the %%{name} cell was interrupted.") from None
    publish_result(shell, value)


def publish_result(shell: InteractiveShell | None, value: Any) -> None:
    """Make `value` the cell's result (`_`, `Out[N]`, `ExecutionResult.result`) without displaying it."""
    if value is None or shell is None:
        return
    hook = shell.displayhook
    hook.update_user_ns(value)
    hook.fill_exec_result(value)
