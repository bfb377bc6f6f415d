"""Realtime voice sessions (docs/protocol.md, Wiro §9) on the live-task layer.

A session is one task: `Run`, then the task's follower on the client's shared socket
(`client.tasks`) turns every frame into a `TaskEvent`, binary `<token>|<pcm>` frames included
(`kind="audio"`). The session listens to those events and keeps the conversation: the transcript
(`TRANSCRIPT_USER:` / `TRANSCRIPT_AI:` lines), the model's audio, the turns (each ends with
`task_stream_end` then `task_cost`) and the cumulative cost. It sends on the same socket:
`<token>|<pcm>` frames of at most 200 ms, `task_session_interrupt` and `task_session_end`.

`AsyncVoiceSession` is the one core and lives on its client's loop; `VoiceSession` (`_sync.py`)
runs it on the package's private loop (`_loop.py`), as `Wiro` runs `AsyncWiro`.

Audio is kept once: each frame's bytes are held by the session (and shared, not copied, by the
turn they belong to); `session.audio` joins them when asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._events import TaskEvent
from .._exceptions import WiroError, WiroTimeoutError
from .._fields import to_number
from .._loop import spawn
from .._models import Model
from .._params import prepare_run
from .._task import AsyncTask
from .._tasks import Tasks
from ._audio import RATE, SAMPLE_BYTES, AudioSource, frames, seconds, to_pcm, write_wav
from ._errors import VoiceConnectionLost, VoiceSessionEnded

if TYPE_CHECKING:
    from ..widgets._voice import VoiceView

log = logging.getLogger("wiro_jupyter")

USER, AI = "user", "ai"
_PREFIXES = (("TRANSCRIPT_USER:", USER), ("TRANSCRIPT_AI:", AI))
# Events after which the session is over on the server, whoever ended it.
_OVER = ("task_end", "task_postprocess_start", "task_postprocess_end", "task_cancel", "done", "error")
# Text that continues a word rather than starting one.
_CLOSING = tuple(",.;:!?…)]}'\"")

AudioCallback = Callable[[bytes], None]
TranscriptCallback = Callable[[str, str], None]
ChangeCallback = Callable[[], None]
F = TypeVar("F", bound=Callable[..., Any])


class VoiceClient(Protocol):
    """What a session needs from its client (`AsyncWiro`): the catalogue and the tasks service."""

    tasks: Tasks

    async def model(self, slug: str) -> Model: ...


@dataclass
class VoiceTurn:
    """One turn: what the user said, what the model answered (text and PCM16 24 kHz mono audio), what it cost.

    Speech-to-text models fill `user_text` only, text-to-speech models `audio` only.
    """

    user_text: str = ""
    ai_text: str = ""
    cost: float | None = None  # the turn's `turnCost`
    usage: dict[str, Any] = field(default_factory=dict)  # the provider's raw usage
    interrupted: bool = False
    _chunks: list[bytes] = field(default_factory=list, repr=False, compare=False)

    @property
    def audio(self) -> bytes:
        return b"".join(self._chunks)

    @property
    def seconds(self) -> float:
        """How long the model spoke in this turn."""
        return sum(len(c) for c in self._chunks) / (RATE * SAMPLE_BYTES)

    @property
    def has_content(self) -> bool:
        return bool(self.user_text or self.ai_text or self._chunks)


def merge_text(old: str, new: str) -> str:
    """A transcript piece added to what a speaker said so far: a growing snapshot replaces it, a word extends it.

    (Speech-to-text models send their lines word by word, Wiro §9.)
    """
    if not old or new.startswith(old):
        return new
    if not new or old[-1].isspace() or new[0].isspace() or new.startswith(_CLOSING):
        return old + new
    return f"{old} {new}"


class AsyncVoiceSession:
    """A realtime voice session with a model, for `async` code: `async with client.voice(slug) as session:`.

    Send audio with `send_audio()` (a WAV path, PCM16 bytes or a NumPy array, converted to 24 kHz
    mono and paced at real time), await the model's answer with `wait_reply()`, cut it off with
    `interrupt()`. Leaving the block (or `close()`) ends the session on the server and waits for
    the task's end. A dropped socket or a session the server ends raises `VoiceConnectionLost` /
    `VoiceSessionEnded` from the next call (or on leaving the block), keeping what was said.
    """

    def __init__(self, client: VoiceClient, slug: str, params: dict[str, Any]) -> None:
        self.client = client
        self.slug = slug
        self.params = dict(params)
        self.model: Model | None = None
        #: idle → starting → live → closing → ended (a session the server ends goes to ended directly).
        self.state = "idle"
        #: Why the session ended early, if it did (a `VoiceConnectionLost` or `VoiceSessionEnded`, …).
        self.error: WiroError | None = None
        #: How many times the model was interrupted.
        self.interrupts = 0
        self._error_seen = False
        self._task: AsyncTask | None = None
        self._transcript: list[tuple[str, str]] = []
        self._open_speaker: str | None = None  # whose transcript entry the next piece of the same speaker extends
        self._turns: list[VoiceTurn] = []
        self._asked_from: int | None = None  # turns already finished when audio began since the last wait_reply
        self._turn = VoiceTurn()
        self._turn_closed = False  # the current turn's task_stream_end arrived; its task_cost should follow
        self._dropping = False  # audio of an interrupted turn still in flight is not kept
        self._chunks: list[bytes] = []
        self._cost: float | None = None
        self._ready = False
        self._over = False
        self._changed = asyncio.Event()
        self._outbox: deque[bytes] = deque()
        self._sender: asyncio.Future[Any] | None = None
        self._audio_callbacks: list[AudioCallback] = []
        self._transcript_callbacks: list[TranscriptCallback] = []
        self._change_callbacks: list[ChangeCallback] = []

    # -- what the session knows ---------------------------------------------------------------
    @property
    def task(self) -> AsyncTask | None:
        """The session's task (finished once the session is closed); None before `start()`."""
        return self._task

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """Who said what, in order: `("user", text)` and `("ai", text)`."""
        return list(self._transcript)

    @property
    def turns(self) -> list[VoiceTurn]:
        """The finished turns, in order."""
        return list(self._turns)

    @property
    def audio(self) -> bytes:
        """Everything the model said so far, PCM16 LE mono 24 kHz (joined on each call)."""
        return b"".join(self._chunks)

    @property
    def cost(self) -> float | None:
        """The session's cumulative cost in USD, from the last `task_cost` frame."""
        return self._cost

    def save_audio(self, path: str | os.PathLike[str]) -> Path:
        """Save what the model said as a WAV file (24 kHz, mono, 16-bit)."""
        return write_wav(path, self.audio)

    # -- callbacks (called on the loop the session lives on) ----------------------------------
    def on_audio(self, callback: F) -> F:
        """Call `callback(pcm)` for each piece of the model's audio (PCM16 24 kHz mono bytes)."""
        self._audio_callbacks.append(callback)
        return callback

    def on_transcript(self, callback: F) -> F:
        """Call `callback(speaker, text)` for each transcript piece ("user" or "ai")."""
        self._transcript_callbacks.append(callback)
        return callback

    def on_change(self, callback: F) -> F:
        """Call `callback()` after anything about the session changed (state, transcript, turns, cost)."""
        self._change_callbacks.append(callback)
        return callback

    # -- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncVoiceSession:
        return await self.start()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        await self.close()
        if exc_type is None:
            self._raise_unseen()

    async def start(self, timeout: float = 120.0) -> AsyncVoiceSession:
        """Start the task and wait until the model opens its audio stream (`task_stream_ready`)."""
        if self.state != "idle":
            raise WiroError(
                f"This voice session with {self.slug} was already started (it is {self.state}).",
                hint="A session runs once: open a new one with client.voice(...).",
            )
        self._set_state("starting")
        try:
            self.model = await self.client.model(self.slug)
            prepared = prepare_run(self.model, self.params)
            self._task = await self.client.tasks.submit(self.model, prepared, on_event=self._on_event)
        except BaseException:
            self._set_state("ended")
            raise
        try:
            opened = await self._until(lambda: self._ready or self._over or self.error is not None, timeout)
        except BaseException:  # cancelled or interrupted while waiting: a paid session must not stay open
            await self._abandon()
            raise
        if not opened:
            self._fail(WiroTimeoutError(
                f"{self.slug} did not open its audio stream within {timeout:g} s (task {self._task.id}, {self._task.status}).",
                hint="The task was stopped, so it costs nothing more. Try again, or start(timeout=...) with more time.",
            ))
        if self.error is not None:
            await self._abandon()
            self._raise_error()
        return self

    async def close(self, timeout: float = 30.0) -> AsyncTask | None:
        """End the session (`task_session_end`) and wait for its task's end; returns the finished task."""
        task = self._task
        if task is None:
            self._set_state("ended")
            return None
        self._outbox.clear()  # the sender stops after the frame it is sending (cancelling a send could break the socket)
        if self.state in ("starting", "live"):
            self._set_state("closing")
            with contextlib.suppress(Exception):  # a dropped socket: the server has ended the session already
                await self._send_control("task_session_end")
        if not await self._until(lambda: self._over, timeout):
            with contextlib.suppress(WiroError):
                await task.stop()  # never leave a paid session running unseen
            self._fail(WiroTimeoutError(
                f"The voice session with {self.slug} (task {task.id}) had not ended {timeout:g} s after it was asked to, "
                "so it was stopped.",
                hint="Check the task in your Wiro dashboard.",
            ))
        self._end()
        return task

    async def _abandon(self) -> None:
        task = self._task
        if task is not None and not task.done:
            with contextlib.suppress(WiroError):
                await task.stop()
        self._end()

    # -- talking --------------------------------------------------------------------------------
    async def send_audio(self, source: AudioSource, rate: int | None = None, pace: bool = True) -> float:
        """Send audio to the model: a WAV path (16-bit, any rate and channels), raw PCM16 LE mono bytes at `rate`
        (default 24 kHz) or a NumPy int16/float array at `rate`. It goes as 24 kHz mono, in frames of at most
        200 ms, at real time unless `pace=False`. Returns its duration in seconds.

        A model answers after about half a second of silence, so end an utterance with some
        (`bytes(24_000)` is 0.5 s of it).
        """
        self._require_live()
        pcm = await asyncio.to_thread(to_pcm, source, rate)
        if self._asked_from is None:
            self._asked_from = len(self._turns)
        loop = asyncio.get_running_loop()
        begin, at = loop.time(), 0.0
        for frame in frames(pcm):
            if pace:
                delay = begin + at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            self._require_live()
            if not await self._send_audio_frame(frame):
                self._raise_error()
            at += seconds(frame)
        return seconds(pcm)

    def feed(self, pcm: bytes) -> None:
        """Queue live PCM16 24 kHz mono (a microphone) to be sent in order; dropped unless the session is live.

        Must be called on the session's loop; it returns at once.
        """
        if self.state != "live" or self.error is not None or not pcm:
            return
        self._outbox.append(pcm)
        if self._sender is None or self._sender.done():
            self._sender = spawn(self._send_outbox())

    async def _send_outbox(self) -> None:
        while self._outbox:
            for frame in frames(self._outbox.popleft()):
                if self.state != "live" or not await self._send_audio_frame(frame):
                    return  # closing, or the connection is gone (the session's error says so)

    async def wait_reply(self, timeout: float | None = 60.0) -> VoiceTurn:
        """The model's reply: what it heard, said and cost.

        That is the first turn to end after the audio sent since the previous `wait_reply()` began
        (so a reply that came while `send_audio` was still pacing counts), or after this call when no
        audio was sent since (a text-to-speech model's turn, say). Turns you interrupted are not
        replies; they stay in `turns`.
        """
        if self._task is None:
            self._require_live()
        count = len(self._turns) if self._asked_from is None else self._asked_from
        self._asked_from = None

        def reply() -> VoiceTurn | None:
            return next((turn for turn in self._turns[count:] if not turn.interrupted), None)

        await self._until(lambda: reply() is not None or self._over or self.error is not None, timeout)
        found = reply()
        if found is not None:
            return found
        self._raise_error()
        if self._over:
            raise VoiceSessionEnded(f"The voice session with {self.slug} ended before the model replied.")
        raise WiroTimeoutError(
            f"{self.slug} did not reply within {timeout:g} s.",
            hint="A model answers after about half a second of silence: end what you send with some "
            "(session.send_audio(bytes(24_000)) is 0.5 s); the session is still open.",
        )

    async def interrupt(self) -> None:
        """Cut the model off (`task_session_interrupt`); what it was still sending of that turn is not kept."""
        self._require_live()
        if self._turn._chunks and not self._turn_closed:
            self._turn.interrupted = True
            self._dropping = True
        self.interrupts += 1
        await self._send_control("task_session_interrupt")
        self._notify()

    async def events(self) -> AsyncIterator[TaskEvent]:
        """The task's events from its start (replayed) until it ends: the same typed events as every task."""
        if self._task is None:
            self._require_live()
        assert self._task is not None
        async for event in self._task.events():
            yield event

    def widget(self) -> VoiceView:
        """A widget to talk from the notebook: Start/Stop/Mute/Interrupt, level meter, live transcript, cost.

        Create it in the loop this session lives on (a notebook cell's, for `await`-style code).
        """
        from ..widgets._voice import VoiceView

        return VoiceView(self)

    # -- frames in ----------------------------------------------------------------------------------
    def _on_event(self, event: TaskEvent) -> None:
        kind = event.kind
        if kind == "audio":
            self._on_audio(event.audio or b"")
        elif kind == "task_stream_ready":
            self._ready = True
            if self.state == "starting":
                self._set_state("live")
        elif kind == "task_output" and isinstance(event.message, str):
            self._on_line(event.message)
        elif kind == "task_stream_end":
            self._turn_closed, self._dropping, self._open_speaker = True, False, None
        elif kind == "task_cost":
            self._on_cost(event.raw)
        elif kind == "socket_lost" and self.state in ("starting", "live"):
            self._fail(VoiceConnectionLost(
                f"The connection to the voice session with {self.slug} dropped ({event.message}). Wiro ends a "
                "realtime session when its socket closes, so this one is over."
            ))
        if kind in _OVER:
            self._on_over(kind)
        self._notify()

    def _on_audio(self, pcm: bytes) -> None:
        if self._dropping or not pcm:
            return
        if self._turn_closed:  # the previous turn ended without a task_cost
            self._finish_turn()
        self._chunks.append(pcm)
        self._turn._chunks.append(pcm)
        for callback in list(self._audio_callbacks):
            _call(callback, pcm)

    def _on_line(self, line: str) -> None:
        speaker = next((who for prefix, who in _PREFIXES if line.startswith(prefix)), None)
        if speaker is None:
            return  # not a transcript: a model's log line
        piece = line.split(":", 1)[1].strip()
        if not piece:
            return
        if speaker == USER and self._turn_closed:
            self._finish_turn()
        if self._open_speaker == speaker and self._transcript:
            self._transcript[-1] = (speaker, merge_text(self._transcript[-1][1], piece))
        else:
            self._transcript.append((speaker, piece))
        self._open_speaker = speaker
        if speaker == USER:
            self._turn.user_text = merge_text(self._turn.user_text, piece)
        else:
            self._turn.ai_text = merge_text(self._turn.ai_text, piece)
        for callback in list(self._transcript_callbacks):
            _call(callback, speaker, piece)

    def _on_cost(self, frame: dict[str, Any]) -> None:
        cumulative = to_number(frame.get("cumulativeCost"))
        if cumulative is not None:
            self._cost = float(cumulative)
        self._open_speaker = None
        if self._turn.has_content:  # not the server's final cost of an empty turn
            turn_cost = to_number(frame.get("turnCost"))
            self._turn.cost = float(turn_cost) if turn_cost is not None else None
            usage = frame.get("usage")
            self._turn.usage = dict(usage) if isinstance(usage, dict) else {}
            self._finish_turn()

    def _on_over(self, kind: str) -> None:
        task = self._task
        if self.state in ("starting", "live") and self.error is None:
            tid = task.id if task is not None else "?"
            if not self._ready:
                detail = f": {task.error}" if task is not None and task.error else ""
                self._fail(VoiceSessionEnded(
                    f"Task {tid} ({self.slug}) ended before the model opened its audio stream{detail}.",
                    hint=f"Check that {self.slug} is a realtime model; the task in your Wiro dashboard says more.",
                ))
            else:
                self._fail(VoiceSessionEnded(
                    f"Wiro ended the voice session with {self.slug} (task {tid}) before you did; "
                    "the usual reason is an exhausted balance."
                ))
        if kind in ("done", "error"):  # the follower has finished: nothing more will arrive
            self._over = True
            self._end()

    def _finish_turn(self) -> None:
        if self._turn.has_content:
            self._turns.append(self._turn)
        self._turn = VoiceTurn()
        self._turn_closed = self._dropping = False

    # -- frames out -----------------------------------------------------------------------------
    async def _send_audio_frame(self, frame: bytes) -> bool:
        """Send one frame; False (and the session's error set) when the connection is gone."""
        assert self._task is not None
        try:
            await self.client.tasks.socket.send_audio(self._task.token, frame)
        except Exception as exc:  # closed or reconnecting: either way this session is over (Wiro §9)
            self._fail(VoiceConnectionLost(
                f"The connection to the voice session with {self.slug} dropped while sending audio "
                f"({exc or type(exc).__name__}). Wiro ends a realtime session when its socket closes, so this one is over."
            ))
            return False
        return True

    async def _send_control(self, kind: str) -> None:
        assert self._task is not None
        await self.client.tasks.socket.send_json({"type": kind, "tasktoken": self._task.token})

    # -- state --------------------------------------------------------------------------------------
    def _require_live(self) -> None:
        self._raise_error()
        if self.state != "live":
            raise WiroError(
                f"The voice session with {self.slug} is not live (it is {self.state}).",
                hint="Use it inside `with wiro.voice(...) as session:` (or call session.start() first); "
                "a session that ended cannot be reused: open a new one.",
            )

    def _raise_error(self) -> None:
        if self.error is not None:
            self._error_seen = True
            raise self.error

    def _raise_unseen(self) -> None:
        # On leaving a `with` block: a session that failed without any call raising it must not look like a success.
        if not self._error_seen:
            self._raise_error()

    def _fail(self, error: WiroError) -> None:
        if self.error is None:
            self.error = error
            self._notify()

    def _set_state(self, state: str) -> None:
        if self.state != state:
            self.state = state
            self._notify()

    def _end(self) -> None:
        # A turn cut short by the end (no task_cost) is not a finished turn; its words stay in the transcript.
        self._set_state("ended")

    def _notify(self) -> None:
        # Wake every waiter (each waits on the event of its generation), then tell the listeners.
        event, self._changed = self._changed, asyncio.Event()
        event.set()
        for callback in list(self._change_callbacks):
            _call(callback)

    async def _until(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until `predicate()` holds (True) or `timeout` seconds pass (False)."""
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while not predicate():
            event = self._changed
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)
        return True

    def __repr__(self) -> str:
        bits = [self.slug, self.state]
        if self._task is not None:
            bits.append(f"task {self._task.id}")
        bits.append(f"{len(self._turns)} turns")
        if self._cost is not None:
            bits.append(f"${self._cost:.4f}")
        if self.error is not None:
            bits.append(type(self.error).__name__)
        return f"<{type(self).__name__} {' · '.join(bits)}>"


def _call(callback: Callable[..., None], *args: Any) -> None:
    try:
        callback(*args)
    except Exception:  # a display bug must never end a session
        log.exception("voice session callback failed")
