"""Figure 1, finish latency: from a task's terminal socket frame to `task.done` (one Task/Detail read), one task
at a time. Baselines: the hand-written loop doing the same (`_raw`), and polling Task/Detail every second
(Wiro's quick start) and every 0.5 s (replicate's default)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

import websockets

import wiro_jupyter as wj

import _raw
from _harness import Row, Server, Target, median, p95

SLUG = "wiro/text-to-image"
PARAMS: dict[str, Any] = {"prompt": "bench", "width": 256, "height": 256}
TASK_TIMEOUT = 60.0
POLL_TIMEOUT = 120.0


def finish_delays(tasks: list[wj.AsyncTask]) -> tuple[list[float], int]:
    """Milliseconds from the arrival of each task's terminal frame to its `finished` time (done), and how many
    tasks saw no terminal frame (the socket missed them: they were finished by a Task/Detail read)."""
    delays = []
    for task in tasks:
        terminal = [e.time for e in task.event_log if e.kind in _raw.TERMINAL]
        if terminal and task.finished is not None:
            delays.append((task.finished - terminal[0]) * 1000)
    return delays, len(tasks) - len(delays)


async def ours(server: Server, count: int, *, journal: bool = True) -> tuple[list[float], int]:
    async with wj.AsyncWiro(api_key=server.api_key, api_url=server.api_url, socket_url=server.socket_url,
                            journal=journal) as wiro:
        await wiro.run(SLUG, timeout=TASK_TIMEOUT, **PARAMS)  # warm-up: the model's definition, the pool
        return finish_delays([await wiro.run(SLUG, timeout=TASK_TIMEOUT, **PARAMS) for _ in range(count)])


async def raw(server: Server, count: int) -> list[float]:
    async with _raw.client(server.api_url, server.api_key) as http, websockets.connect(server.socket_url) as ws:
        await _raw.frame(ws)  # the server's greeting
        await _raw.follow(http, ws, [await _raw.run(http, SLUG, PARAMS)])  # warm-up
        delays: list[float] = []
        for _ in range(count):
            delays += await _raw.follow(http, ws, [await _raw.run(http, SLUG, PARAMS)])
        return delays


async def polled(server: Server, count: int, interval: float) -> list[float]:
    """Tasks followed by polling Task/Detail every `interval` s: the delays (ms) from each terminal frame (seen by
    a socket that only timestamps) to the poll that saw the end. The tasks run at once, each poll grid at a random
    phase, as a task's length is random relative to it."""
    arrived: dict[str, float] = {}
    seen: dict[str, float] = {}
    async with _raw.client(server.api_url, server.api_key) as http, websockets.connect(server.socket_url) as ws:
        await _raw.frame(ws)

        async def timestamp_frames() -> None:
            async for message in ws:
                frame = _raw.decode(message)
                if isinstance(frame, dict) and frame.get("type") in _raw.TERMINAL:
                    arrived[str(frame.get("tasktoken"))] = time.perf_counter()

        async def poll() -> None:
            token = await _raw.run(http, SLUG, PARAMS)
            await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
            await asyncio.sleep(random.uniform(0, interval))
            while (await _raw.detail(http, token))["status"] not in _raw.TERMINAL:
                await asyncio.sleep(interval)
            seen[token] = time.perf_counter()

        listener = asyncio.ensure_future(timestamp_frames())
        try:
            await asyncio.wait_for(asyncio.gather(*(poll() for _ in range(count))), POLL_TIMEOUT)
            await asyncio.sleep(0.05)  # a frame sent just before the poll's answer may still be on its way
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    return [(seen[t] - arrived[t]) * 1000 for t in seen if t in arrived]


def run(server: Server, quick: bool) -> list[Row]:
    count = 10 if quick else 100
    mine, missed = asyncio.run(ours(server, count))
    unjournaled, missed_unjournaled = asyncio.run(ours(server, count, journal=False))
    loop = asyncio.run(raw(server, count))
    every_second = asyncio.run(polled(server, count, 1.0))
    every_half = asyncio.run(polled(server, count, 0.5))
    return [
        Row("1 finish p50: terminal frame → done", median(mine), median(loop), "ms", "raw loop", Target(ratio=1.2),
            f"{count} tasks one at a time; {missed} saw no terminal frame (finished by a Task/Detail read)"),
        Row("1 finish p95", p95(mine), p95(loop), "ms", "raw loop", Target(ratio=1.5)),
        Row("1 finish p50, journal off", median(unjournaled), median(loop), "ms", "raw loop", Target(ratio=1.2),
            f"Wiro(journal=False); {missed_unjournaled} of {count} tasks saw no terminal frame"),
        Row("1 finish p50 vs polling every 1 s", median(mine), median(every_second), "ms", "poll 1 s", Target(ratio=0.1),
            f"polling p95 {p95(every_second) or 0:.0f} ms"),
        Row("1 finish p50 vs polling every 0.5 s", median(mine), median(every_half), "ms", "poll 0.5 s", Target(ratio=0.1),
            f"polling p95 {p95(every_half) or 0:.0f} ms"),
    ]
