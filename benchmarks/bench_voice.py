"""Figure 8, voice: a realtime session with `wiro/realtime-echo`, fed 200 ms microphone frames at real time
from a thread (as a sound card's callback would), the model echoing each frame back at once. Delays: from the
frame handed to the session (`VoiceSession.feed`) to its arrival at the emulator, and from there to `on_audio`
with its echo (the emulator sends the echo as it receives the frame); frames dropped either way. Against a raw
`websockets` loop fed from the same kind of thread. The emulator's arrival times come from its inspection
route (`/_emulator/voice/<token>`), on the monotonic clock this process shares with it (Linux; checked).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

import websockets

import wiro_jupyter as wj

import _raw
from _harness import Row, Server, Target, median, p95

SLUG = "wiro/realtime-echo"
FRAME = bytes(range(256)) * 37 + bytes(128)  # 9,600 bytes: 200 ms of PCM16 24 kHz mono
FRAME_SECONDS = 0.2
SETTLE = 10.0  # how long the last echoes may take to come back


def microphone(hand_over: Callable[[bytes], None], frames: int) -> list[float]:
    """Hand `frames` frames over at real time; when each was handed over (monotonic)."""
    fed: list[float] = []
    start = time.monotonic()
    for k in range(frames):
        delay = start + k * FRAME_SECONDS - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        fed.append(time.monotonic())
        hand_over(FRAME)
    return fed


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def ours(server: Server, frames: int) -> tuple[list[float], list[float], str]:
    heard: list[float] = []
    with wj.Wiro(api_key=server.api_key, api_url=server.api_url, socket_url=server.socket_url) as wiro, \
            wiro.voice(SLUG) as session:
        session.on_audio(lambda pcm: heard.append(time.monotonic()))
        fed = microphone(session.feed, frames)
        wait_for(lambda: len(heard) >= frames, SETTLE)
        assert session.task is not None
        token = session.task.token
    return fed, heard, token


async def raw(server: Server, frames: int) -> tuple[list[float], list[float], str]:
    heard: list[float] = []
    loop = asyncio.get_running_loop()
    outbox: asyncio.Queue[bytes | None] = asyncio.Queue()
    ready = False
    async with _raw.client(server.api_url, server.api_key) as http, websockets.connect(server.socket_url) as ws:
        token = await _raw.run(http, SLUG, {"voice": "marin"})
        await _raw.frame(ws)
        await ws.send(json.dumps({"type": "task_info", "tasktoken": token}))
        while not ready:  # the model's end opens once a client listens: task_stream_ready
            frame = await _raw.frame(ws)
            ready = isinstance(frame, dict) and frame.get("type") == "task_stream_ready"

        async def receive() -> None:
            async for message in ws:
                if isinstance(message, bytes):
                    heard.append(time.monotonic())
                    if len(heard) >= frames:
                        return

        async def send() -> None:
            while (pcm := await outbox.get()) is not None:
                await ws.send(token.encode() + b"|" + pcm)

        def hand_over(pcm: bytes) -> None:  # from the microphone's thread into this loop
            loop.call_soon_threadsafe(outbox.put_nowait, pcm)

        receiver, sender = asyncio.ensure_future(receive()), asyncio.ensure_future(send())
        fed = await asyncio.to_thread(microphone, hand_over, frames)
        outbox.put_nowait(None)
        await asyncio.wait({receiver}, timeout=SETTLE)
        receiver.cancel()
        await asyncio.gather(receiver, sender, return_exceptions=True)
        await ws.send(json.dumps({"type": "task_session_end", "tasktoken": token}))
    return fed, heard, token


def delays(server: Server, fed: list[float], heard: list[float], token: str) -> tuple[list[float], list[float], int]:
    """(uplink delays, downlink delays) in ms, and the frames dropped on the way in or out."""
    log = server.inspect(f"voice/{token}")
    arrived = log["times_in"]
    up = [(a - f) * 1000 for f, a in zip(fed, arrived, strict=False)]
    down = [(h - a) * 1000 for a, h in zip(arrived, heard, strict=False)]
    return up, down, (len(fed) - len(arrived)) + (len(log["frames_out"]) - len(heard))


def check_clock(server: Server) -> None:
    offset, uncertainty = min((server.clock_offset() for _ in range(5)), key=lambda reading: reading[1])
    if abs(offset) > uncertainty + 0.001:
        raise RuntimeError(f"the emulator's monotonic clock is {offset * 1000:.1f} ms off ours: not a shared clock")


def run(server: Server, quick: bool) -> list[Row]:
    seconds = 3 if quick else 60
    frames = int(seconds / FRAME_SECONDS)
    check_clock(server)
    our_up, our_down, our_dropped = delays(server, *ours(server, frames))
    raw_up, raw_down, raw_dropped = delays(server, *asyncio.run(raw(server, frames)))
    note = f"{frames} frames of 200 ms over {seconds} s"
    return [
        Row("8 voice uplink p50: feed → emulator", median(our_up), median(raw_up), "ms", "raw loop", Target(added=1), note),
        Row("8 voice uplink p95", p95(our_up), p95(raw_up), "ms", "raw loop", Target(added=2)),
        Row("8 voice downlink p50: emulator → on_audio", median(our_down), median(raw_down), "ms", "raw loop",
            Target(added=1)),
        Row("8 voice downlink p95", p95(our_down), p95(raw_down), "ms", "raw loop", Target(added=2)),
        Row(f"8 voice frames dropped in {seconds} s", our_dropped, raw_dropped, "", "raw loop", Target(limit=0), note),
    ]

