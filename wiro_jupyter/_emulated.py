"""Point this process at a local emulator: no account, no network, synthetic outputs."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .emulator import Emulator

_running: Emulator | None = None


def running_emulator() -> Emulator | None:
    """The emulator `use_emulator()` started in this process, if it still runs."""
    return _running


def use_emulator(*, stage_delay: float = 0.15, quiet: bool = False) -> Emulator:
    """Start the embedded emulator (once per process) and make it the default for new clients.

    Sets WIRO_API_URL, WIRO_SOCKET_URL, WIRO_API_KEY (and WBOT_API_URL /
    WBOT_API_KEY for chat) in this process's environment. Returns the Emulator.
    """
    global _running
    from .emulator import Emulator

    if _running is None:
        _running = Emulator(stage_delay=stage_delay).start()
    emu = _running
    os.environ.pop("WIRO_API_SECRET", None)
    os.environ.update(
        WIRO_API_URL=emu.api_url,
        WIRO_SOCKET_URL=emu.socket_url,
        WIRO_API_KEY=emu.api_key,
    )
    os.environ.update(emulator_chat_env(emu))
    if not quiet:
        sys.stderr.write(f"wiro-jupyter: using the local emulator at {emu.base_url} — models and outputs are synthetic.\n")
    return emu


def emulator_chat_env(emu: Emulator) -> dict[str, str]:
    """The Dify-compatible demo apps of an emulator (its own random keys), as WBOT_* variables."""
    return {
        "WBOT_API_URL": emu.dify_url,
        "WBOT_API_KEY": emu.dify_chat_key,
        "WBOT_AGENT_KEY": emu.dify_agent_key,
        "WBOT_CHATFLOW_KEY": emu.dify_chatflow_key,
    }


def stop_emulator() -> None:
    global _running
    if _running is not None:
        _running.stop()
        _running = None
