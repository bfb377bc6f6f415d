"""The baseline of the task figures: what a careful hand-written client does with `httpx` and `websockets`.

One `httpx.AsyncClient`, one WebSocket with every task registered on it, Task/Detail read once right after
registering (the server replays no frame sent before) and once when a task's terminal frame arrives, that
read started at once for each frame, so frames never wait behind reads; tasks still unfinished after a silence
are read again (a registration is never acknowledged).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

TERMINAL = ("task_postprocess_end", "task_cancel")
RECV_TIMEOUT = 60.0
FOLLOW_TIMEOUT = 120.0
SILENCE = 2.0  # seconds without a frame before the tasks not ended yet are read again


def client(api_url: str, api_key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=api_url, headers={"x-api-key": api_key}, timeout=60, trust_env=False)


async def run(http: httpx.AsyncClient, slug: str, params: dict[str, Any]) -> str:
    """Run a model; its socket token."""
    answer = (await http.post(f"/Run/{slug}", json=params)).json()
    if not answer.get("result"):
        raise RuntimeError(f"Run/{slug} failed: {answer}")
    token: str = answer["socketaccesstoken"]
    return token


async def detail(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    answer = (await http.post("/Task/Detail", json={"tasktoken": token})).json()
    item: dict[str, Any] = answer["tasklist"][0]
    return item


def decode(message: str | bytes) -> dict[str, Any] | bytes:
    """A frame: JSON decoded, binary as it came."""
    if isinstance(message, bytes):
        return message
    decoded: dict[str, Any] = json.loads(message)
    return decoded


async def frame(ws: Any) -> dict[str, Any] | bytes:
    """The next frame, within `RECV_TIMEOUT`. Not for a loop that gets cancelled: on Python 3.11 `wait_for`
    swallows a cancellation that comes as its frame arrives (a reader loop then waits for the next one)."""
    return decode(await asyncio.wait_for(ws.recv(), RECV_TIMEOUT))


async def follow(http: httpx.AsyncClient, ws: Any, tokens: list[str]) -> list[float]:
    """Follow tasks to their end on an open socket; the delays (ms) from each terminal frame to its Task/Detail answer."""
    pending = set(tokens)
    all_ended = asyncio.Event()
    delays: list[float] = []
    reads: list[asyncio.Future[None]] = []
    last_frame = [time.monotonic()]

    def ended(token: str) -> None:
        pending.discard(token)
        if not pending:
            all_ended.set()

    async def sweep(token: str) -> None:
        if (await detail(http, token))["status"] in TERMINAL:
            ended(token)  # it ended before it was registered: no frame will come

    async def finish(token: str, arrived: float) -> None:
        await detail(http, token)
        delays.append((time.perf_counter() - arrived) * 1000)

    async def read_frames() -> None:
        async for message in ws:
            last_frame[0] = time.monotonic()
            frame = decode(message)
            if isinstance(frame, dict) and frame.get("type") in TERMINAL and frame.get("tasktoken") in pending:
                arrived = time.perf_counter()
                ended(frame["tasktoken"])
                reads.append(asyncio.ensure_future(finish(frame["tasktoken"], arrived)))
        raise ConnectionError("the socket closed before every task ended")

    for token in tokens:
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
    reads += [asyncio.ensure_future(sweep(token)) for token in tokens]
    reader, waiter = asyncio.ensure_future(read_frames()), asyncio.ensure_future(all_ended.wait())
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    try:
        while not (reader.done() or waiter.done()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(pending)} of {len(tokens)} tasks had not ended after {FOLLOW_TIMEOUT:g} s")
            await asyncio.wait({reader, waiter}, timeout=SILENCE, return_when=asyncio.FIRST_COMPLETED)
            if time.monotonic() - last_frame[0] > SILENCE:
                # The server does not acknowledge a registration: one it read after the task's last frame went
                # out, and after the sweep's answer, means no frame will come. Read the stragglers again.
                last_frame[0] = time.monotonic()
                reads += [asyncio.ensure_future(sweep(token)) for token in list(pending)]
        if reader.done():
            reader.result()  # the reader only ends by an error: raise it
    finally:
        reader.cancel()
        waiter.cancel()
        await asyncio.gather(reader, waiter, return_exceptions=True)
    await asyncio.gather(*reads)
    return delays
