"""`VoiceSession`: the blocking face of `AsyncVoiceSession`, which it runs on the package's private loop.

The same split as `Wiro` / `AsyncWiro`: one core (`_session.py`), and here thin `run_sync` wrappers.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from .._delegate import Delegated
from .._events import TaskEvent
from .._exceptions import WiroError
from .._loop import background_loop, run_sync
from .._task import Task
from ._audio import AudioSource
from ._session import AsyncVoiceSession, F, VoiceClient, VoiceTurn

if TYPE_CHECKING:
    from ..widgets._voice import VoiceView


class BlockingClient(Protocol):
    """What a blocking session needs from its client (`Wiro`): the async core it wraps."""

    @property
    def aio(self) -> VoiceClient: ...


class VoiceSession:
    """A realtime voice session with a model, for ordinary (blocking) code: scripts, threads and notebooks.

    >>> with wiro.voice("openai/gpt-realtime-mini", voice="marin") as session:   # doctest: +SKIP
    ...     session.send_audio("question.wav")
    ...     reply = session.wait_reply(timeout=30)
    ...     reply.ai_text, reply.audio, reply.cost
    >>> session.transcript, session.task                                          # doctest: +SKIP

    It runs an `AsyncVoiceSession` (`session.aio`) on the package's private loop, where the
    callbacks (`on_audio`, `on_transcript`, `on_change`) are called too.
    """

    def __init__(self, wiro: BlockingClient, slug: str, params: dict[str, Any]) -> None:
        #: The async core (lives on the package's private loop).
        self.aio = AsyncVoiceSession(wiro.aio, slug, params)
        self._task: Task | None = None

    # -- lifecycle --------------------------------------------------------------------------------
    def __enter__(self) -> VoiceSession:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.close()
        if exc_type is None:
            self.aio._raise_unseen()

    def start(self, timeout: float = 120.0) -> VoiceSession:
        """Start the task and wait until the model opens its audio stream."""
        run_sync(self.aio.start(timeout))
        return self

    def close(self, timeout: float = 30.0) -> Task | None:
        """End the session on the server and wait for its task's end; returns the finished task."""
        run_sync(self.aio.close(timeout))
        return self.task

    # -- talking --------------------------------------------------------------------------------
    def send_audio(self, source: AudioSource, rate: int | None = None, pace: bool = True) -> float:
        """Send audio (see `AsyncVoiceSession.send_audio`); returns its duration in seconds."""
        return run_sync(self.aio.send_audio(source, rate, pace))

    def feed(self, pcm: bytes) -> None:
        """Queue live PCM16 24 kHz mono to be sent in order, from any thread; returns at once."""
        background_loop().call_soon_threadsafe(self.aio.feed, bytes(pcm))

    def wait_reply(self, timeout: float | None = 60.0) -> VoiceTurn:
        """The first turn that ends after this call."""
        return run_sync(self.aio.wait_reply(timeout))

    def interrupt(self) -> None:
        """Cut the model off."""
        run_sync(self.aio.interrupt())

    def events(self, timeout: float | None = None) -> Iterator[TaskEvent]:
        """The task's events from its start (replayed) until it ends."""
        task = self.task
        if task is None:
            self.aio._require_live()
        assert task is not None
        return task.events(timeout)

    def widget(self) -> VoiceView:
        """A widget to talk from the notebook: Start/Stop/Mute/Interrupt, level meter, live transcript, cost."""
        from ..widgets._voice import VoiceView

        if self.aio.model is None:  # what the model does (listen, speak) shapes the widget; a wrong slug fails here
            self.aio.model = run_sync(self.aio.client.model(self.slug))
        return VoiceView(self)

    # -- what the session knows ---------------------------------------------------------------
    @property
    def task(self) -> Task | None:
        """The session's task (finished once the session is closed); None before `start()`."""
        if self._task is None and self.aio.task is not None:
            self._task = Task(self.aio.task)
        return self._task

    slug: Delegated[str] = Delegated("aio")
    state: Delegated[str] = Delegated("aio")
    error: Delegated[WiroError | None] = Delegated("aio")
    transcript: Delegated[list[tuple[str, str]]] = Delegated("aio")
    turns: Delegated[list[VoiceTurn]] = Delegated("aio")
    audio: Delegated[bytes] = Delegated("aio")
    cost: Delegated[float | None] = Delegated("aio")

    def save_audio(self, path: str | os.PathLike[str]) -> Path:
        return self.aio.save_audio(path)

    def on_audio(self, callback: F) -> F:
        return self.aio.on_audio(callback)

    def on_transcript(self, callback: F) -> F:
        return self.aio.on_transcript(callback)

    def on_change(self, callback: F) -> F:
        return self.aio.on_change(callback)

    def __repr__(self) -> str:
        return repr(self.aio).replace("AsyncVoiceSession", "VoiceSession", 1)
