"""IPython magics: `%wiro`, `%%wiro run` / `%%wiro batch`, `%%wchat`.

    %load_ext wiro_jupyter        # or: %load_ext wiro_jupyter.magics
    %wiro?                        # everything, with examples

A thin layer over the Python API (every magic is also a Python call). Loading is cheap: IPython
pieces only; httpx, PIL and the widgets load when a magic runs.

- `_wiro`: the `%wiro` / `%%wiro` magics, the subcommand table and its small subcommands;
- `_run`: `%%wiro run` (plan, start, wait, finish); `_batch`: `%%wiro batch`;
- `_account`: login, logout, config, emulator;
- `_wchat`: the `%%wchat` magic; `_display`: provenance metadata and the display of a task;
- `_parse`: reading lines and bodies; `_complete`: Tab completion;
- `_transform`: the input transformer that makes `%%wiro run` and `%%wchat` cells awaited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _complete, _display, _transform
from ._account import credentials_from_file
from ._display import provenance
from ._wchat import WchatMagics
from ._wchat import run_cell_async as wchat_cell_async
from ._wiro import SUBCOMMANDS, WiroMagics, cell_async

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

__all__ = ["load_ipython_extension", "provenance", "unload_ipython_extension"]


def load_ipython_extension(ip: InteractiveShell) -> None:
    """`%load_ext wiro_jupyter`: register the magics, the awaited-cell transformer, the completers, the task formatter."""
    unload_ipython_extension(ip)  # a second %load_ext must not register anything twice
    credentials_from_file()
    ip.register_magics(WiroMagics, WchatMagics)
    _transform.register_async_cell("wiro", cell_async)
    _transform.register_async_cell("wchat", wchat_cell_async)
    _complete.install(ip, list(SUBCOMMANDS))
    _display.install(ip)
    _transform.install(ip)


def unload_ipython_extension(ip: InteractiveShell) -> None:
    """Undo `load_ipython_extension` (IPython calls it for `%unload_ext` and `%reload_ext`)."""
    _transform.uninstall(ip)
    _display.uninstall(ip)
    _complete.uninstall(ip)
    for name in ("wiro", "wchat"):
        _transform.unregister_async_cell(name)
    manager = ip.magics_manager
    for kind, name in (("line", "wiro"), ("cell", "wiro"), ("cell", "wchat")):
        manager.magics[kind].pop(name, None)
    for magics in (WiroMagics, WchatMagics):
        manager.registry.pop(magics.__name__, None)
