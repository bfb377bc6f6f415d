"""Shared fixtures: one emulator on a real loopback socket for the whole session.

Clients in tests talk HTTP and WebSocket to it exactly as they would to the
real service. Every test gets its own WIRO_HOME (journal) and a clean set of
fault knobs; `start_kernel` starts real ipykernels talking to it (tests/kernels.py).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kernels import Kernel, kernel_env, running_kernel

from wiro_jupyter.emulator import Emulator

for _name in ("WIRO_API_KEY", "WIRO_API_SECRET", "WIRO_API_URL", "WIRO_SOCKET_URL", "WBOT_API_KEY", "WBOT_API_URL"):
    os.environ.pop(_name, None)


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator(stage_delay=0) as emu:
        yield emu


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRO_HOME", str(tmp_path / "wiro-home"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no saved login of the machine's user


@pytest.fixture
def emu(emulator: Emulator) -> Iterator[Emulator]:
    """The session emulator with fault knobs, queue and stage delay reset around each test."""
    emulator.faults.reset()
    emulator.resume_queue()
    emulator.stage_delay = 0
    yield emulator
    emulator.faults.reset()
    emulator.resume_queue()
    emulator.stage_delay = 0


@pytest.fixture
def emu_env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """The environment a user of the emulator has: WIRO_* variables pointing at it."""
    monkeypatch.setenv("WIRO_API_URL", emu.api_url)
    monkeypatch.setenv("WIRO_SOCKET_URL", emu.socket_url)
    monkeypatch.setenv("WIRO_API_KEY", emu.api_key)
    return emu


@pytest.fixture
def start_kernel(emulator: Emulator, tmp_path: Path) -> Iterator[Callable[..., Kernel]]:
    """`start_kernel(load_ext=True, **env)`: a real ipykernel talking to the emulator, shut down after the test."""
    home = tmp_path / "kernel"
    home.mkdir()
    with contextlib.ExitStack() as kernels:

        def start(*, load_ext: bool = True, **env: str) -> Kernel:
            return kernels.enter_context(running_kernel(kernel_env(emulator, home, **env), home, load_ext=load_ext))

        yield start


def elements(fragment: str) -> tuple[set[str], list[str]]:
    """The element names in an HTML fragment, and every event-handler attribute (on…) found."""
    from html.parser import HTMLParser

    tags: set[str] = set()
    handlers: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.add(tag)
            handlers.extend(f"{tag}.{name}" for name, _ in attrs if name.lower().startswith("on"))

    Collect().feed(fragment)
    return tags, handlers


def wait_for_widget_state(kc: Any, widget: str, predicate: Callable[[dict[str, Any]], bool], deadline: float) -> str:
    """Read a kernel's iopub until the comm of a `widget` (its anywidget class name) sends a state
    for which `predicate(state)` holds; returns that comm's id. An error output fails the test."""
    comm = ""
    while True:
        assert time.monotonic() < deadline, f"{widget} never reached the expected state"
        msg = kc.get_iopub_msg(timeout=30)
        content = msg["content"]
        if msg["msg_type"] == "error":
            pytest.fail("\n".join(content["traceback"]))
        if msg["msg_type"] == "comm_open":
            if content["data"]["state"].get("_anywidget_id", "").endswith(widget):
                comm = content["comm_id"]
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] == comm and predicate(content["data"].get("state", {})):
            return comm


def make_client(emu: Emulator, **kwargs: Any) -> Any:
    from wiro_jupyter import Wiro

    options: dict[str, Any] = {
        "api_key": emu.api_key,
        "api_url": emu.api_url,
        "socket_url": emu.socket_url,
        "poll_interval": 0.05,
        "socket_silence": 5.0,
    }
    options.update(kwargs)
    return Wiro(**options)


@pytest.fixture
def wiro(emu: Emulator) -> Iterator[Any]:
    client = make_client(emu)
    yield client
    client.close()
