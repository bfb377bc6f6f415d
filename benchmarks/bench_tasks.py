"""Task-following figures against the emulator, with a raw websockets + httpx loop as the
baseline run in the same process (ratios, not absolute claims).

    python benchmarks/bench_tasks.py [--tasks 50]

Prints:
- finish latency: from the terminal socket frame arriving to `task.done` (one Task/Detail read);
- end-to-end wall time for N concurrent runs, ours vs. the baseline loop (same requests by hand).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import httpx
import websockets

import wiro_jupyter as wj
from wiro_jupyter.emulator import Emulator

SLUG = "wiro/text-to-image"
PARAMS = {"prompt": "bench", "width": 256, "height": 256}


async def ours(emu: Emulator, n: int, *, concurrent: bool = True) -> tuple[float, list[float]]:
    async with wj.AsyncWiro(api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url, journal=False) as wiro:
        await wiro.model(SLUG)
        start = time.perf_counter()
        if concurrent:
            tasks = await asyncio.gather(*(wiro.run(SLUG, wait=False, **PARAMS) for _ in range(n)))
            await asyncio.gather(*(t.wait(60) for t in tasks))
        else:
            tasks = [await wiro.run(SLUG, **PARAMS) for _ in range(n)]
        wall = time.perf_counter() - start
        latencies = []
        for t in tasks:
            terminal = [e.time for e in t.event_log if e.kind == "task_postprocess_end"]
            if terminal and t._state.finished:
                latencies.append((t._state.finished - terminal[0]) * 1000)
        return wall, latencies


async def baseline(emu: Emulator, n: int) -> tuple[float, list[float]]:
    """What a careful hand-written loop does: Run, register on one socket, Task/Detail at the end."""
    headers = {"x-api-key": emu.api_key}
    async with httpx.AsyncClient(base_url=emu.api_url, headers=headers) as http:
        start = time.perf_counter()
        runs = await asyncio.gather(*(http.post(f"/Run/{SLUG}", json=PARAMS) for _ in range(n)))
        tokens = {r.json()["socketaccesstoken"] for r in runs}
        latencies: list[float] = []
        pending = set(tokens)
        async with websockets.connect(emu.socket_url) as ws:
            for token in tokens:
                await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
            # Tasks that ended before registration are found by one Task/Detail sweep (no replay).
            for token in list(pending):
                detail = (await http.post("/Task/Detail", json={"tasktoken": token})).json()["tasklist"][0]
                if detail["status"] == "task_postprocess_end":
                    pending.discard(token)
            while pending:
                frame = json.loads(await ws.recv())
                if frame.get("type") == "task_postprocess_end" and frame.get("tasktoken") in pending:
                    t0 = time.perf_counter()
                    await http.post("/Task/Detail", json={"tasktoken": frame["tasktoken"]})
                    latencies.append((time.perf_counter() - t0) * 1000)
                    pending.discard(frame["tasktoken"])
        return time.perf_counter() - start, latencies


def describe(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.2f} ms, p90 {sorted(values)[int(0.9 * (len(values) - 1))]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--stage-delay", type=float, default=0.01)
    args = parser.parse_args()
    with Emulator(stage_delay=args.stage_delay) as emu:
        asyncio.run(baseline(emu, 5))  # warm up both paths
        asyncio.run(ours(emu, 5))
        _, sequential = asyncio.run(ours(emu, 30, concurrent=False))
        base_wall, base_lat = asyncio.run(baseline(emu, args.tasks))
        our_wall, our_lat = asyncio.run(ours(emu, args.tasks))
    print(f"stage delay {args.stage_delay} s")
    print(f"  one task at a time, terminal frame -> task.done: {describe(sequential)} (one Task/Detail read)")
    print(f"  {args.tasks} concurrent tasks, terminal frame -> done: ours {describe(our_lat)}")
    print(f"    (baseline: the Task/Detail request alone, {describe(base_lat)}; its frames wait unread meanwhile)")
    print(
        f"  {args.tasks} concurrent tasks, wall time: ours {our_wall:.3f} s, baseline {base_wall:.3f} s, "
        f"ratio {our_wall / base_wall:.2f}"
    )


if __name__ == "__main__":
    main()
