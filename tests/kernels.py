"""Real ipykernels for the tests: one way to start them, pointed at the session's emulator.

`kernel_env` is the environment (the emulator's URLs and key, a home of its own for the journal,
the saved login and IPython's profile, this checkout first on the path); `running_kernel` starts a
kernel in it, waits until it answers, optionally loads the extension, and shuts it down afterwards.
The `start_kernel` fixture (conftest.py) hands these out per test; a module that shares one kernel
between its tests uses `running_kernel` in a module-scoped fixture.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

REPO = Path(__file__).resolve().parent.parent

Kernel = tuple[KernelManager, BlockingKernelClient]


def kernel_env(emulator: Any, home: Path, **extra: str) -> dict[str, str]:
    """The environment of a kernel (or of nbclient's kernels) that talks to `emulator`; `extra` adds to it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WIRO_", "WBOT_"))}
    env.update(
        WIRO_API_URL=emulator.api_url,
        WIRO_SOCKET_URL=emulator.socket_url,
        WIRO_API_KEY=emulator.api_key,
        WIRO_HOME=str(home / "wiro-home"),
        XDG_CONFIG_HOME=str(home / "xdg"),
        IPYTHONDIR=str(home / "ipython"),
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p),
    )
    env.update(extra)
    return env


@contextlib.contextmanager
def running_kernel(env: dict[str, str], cwd: Path, *, load_ext: bool = True) -> Iterator[Kernel]:
    """A started kernel and its client, ready (and with `%load_ext wiro_jupyter` done, unless told not to)."""
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(cwd))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        if load_ext:
            reply = kc.execute("%load_ext wiro_jupyter", reply=True, timeout=60)
            assert reply["content"]["status"] == "ok", reply["content"]
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
