"""Awaited magic cells: an input transformer turns `%%wiro run …` (and `%%wchat …`) into `await …`.

Why: a cell that blocks synchronously never receives a widget's messages, so a
status bar's Cancel button could not work while the cell waits. What was measured
(ipykernel 7.4.0, IPython 9.18.1, tornado 6.6.1, ipywidgets 8.1.9, anywidget 0.11,
jupyter_client 8.10, Python 3.11; see tests/test_magics.py, `test_kernel_*`):

- a blocking cell: comm messages (widget clicks) wait until the cell ends;
  `jupyter-ui-poll` 1.1.0 does not change that, and `nest_asyncio` inside the
  kernel fails with `RuntimeError: cannot enter context` (widgets issue);
- a cell with a top-level `await` runs as a coroutine on the kernel's own loop
  (`IPythonKernel.do_execute` → `shell.run_cell_async`, since
  `shell.should_run_async(transformed_cell)` is true). While it awaits, the kernel
  handles comm messages: the status bar's Cancel/Kill sent in the middle of an
  awaited `%%wiro run` cell stops the task and ends the cell 0.03-0.11 s later.
  The kernel still holds the next `execute_request` back until this cell has
  finished (its `execute_input` comes after this cell's idle status); a cell that
  fails makes ipykernel skip the requests queued behind it (`stop_on_error`);
- interrupting the kernel during such a cell does not raise KeyboardInterrupt:
  ipykernel's `_cancel_on_sigint` turns SIGINT into `CancelledError` in the
  awaiting coroutine. But its signal handler schedules that with tornado's
  `IOLoop.add_callback`, which (running in the loop's own thread) uses the
  non-thread-safe `call_soon` and does not wake the loop: the cancellation waits
  until the loop wakes up for something else (ipykernel#881). Measured:
  `await asyncio.sleep(20)` interrupted after 1 s ends 19 s later; an await on a
  future that nothing resolves is never interrupted. `wait_interruptibly()` (`_loop.await_waking`)
  therefore wakes the loop every 0.1 s (a timer, nothing on the network); with it an
  interrupted `%%wiro run wiro/slow seconds=60` cell ends 0.07-0.35 s after
  `km.interrupt_kernel()`, the task killed on the server (`task_cancel`).
  `Task.wait_async()` catches the CancelledError, stops the paid task
  (Task/Cancel or Task/Kill), prints a note and re-raises; the magic turns that into
  a one-line `TaskCancelledError` so the cell fails without a traceback.

The cell magic itself cannot await (IPython calls magics synchronously), so an
input transformer in `shell.input_transformers_cleanup` rewrites the cell before
IPython's own `%%` handling sees it (the cleanup transformers see the raw text;
`input_transformers_post` would only see `get_ipython().run_cell_magic(...)`):

    %%wiro run wiro/text-to-image width=768        await __import__("wiro_jupyter.magics._transform",
    a lighthouse at dawn                     →        fromlist=["run_async_cell"]).run_async_cell(
                                                     "wiro", 'run wiro/text-to-image width=768',
                                                     'a lighthouse at dawn\\n')

The rewrite only happens where the await can run on the kernel's loop: an
ipykernel shell with `%autoawait` on and the asyncio runner. Elsewhere (terminal
IPython, a plain `InteractiveShell`, `%autoawait off`, or a direct
`run_cell_magic(...)` call) the magic runs as usual and blocks, where Ctrl-C
also stops the paid task (`Task.wait()`). Measured in a plain InteractiveShell:
forced through IPython's asyncio runner (`run_until_complete`), a SIGINT raises
KeyboardInterrupt out of the loop, not into the coroutine, and the task keeps
running on the server; the blocking path kills it (`task_cancel`) within 0.2 s.

Result values: a handler displays what it wants and returns the cell's value;
`run_async_cell` (and the blocking path) store it as the cell's result (`_`,
`__`, `_N`, `Out[N]`, `ExecutionResult.result`) without displaying it a second
time, then return None so IPython's displayhook shows nothing more.

Plugging in another cell magic (e.g. `%%wchat`, in `_wchat.py`):

    from ._transform import register_async_cell, publish_result

    async def wchat_cell(shell, line, body):   # the awaited path
        ...; return value                       # becomes `_` / Out[N]
    register_async_cell("wchat", wchat_cell)    # in the module's load(shell)
    # plus an ordinary @cell_magic "wchat" (the blocking path) that ends with
    # `publish_result(shell, value)` and returns None.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

from IPython.core.error import UsageError

from .._loop import await_waking as wait_interruptibly

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

AsyncCellHandler = Callable[[Any, str, str], Awaitable[Any]]

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


def can_await(shell: Any) -> bool:
    """Whether a rewritten `await` cell would run on the kernel's own asyncio loop."""
    if FORCE_AWAIT is not None:
        return FORCE_AWAIT
    if getattr(shell, "kernel", None) is None or not getattr(shell, "autoawait", False):
        return False
    from IPython.core.interactiveshell import _asyncio_runner

    return getattr(shell, "loop_runner", None) is _asyncio_runner


def _make_transformer(shell: Any) -> Callable[[list[str]], list[str]]:
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


def install(shell: Any) -> None:
    """Add the transformer once (a second `%load_ext` / `%reload_ext` replaces it)."""
    uninstall(shell)
    shell.input_transformers_cleanup.append(_make_transformer(shell))


def uninstall(shell: Any) -> None:
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


def publish_result(shell: Any, value: Any) -> None:
    """Make `value` the cell's result (`_`, `Out[N]`, `ExecutionResult.result`) without displaying it."""
    if value is None or shell is None:
        return
    hook = shell.displayhook
    hook.update_user_ns(value)
    hook.fill_exec_result(value)
