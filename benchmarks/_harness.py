"""What every figure shares: the result rows and their targets, statistics, the emulator in a process of its
own, peak-memory readings, and the machine's description.

The emulator runs in another process (`_server.py`) because a client and a server in one process share
one GIL: every figure about concurrency would measure their fight, not the client.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SERVER_START_TIMEOUT = 60.0
COMMAND_TIMEOUT = 10.0


# -- rows and targets ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """When a row is "met": ours/baseline at most `ratio`, ours at most `limit`, ours - baseline at most `added`
    (every bound given must hold; none given: the row is information only)."""

    ratio: float | None = None
    limit: float | None = None
    added: float | None = None

    def met(self, ours: float | None, baseline: float | None) -> bool | None:
        if self.ratio is None and self.limit is None and self.added is None:
            return None
        if ours is None:
            return False
        checks = []
        if self.ratio is not None:
            checks.append(baseline is not None and baseline > 0 and ours / baseline <= self.ratio)
        if self.limit is not None:
            checks.append(ours <= self.limit)
        if self.added is not None:
            checks.append(baseline is not None and ours - baseline <= self.added)
        return all(checks)

    def describe(self, unit: str) -> str:
        parts = []
        if self.ratio is not None:
            parts.append(f"≤ {self.ratio:g}×")
        if self.limit is not None:
            parts.append(f"≤ {self.limit:g} {unit}".rstrip())
        if self.added is not None:
            parts.append(f"≤ +{self.added:g} {unit}".rstrip())
        return " and ".join(parts) or "—"


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure, our value, the baseline's (measured in the same run), the target."""

    figure: str
    ours: float | None
    baseline: float | None
    unit: str
    baseline_name: str = ""
    target: Target = Target()
    note: str = ""
    failed: bool = False  # the figure crashed, or a check in it failed (e.g. the final text was not exact): not met

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.baseline:
            return None
        return self.ours / self.baseline

    @property
    def met(self) -> bool | None:
        return False if self.failed else self.target.met(self.ours, self.baseline)


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def p95(values: Sequence[float]) -> float | None:
    """The 95th percentile, nearest rank (an observed value, never an interpolation)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


# -- the emulator in its own process -----------------------------------------------------------------


class Server:
    """The emulator in a process of its own (`_server.py`): its URLs and keys, its knobs over stdin, its
    read-only inspection routes over HTTP. The process ends when this one closes its stdin (also when this
    process dies), and `close()` makes sure of it."""

    def __init__(self, *, stage_delay: float, max_upload_mb: int) -> None:
        command = [sys.executable, str(HERE / "_server.py"), "--stage-delay", str(stage_delay),
                   "--max-upload-mb", str(max_upload_mb)]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, name="bench-server-stdout", daemon=True).start()
        try:
            info = json.loads(self._line(SERVER_START_TIMEOUT))
        except BaseException:
            self.close()
            raise
        self.base_url: str = info["base_url"]
        self.api_url: str = info["api_url"]
        self.socket_url: str = info["socket_url"]
        self.dify_url: str = info["dify_url"]
        self.api_key: str = info["api_key"]
        self.dify_chat_key: str = info["dify_chat_key"]
        self.port = int(self.base_url.rsplit(":", 1)[1])

    def _pump(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _line(self, timeout: float) -> str:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"the emulator process said nothing for {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"the emulator process ended (exit code {self._process.poll()})")
        return line

    def set(self, **knobs: Any) -> None:
        """Turn emulator knobs (see `_server.py`), e.g. `set(concurrency_limit=16)`."""
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(knobs) + "\n")
        self._process.stdin.flush()
        answer = self._line(COMMAND_TIMEOUT).strip()
        if answer != "ok":
            raise RuntimeError(f"the emulator refused {knobs}: {answer}")

    def inspect(self, route: str) -> dict[str, Any]:
        """`GET /_emulator/<route>` (stats, voice/<token>)."""
        answer = httpx.get(f"{self.base_url}/_emulator/{route}", timeout=COMMAND_TIMEOUT, trust_env=False)
        answer.raise_for_status()
        payload: dict[str, Any] = answer.json()
        return payload

    def clock_offset(self) -> tuple[float, float]:
        """(the server's monotonic clock minus ours, the uncertainty), in seconds: a shared clock reads ~0 ± RTT/2."""
        before = time.monotonic()
        server = self.inspect("stats")["monotonic"]
        after = time.monotonic()
        return server - (before + after) / 2, (after - before) / 2

    def env(self) -> dict[str, str]:
        """The environment a child process needs to reach this server (see `from_env`)."""
        return {"BENCH_SERVER": json.dumps({k: getattr(self, k) for k in (
            "base_url", "api_url", "socket_url", "dify_url", "api_key", "dify_chat_key")})}

    def close(self) -> None:
        process = self._process
        if process.stdin is not None and not process.stdin.closed:
            with contextlib.suppress(OSError):
                process.stdin.close()  # the server's signal to stop
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def server_from_env() -> dict[str, str]:
    """In a child process: the URLs and keys of the server the parent started (`Server.env()`)."""
    info: dict[str, str] = json.loads(os.environ["BENCH_SERVER"])
    return info


# -- memory --------------------------------------------------------------------------------------------


def _status(field: str) -> int:
    """A `VmRSS`/`VmHWM` line of /proc/self/status, in bytes."""
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    if match is None:
        raise RuntimeError(f"/proc/self/status has no {field}")
    return int(match.group(1)) * 1024


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[Callable[[], float]]:
    """Measure how far the resident memory of this process peaks above where it is now (MB).

    Linux only: writing 5 to /proc/self/clear_refs resets the kernel's peak (VmHWM) to the current
    size, so the peak of just the block is read exactly, with no sampling thread that could miss it.
    """
    import gc

    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    start = _status("VmRSS")
    growth: list[float] = []
    yield lambda: growth[0]
    growth.append((_status("VmHWM") - start) / 1024**2)


# -- timing ------------------------------------------------------------------------------------------------


def timed_process(command: list[str], *, timeout: float, env: dict[str, str] | None = None) -> tuple[float, str]:
    """(seconds, stdout) of a command that must succeed."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]}… failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return elapsed, done.stdout


# -- the machine ---------------------------------------------------------------------------------------------

PACKAGES = ("wiro-jupyter", "httpx", "httpcore", "httpx-sse", "websockets", "starlette", "uvicorn", "ipython",
            "ipykernel", "ipywidgets", "anywidget", "numpy")


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> list[tuple[str, str]]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return [
        ("CPU", f"{os.cpu_count()} × {cpu_model()}"),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", ", ".join(versions)),
    ]
