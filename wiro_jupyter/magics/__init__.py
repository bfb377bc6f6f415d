"""IPython magics: `%wiro`, `%%wiro run` (and `%%wchat`, from `_wchat.py` when present).

    %load_ext wiro_jupyter        # or: %load_ext wiro_jupyter.magics
    %wiro?                        # everything, with examples

A thin layer over the Python API (every magic is also a Python call). Loading is
cheap: IPython pieces only; httpx, PIL and the widgets load when a magic runs.

Plug-ins: each module named in `PLUGINS` that exists is imported and its
`load(shell)` called on `%load_ext` (and `unload(shell)` on unload /
`%reload_ext`). A plug-in registers its `Magics` class, and for cells that
should be awaited (so the kernel stays free while they wait),
`_transform.register_async_cell(name, handler)`; see `_transform` for the contract.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from . import _transform
from ._wiro import provenance

__all__ = ["PLUGINS", "load_ipython_extension", "provenance", "unload_ipython_extension"]

#: modules of this package that provide magics; missing ones are skipped.
PLUGINS = ("_wiro", "_wchat")


def _plugins() -> list[ModuleType]:
    modules = []
    for name in PLUGINS:
        qualified = f"{__name__}.{name}"
        try:
            modules.append(importlib.import_module(qualified))
        except ModuleNotFoundError as exc:
            if exc.name != qualified:  # the plug-in exists but one of its imports is missing: say so
                raise
    return modules


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext wiro_jupyter`: register the magics, the awaited-cell transformer and the completers."""
    from ._wiro import credentials_from_file

    credentials_from_file()
    for module in _plugins():
        unload = getattr(module, "unload", None)
        if unload is not None:  # a second %load_ext must not register anything twice
            unload(ip)
        module.load(ip)
    _transform.install(ip)


def unload_ipython_extension(ip: Any) -> None:
    """Undo `load_ipython_extension` (IPython calls it for `%unload_ext` and `%reload_ext`)."""
    _transform.uninstall(ip)
    for module in _plugins():
        unload = getattr(module, "unload", None)
        if unload is not None:
            unload(ip)
