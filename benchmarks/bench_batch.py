"""Figure 4, batch: many `wiro/slow` tasks through `batch()` at a given concurrency, wall time against the ideal
(items / concurrency × a task's length), without and with the account's concurrent-task limit set below the
batch's concurrency on the emulator (the batch then slows down to it instead of failing); the TCP connections
the client opened (an audit hook counts `socket.connect`) and its peak memory growth.

Each batch runs in a fresh process (a peak is a property of a process), after a one-item warm-up batch:

    python benchmarks/bench_batch.py <items> <concurrency>     # prints one JSON line

A task sleeps 0.5 s on the emulator (plus its stage delays, which `achievable` takes into account).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
import time
from typing import Any

import wiro_jupyter as wj

from _harness import HERE, Row, Server, Target, median, peak_rss_growth, server_from_env, timed_process

SLUG = "wiro/slow"
SECONDS = 0.5
TIMEOUT = 300.0


async def batch(info: dict[str, str], items: int, concurrency: int, tag: str) -> tuple[float, float]:
    """Wall time of one batch and the median length of its tasks (as the client saw them, Run to done). `tag` makes
    its inputs new: the same batch called again would collect its journaled results instead of running."""
    async with wj.AsyncWiro(api_key=info["api_key"], api_url=info["api_url"], socket_url=info["socket_url"]) as wiro:
        await wiro.model(SLUG)
        start = time.perf_counter()
        result = await asyncio.wait_for(
            wiro.batch(SLUG, [f"{tag} item {i}" for i in range(items)], concurrency=concurrency, progress=False,
                       seconds=SECONDS),
            TIMEOUT,
        )
        wall = time.perf_counter() - start
    if len(result.ok) != items:
        raise RuntimeError(f"{items - len(result.ok)} of {items} items did not succeed: {result!r}")
    lengths = [item.task.finished - item.task.created for item in result.ok if item.task and item.task.finished]
    return wall, median(lengths) or 0.0


def child(items: int, concurrency: int) -> None:
    info = server_from_env()
    port = int(info["base_url"].rsplit(":", 1)[1])
    connects = [0]

    def count(event: str, args: tuple[Any, ...]) -> None:  # an audit hook: every connect() of this process
        if event == "socket.connect" and isinstance(args[1], tuple) and args[1][1:2] == (port,):
            connects[0] += 1

    asyncio.run(batch(info, 1, concurrency, f"warm-up {time.time()}"))  # imports, the journal's schema
    sys.addaudithook(count)
    with peak_rss_growth() as growth:
        wall, task = asyncio.run(batch(info, items, concurrency, f"{time.time()}"))
    print(json.dumps({"wall": wall, "task": task, "connects": connects[0], "growth_mb": growth()}))


def measure(server: Server, items: int, concurrency: int) -> dict[str, float]:
    _, out = timed_process([sys.executable, str(HERE / "bench_batch.py"), str(items), str(concurrency)],
                           timeout=TIMEOUT + 60, env={**os.environ, **server.env()})
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def achievable(items: int, concurrency: int, task: float) -> str:
    """What a perfect scheduler could do: whole waves of tasks as long as the emulator's really are."""
    waves = math.ceil(items / concurrency)
    return f"{waves} waves × {task:.2f} s (a task's median length) = {waves * task:.1f} s at best"


def run(server: Server, quick: bool) -> list[Row]:
    items, concurrency = (32, 8) if quick else (200, 32)
    limit = concurrency // 2
    free = measure(server, items, concurrency)
    server.set(concurrency_limit=limit)
    try:
        limited = measure(server, items, concurrency)
    finally:
        server.set(concurrency_limit=None)
    return [
        Row(f"4 batch {items} × {SECONDS} s at {concurrency}: wall", free["wall"], items / concurrency * SECONDS, "s",
            "ideal", Target(ratio=1.3), f"ideal = {items} / {concurrency} × {SECONDS} s; "
            + achievable(items, concurrency, free["task"])),
        Row(f"4 batch at an account limit of {limit}: wall", limited["wall"], items / limit * SECONDS, "s", "ideal",
            Target(ratio=1.3), f"the emulator refuses Runs over {limit} active tasks; ideal = {items} / {limit} × "
            f"{SECONDS} s; " + achievable(items, limit, limited["task"])),
        Row("4 batch: TCP connections opened", free["connects"], None, "", "", Target(limit=21),
            "at most the HTTP pool (20 connections) and the task socket; "
            f"{limited['connects']:.0f} at the account limit"),
        Row("4 batch: peak memory growth", free["growth_mb"], None, "MB", "", Target(limit=30),
            f"peak RSS above the start, in a fresh process; {limited['growth_mb']:.1f} MB at the account limit"),
    ]


if __name__ == "__main__":
    child(int(sys.argv[1]), int(sys.argv[2]))
