"""Figure 3, LLM streaming: a cumulative-snapshot stream over the Wiro socket (`wiro/stream-llm`) and a Dify SSE
stream of `message` events (the emulator's chat app echoes the query word by word), read to the final text by
our chat clients and by a raw reader (`websockets` / `httpx-sse`). Also: the memory each holds afterwards
(tracemalloc, in a run of its own since tracing slows everything), and with the chat widget attached
(`ChatView`, in this process, no browser) the widget's state updates per second and whether its final answer
is the exact final text."""

from __future__ import annotations

import asyncio
import gc
import json
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import websockets
from httpx_sse import aconnect_sse

import wiro_jupyter as wj
from wiro_jupyter._render import render_markdown  # what the widget shows for an answer

import _raw
from _harness import Row, Server, Target, median

SLUG = "wiro/stream-llm"
DIFY_FIXED_EVENTS = 10  # the echo's own chunks around the query's words ("**Echo:** …", "This is the first turn …")
MB = 1024**2


@dataclass
class Reading:
    seconds: float
    text: str
    held_mb: float | None = None  # still allocated after the turn (traced runs)
    updates: int = 0  # the widget's state messages (runs with a ChatView)
    shown: str = ""  # the widget's final answer, as HTML


async def read(send: Callable[[], Awaitable[str]], chat: Any = None, *, traced: bool = False, widget: bool = False) -> Reading:
    """Time one turn (`send()` returns its final text); trace what it leaves allocated, or count a widget's updates."""
    updates: list[float] = []
    view = None
    if widget:
        view = chat.widget()
        send_state = view.send_state

        def counted(key: Any = None) -> None:  # every state message the front end would get
            updates.append(time.perf_counter())
            send_state(key)

        view.send_state = counted
    if traced:
        gc.collect()
        tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        start = time.perf_counter()
        text = await send()
        seconds = time.perf_counter() - start
        gc.collect()
        held = (tracemalloc.get_traced_memory()[0] - before) / MB if traced else None
    finally:
        tracemalloc.stop()
    shown = view.turns[-1]["html"] if view is not None and view.turns else ""
    return Reading(seconds, text, held, len(updates), shown)


# -- the Wiro socket ---------------------------------------------------------------------------------------


async def wiro_ours(server: Server, params: dict[str, Any], **how: bool) -> Reading:
    async with wj.AsyncWiro(api_key=server.api_key, api_url=server.api_url, socket_url=server.socket_url) as wiro:
        await wiro.model(SLUG)
        chat = wj.AsyncChat(SLUG, client=wiro, delay=0, **params)

        async def send() -> str:
            return (await chat.send("bench")).answer

        return await read(send, chat, **how)


async def wiro_raw(server: Server, params: dict[str, Any]) -> str:
    async with _raw.client(server.api_url, server.api_key) as http:
        token = await _raw.run(http, SLUG, {"prompt": "bench", "delay": 0, **params})
        async with websockets.connect(server.socket_url, max_size=None) as ws:
            await _raw.frame(ws)
            await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
            await _raw.detail(http, token)  # frames sent before registering are not replayed
            text = ""
            while True:
                frame = await _raw.frame(ws)
                if not isinstance(frame, dict) or frame.get("tasktoken") != token:
                    continue
                message = frame.get("message")
                if isinstance(message, dict) and isinstance(message.get("answer"), list):
                    text = "".join(message["answer"])  # each snapshot holds the whole answer so far
                if frame.get("type") in _raw.TERMINAL:
                    return text


# -- Dify SSE ----------------------------------------------------------------------------------------------------


async def dify_ours(server: Server, query: str, **how: bool) -> Reading:
    async with wj.AsyncWbotChat(api_key=server.dify_chat_key, base_url=server.dify_url) as chat:

        async def send() -> str:
            return (await chat.send(query)).answer

        return await read(send, chat, **how)


async def dify_raw(server: Server, query: str) -> tuple[str, int]:
    """The answer and the number of `message` events."""
    body = {"inputs": {}, "query": query, "response_mode": "streaming", "user": "bench", "conversation_id": ""}
    headers = {"Authorization": f"Bearer {server.dify_chat_key}"}
    text, events = "", 0
    async with httpx.AsyncClient(timeout=60, trust_env=False) as http, aconnect_sse(
        http, "POST", f"{server.dify_url}/chat-messages", json=body, headers=headers
    ) as source:
        async for sse in source.aiter_sse():
            if not sse.data.strip():
                continue  # a ping
            data = sse.json()
            if data.get("event") == "message":
                text += data["answer"]
                events += 1
    return text, events


# -- the figure ---------------------------------------------------------------------------------------------------


def rows(label: str, ours: list[Reading], raw: list[float], traced: Reading, raw_held: float, shown: Reading,
         text: str, events: int) -> list[Row]:
    exact = all(r.text == text for r in ours) and shown.text == text and shown.shown == render_markdown(text)
    return [
        Row(f"3 {label}: time to final text", median([r.seconds for r in ours]), median(raw), "s", "raw reader",
            Target(ratio=1.2), f"median of {len(ours)} runs; {len(text):,} characters"),
        Row(f"3 {label}: memory held after", traced.held_mb, raw_held, "MB", "raw reader", Target(limit=2.0),
            "tracemalloc: what the chat still holds after the turn (its turns; for Wiro the task and its event log too)"),
        # The view sends the first state at once and the exact final state at the end; the rate is of those between.
        Row(f"3 {label} + ChatView: updates/s", max(0, shown.updates - 2) / shown.seconds, events / shown.seconds, "/s",
            "events/s", Target(limit=30), f"{shown.updates} state updates in {shown.seconds:.2f} s, the first and the "
            f"final one included; final text exact: {'yes' if exact else 'NO'}", failed=not exact),
    ]


def traced_raw(reader: Callable[[], Awaitable[Any]]) -> float:
    """MB a raw reader's result holds (the final text), traced like ours."""
    async def send() -> str:
        result = await reader()
        return str(result[0] if isinstance(result, tuple) else result)

    held = asyncio.run(read(send, traced=True)).held_mb
    assert held is not None
    return held


def run(server: Server, quick: bool) -> list[Row]:
    repeats = 1 if quick else 5
    frames, chars = (100, 10_000) if quick else (1000, 100_000)
    params: dict[str, Any] = {"frames": frames, "chars": chars}
    ours, raw = [], []
    for _ in range(repeats):
        ours.append(asyncio.run(wiro_ours(server, params)))
        start = time.perf_counter()
        text = asyncio.run(wiro_raw(server, params))
        raw.append(time.perf_counter() - start)
    result = rows(f"Wiro socket, {frames:,} snapshots", ours, raw, asyncio.run(wiro_ours(server, params, traced=True)),
                  traced_raw(lambda: wiro_raw(server, params)), asyncio.run(wiro_ours(server, params, widget=True)),
                  text, frames)

    wanted = 500 if quick else 5000
    query = " ".join(["w"] * (wanted - DIFY_FIXED_EVENTS))
    ours, raw = [], []
    for _ in range(repeats):
        ours.append(asyncio.run(dify_ours(server, query)))
        start = time.perf_counter()
        text, events = asyncio.run(dify_raw(server, query))
        raw.append(time.perf_counter() - start)
    dify = rows(f"Dify SSE, {events:,} events", ours, raw, asyncio.run(dify_ours(server, query, traced=True)),
                traced_raw(lambda: dify_raw(server, query)), asyncio.run(dify_ours(server, query, widget=True)),
                text, events)
    return result + dify
