"""Figure 2, concurrent tasks: N tasks started at once and followed to their end, wall time and the delay from
each terminal frame to done; against the hand-written loop (`_raw`) doing the same requests. Ours and the
loop alternate, repeated, so both see the same machine load."""

from __future__ import annotations

import asyncio
import time

import websockets

import wiro_jupyter as wj

import _raw
from _harness import Row, Server, Target, median, p95
from bench_finish import PARAMS, SLUG, finish_delays

TIMEOUT = 120.0


async def ours(server: Server, count: int, *, journal: bool = True) -> tuple[float, list[float], int]:
    async with wj.AsyncWiro(api_key=server.api_key, api_url=server.api_url, socket_url=server.socket_url,
                            journal=journal) as wiro:
        await wiro.model(SLUG)
        start = time.perf_counter()
        tasks = await asyncio.gather(*(wiro.run(SLUG, wait=False, **PARAMS) for _ in range(count)))
        await asyncio.gather(*(task.wait(TIMEOUT) for task in tasks))
        wall = time.perf_counter() - start
    delays, missed = finish_delays(list(tasks))
    return wall, delays, missed


async def raw(server: Server, count: int) -> tuple[float, list[float]]:
    async with _raw.client(server.api_url, server.api_key) as http:
        start = time.perf_counter()
        tokens = await asyncio.gather(*(_raw.run(http, SLUG, PARAMS) for _ in range(count)))
        async with websockets.connect(server.socket_url) as ws:
            await _raw.frame(ws)
            delays = await asyncio.wait_for(_raw.follow(http, ws, list(tokens)), TIMEOUT)
        return time.perf_counter() - start, delays


def run(server: Server, quick: bool) -> list[Row]:
    repeats = 1 if quick else 3
    rows = []
    for count in (10, 20) if quick else (50, 200):
        walls: dict[str, list[float]] = {"ours": [], "unjournaled": [], "loop": []}
        delays: dict[str, list[float]] = {"ours": [], "unjournaled": [], "loop": []}
        missed = 0
        for _ in range(repeats):
            for name, journal in (("ours", True), ("unjournaled", False)):
                wall, measured, lost = asyncio.run(ours(server, count, journal=journal))
                walls[name].append(wall)
                delays[name] += measured
                missed += lost
            wall, measured = asyncio.run(raw(server, count))
            walls["loop"].append(wall)
            delays["loop"] += measured
        loop_wall, loop_p50 = median(walls["loop"]), median(delays["loop"])
        rows += [
            Row(f"2 {count} at once: wall time", median(walls["ours"]), loop_wall, "s", "raw loop", Target(ratio=1.2),
                f"median of {repeats} runs; {missed} of {2 * count * repeats} tasks saw no terminal frame"),
            Row(f"2 {count} at once: frame → done p50", median(delays["ours"]), loop_p50, "ms", "raw loop", Target(ratio=1.5)),
            Row(f"2 {count} at once: frame → done p95", p95(delays["ours"]), p95(delays["loop"]), "ms", "raw loop",
                Target(ratio=1.5)),
            Row(f"2 {count} at once, journal off: wall time", median(walls["unjournaled"]), loop_wall, "s", "raw loop",
                Target(ratio=1.2)),
            Row(f"2 {count} at once, journal off: frame → done p50", median(delays["unjournaled"]), loop_p50, "ms",
                "raw loop", Target(ratio=1.5)),
        ]
    return rows
