"""wiro-jupyter: Wiro's cloud AI models (and any Dify-compatible chat app) as native Jupyter citizens.

    import wiro_jupyter as wj
    wj.use_emulator()                      # no account needed: a local emulator with synthetic models
    task = wj.Wiro().run("wiro/text-to-image", prompt="a lighthouse at dawn")
    task                                    # shows the image

Public names are imported lazily, so `import wiro_jupyter` and `%load_ext
wiro_jupyter` stay fast: httpx, websockets, PIL and the widgets load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Wiro": "._client",
    "AsyncWiro": "._client",
    "UploadedFile": "._client",
    "tasks": "._client",
    "recover": "._client",
    "default_client": "._client",
    "Task": "._task",
    "AsyncTask": "._task",
    "Model": "._models",
    "Parameter": "._models",
    "TaskEvent": "._events",
    "Output": "._outputs",
    "Settings": "._config",
    "Journal": "._journal",
    "use_emulator": "._emulated",
    "WbotChat": ".dify._sync",
    "AsyncWbotChat": ".dify._client",
    "ChatMessage": ".chat._messages",
    "ChatEvent": ".chat._messages",
    "Chat": ".chat._wiro",
    "AsyncChat": ".chat._wiro",
    "chat_session": ".chat._sessions",
    "BatchResult": ".batch",
    "BatchItem": ".batch",
    "BatchRun": ".batch",
    "Comparison": ".batch",
    "VoiceSession": ".voice",
    "AsyncVoiceSession": ".voice",
    "VoiceTurn": ".voice",
    "VoiceConnectionLost": ".voice",
    "VoiceSessionEnded": ".voice",
    "form": ".widgets",
    "WiroError": "._exceptions",
    "AuthenticationError": "._exceptions",
    "NotFoundError": "._exceptions",
    "ValidationError": "._exceptions",
    "RateLimitError": "._exceptions",
    "ServerError": "._exceptions",
    "TaskFailedError": "._exceptions",
    "TaskCancelledError": "._exceptions",
    "WiroConnectionError": "._exceptions",
    "WiroTimeoutError": "._exceptions",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:
    from ._client import AsyncWiro, UploadedFile, Wiro, default_client, recover, tasks
    from ._config import Settings
    from ._emulated import use_emulator
    from ._events import TaskEvent
    from ._exceptions import (
        AuthenticationError,
        NotFoundError,
        RateLimitError,
        ServerError,
        TaskCancelledError,
        TaskFailedError,
        ValidationError,
        WiroConnectionError,
        WiroError,
        WiroTimeoutError,
    )
    from ._journal import Journal
    from ._models import Model, Parameter
    from ._outputs import Output
    from ._task import AsyncTask, Task
    from .batch import BatchItem, BatchResult, BatchRun, Comparison
    from .chat._messages import ChatEvent, ChatMessage
    from .chat._sessions import chat_session
    from .chat._wiro import AsyncChat, Chat
    from .dify._client import AsyncWbotChat
    from .dify._sync import WbotChat
    from .voice import AsyncVoiceSession, VoiceConnectionLost, VoiceSession, VoiceSessionEnded, VoiceTurn
    from .widgets import form


_SUBMODULES = ("widgets", "magics", "emulator")


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # `wj.widgets.form(...)` without importing the subpackage first
        return importlib.import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'wiro_jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext wiro_jupyter`: registers the %wiro, %%wiro and %%wchat magics."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .magics import unload_ipython_extension as unload

    unload(ipython)
