"""A local emulator of the Wiro AI API: REST, the task WebSocket and a Dify-compatible chat API.

    from wiro_jupyter.emulator import Emulator
    with Emulator(stage_delay=0) as emu:
        ...  # point a client at emu.api_url / emu.socket_url with emu.api_key (random per emulator),
        ...  # a Dify client at emu.dify_url with emu.dify_chat_key; knobs: emu.faults, counters: emu.stats

It is a separate world from the client (it imports nothing from `wiro_jupyter._*`),
so a wire-format mistake on one side cannot hide behind the same mistake on the other.
Importing this package is cheap: the server stack loads when an `Emulator` is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._server import Emulator

__all__ = ["Emulator"]


def __getattr__(name: str) -> Any:
    if name == "Emulator":
        from ._server import Emulator

        return Emulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
