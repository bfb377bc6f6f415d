"""The realtime models (Wiro §9): a voice conversation, streaming text-to-speech and streaming speech-to-text.

Audio is PCM16 LE mono 24 kHz both ways. The listening models find utterances the way a server-side
voice activity detector does: a 20 ms block is speech when its RMS is above `SPEECH_RMS`, and an
utterance ends after `SILENCE_MS` without speech. What they "hear" is derived from the utterance's
duration only (`user_text`), and the conversation answers with a tone whose length depends on it
(`reply_ms`), so tests can predict every transcript. The model's audio is paced at real time, in
200 ms frames, and an interrupt cuts it at once with a final `task_stream_end`. Every turn ends
with `task_stream_end` then `task_cost` (`turnCost`, `cumulativeCost`, `usage`).

References like "Wiro §9" are sections of docs/protocol.md.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import io
import math
import sys
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass

from . import _media
from ._models import RunContext
from ._records import INTERRUPT, SERVER_END

SAMPLE_RATE = _media.SAMPLE_RATE
FRAME_BYTES = 9_600  # 200 ms: the chunk size of the docs (Wiro §9)
BLOCK_SAMPLES = SAMPLE_RATE // 50  # 20 ms
SPEECH_RMS = 500.0  # about -36 dBFS
SILENCE_MS = 500
MIN_SPEECH_MS = 100  # a click is not an utterance
WORD_MS = 300  # one transcribed word per 300 ms of speech

CONVERSATION_PRICE = 0.003
TTS_PRICE = 0.001
STT_PRICE = 0.0005

_WORDS = ("hello", "wiro", "can", "you", "hear", "me", "this", "is", "a", "synthetic", "voice", "test")
_TONES = {"marin": 440.0, "cedar": 330.0}


def user_words(ms: int) -> list[str]:
    """The words "heard" in an utterance of `ms` milliseconds: one per `WORD_MS`, at least one."""
    count = max(1, round(ms / WORD_MS))
    return [_WORDS[i % len(_WORDS)] for i in range(count)]


def user_text(ms: int) -> str:
    return " ".join(user_words(ms))


def reply_ms(utterance_ms: int) -> int:
    """How long the conversation model talks back to an utterance of `utterance_ms`."""
    return min(5000, 400 + utterance_ms // 2)


def tone_hz(voice: str) -> float:
    return _TONES.get(voice, 523.25)


def tone(hz: float, ms: int) -> bytes:
    """A sine tone, PCM16 LE mono 24 kHz, with 10 ms fades so it starts and stops without clicks."""
    count = SAMPLE_RATE * ms // 1000
    fade = SAMPLE_RATE // 100
    step = 2 * math.pi * hz / SAMPLE_RATE
    samples = array.array("h", (int(8000 * min(1.0, n / fade, (count - n) / fade) * math.sin(step * n))
                                for n in range(count)))
    if sys.byteorder == "big":
        samples.byteswap()
    return samples.tobytes()


def _rms(block: bytes) -> float:
    samples = array.array("h", block)
    if sys.byteorder == "big":
        samples.byteswap()
    return math.sqrt(sum(v * v for v in samples) / max(1, len(samples)))


class UtteranceDetector:
    """Energy-based voice activity detection over a stream of PCM16 chunks of any size."""

    def __init__(self) -> None:
        self._carry = b""
        self._speech_blocks = 0  # blocks from the first to the last speech block of the current utterance
        self._pending = 0  # speech-free blocks since the last speech block
        self.in_speech = False

    @property
    def speech_ms(self) -> int:
        """The current utterance so far (0 outside one)."""
        return self._speech_blocks * 20

    def feed(self, pcm: bytes) -> list[int]:
        """Durations (ms) of the utterances this chunk ended."""
        data = self._carry + pcm
        size = BLOCK_SAMPLES * 2
        whole = len(data) - len(data) % size
        self._carry = data[whole:]
        ended: list[int] = []
        for start in range(0, whole, size):
            loud = _rms(data[start: start + size]) >= SPEECH_RMS
            if loud:
                self.in_speech = True
                self._speech_blocks += self._pending + 1  # a short pause inside an utterance belongs to it
                self._pending = 0
            elif self.in_speech:
                self._pending += 1
                if self._pending * 20 >= SILENCE_MS:
                    if self.speech_ms >= MIN_SPEECH_MS:
                        ended.append(self.speech_ms)
                    self.in_speech, self._speech_blocks, self._pending = False, 0, 0
        return ended


@dataclass
class _Turn:
    user: str | None  # None: this model sends no transcripts
    ai: str | None
    pcm: bytes
    input_ms: int = 0
    sent: int = 0


class _Voice:
    """Speaks one turn at a time, in order, at real time; an interrupt cuts the turn being spoken at once."""

    def __init__(self, ctx: RunContext, price: float) -> None:
        self.ctx = ctx
        self.price = price
        self.cumulative = 0.0
        self._queue: asyncio.Queue[_Turn] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._current: _Turn | None = None

    def say(self, turn: _Turn) -> None:
        self._queue.put_nowait(turn)
        if self._worker is None or self._worker.done():
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def _work(self) -> None:
        while not self._queue.empty():
            turn = self._current = self._queue.get_nowait()
            if turn.user is not None:
                await self.ctx.output_line(f"TRANSCRIPT_USER:{turn.user}")
            if turn.ai is not None:
                await self.ctx.output_line(f"TRANSCRIPT_AI:{turn.ai}")
            loop = asyncio.get_running_loop()
            started = loop.time()
            for index, offset in enumerate(range(0, len(turn.pcm), FRAME_BYTES)):
                delay = started + index * 0.2 - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                frame = turn.pcm[offset: offset + FRAME_BYTES]
                await self.ctx.send_audio(frame)
                turn.sent += len(frame)
            self._current = None
            await self.end_turn(turn)

    async def end_turn(self, turn: _Turn) -> None:
        await self.ctx.send_event("task_stream_end")
        await self.cost(turn)

    async def cost(self, turn: _Turn | None) -> None:
        turn_cost = self.price if turn is not None else 0.0
        if turn is not None:
            self.ctx.add_turn()
        self.cumulative += turn_cost
        usage = {} if turn is None else {"input_audio_ms": turn.input_ms,
                                         "output_audio_ms": turn.sent * 1000 // (2 * SAMPLE_RATE)}
        await self.ctx.send_event("task_cost", turnCost=turn_cost, cumulativeCost=round(self.cumulative, 6), usage=usage)

    async def interrupt(self) -> None:
        """Stop the turn being spoken now: no more of its audio, then its final `task_stream_end` and cost."""
        turn, worker = self._current, self._worker
        if turn is None or worker is None:
            return
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker
        self._current = self._worker = None
        await self.end_turn(turn)
        if not self._queue.empty():  # utterances heard meanwhile are still answered
            self._worker = asyncio.get_running_loop().create_task(self._work())

    async def server_end(self) -> None:
        """The server stops the session (an exhausted balance): cut any speech, then a final cost (Wiro §9)."""
        await self.close()
        await self.cost(None)

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        self._worker = self._current = None


async def _open(ctx: RunContext) -> None:
    # The model's end opens once a client listens: without replay (Wiro §8) nobody could see
    # task_stream_ready otherwise.
    await ctx.wait_for_listener()
    await ctx.send_event("task_stream_ready")


async def _client_audio(ctx: RunContext, voice: _Voice) -> AsyncIterator[bytes]:
    """The client's audio frames until the session ends (its end, every listener gone, or the server's own
    end), acting on an interrupt between them."""
    while True:
        item = await ctx.next_audio()
        if item is None:
            return
        if item == SERVER_END:
            await voice.server_end()
            return
        if item == INTERRUPT:
            await voice.interrupt()
        elif isinstance(item, bytes):
            yield item


async def run_conversation(ctx: RunContext) -> None:
    """A voice conversation: answers each utterance with both transcripts and a tone (`reply_ms` long)."""
    await _open(ctx)
    voice = _Voice(ctx, CONVERSATION_PRICE)
    hz = tone_hz(str(ctx.value("voice") or ""))
    detector = UtteranceDetector()
    heard = 0
    try:
        async for pcm in _client_audio(ctx, voice):
            for ms in detector.feed(pcm):
                heard += 1
                answer = reply_ms(ms)
                text = f"Turn {heard}: I heard {ms / 1000:.2f} s of speech, and answer with {answer} ms of tone."
                voice.say(_Turn(user_text(ms), text, tone(hz, answer), input_ms=ms))
    finally:
        await voice.close()


def _speech_pcm(text: str) -> bytes:
    with wave.open(io.BytesIO(_media.speech_wav(text, "marin", 1.0))) as wav:
        return wav.readframes(wav.getnframes())


async def run_streaming_tts(ctx: RunContext) -> None:
    """Streaming text-to-speech: speaks `text` (audio only, no task_output), then waits for the session's end."""
    await _open(ctx)
    voice = _Voice(ctx, TTS_PRICE)
    voice.say(_Turn(None, None, await ctx.render(_speech_pcm, str(ctx.value("text") or ""))))
    try:
        async for _ in _client_audio(ctx, voice):  # the client may stream audio; a TTS model ignores it
            pass
    finally:
        await voice.close()


async def run_streaming_stt(ctx: RunContext) -> None:
    """Streaming speech-to-text: `TRANSCRIPT_USER:` lines word by word while you speak, a cost per utterance,
    no audio back; `task_stream_end` when the session ends (Wiro §9)."""
    await _open(ctx)
    voice = _Voice(ctx, STT_PRICE)
    detector = UtteranceDetector()
    said = 0  # words of the current utterance already sent
    while True:
        item = await ctx.next_audio()
        if item is None:
            await ctx.send_event("task_stream_end")
            return
        if item == SERVER_END:
            await voice.server_end()
            return
        if not isinstance(item, bytes):
            continue
        for ms in detector.feed(item):
            for word in user_words(ms)[said:]:
                await ctx.output_line(f"TRANSCRIPT_USER:{word}")
            said = 0
            await voice.cost(_Turn(None, None, b"", input_ms=ms))
        heard = user_words(detector.speech_ms)[: detector.speech_ms // WORD_MS] if detector.in_speech else []
        for word in heard[said:]:
            await ctx.output_line(f"TRANSCRIPT_USER:{word}")
        said = max(said, len(heard))
