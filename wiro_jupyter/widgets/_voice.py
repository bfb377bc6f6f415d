"""`VoiceView`: talk to a realtime model from the notebook, through the browser's microphone.

    session = wiro.voice("openai/gpt-realtime-mini")
    session.widget()                 # or wiro_jupyter.voice._open.open_voice(slug, params), behind `%wiro voice`

Start asks for the microphone, then starts the session in the background, so the cell has returned
and the kernel is free to receive audio. The front end (`js/voice.js`) captures in an AudioWorklet
at 24 kHz and sends PCM16 chunks as binary buffers of custom messages, which this widget queues on
the session (`feed`, on the session's loop: the comm handler never blocks). The model's audio goes
the other way as `{"kind": "audio"}` messages with one buffer each, played with a small jitter
buffer and cut at once on Interrupt. The view holds no protocol logic: it renders the session's
state (transcript, cost, turns, errors) through a throttle, at most ~20 updates a second and the
final state always. Traits are the whole contract with the front end (see `js/voice.js`).

Saved notebooks: the mimebundle carries the widget view plus escaped `text/html` and `text/plain`
transcripts, as they were when the view was displayed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import anywidget
import traitlets as t

from .._exceptions import WiroError
from .._loop import background_loop
from .._models import Model
from .._render import escape, html_bundle
from ._frontend import merge_bundle
from ._static import es_module, static_file
from ._throttle import Throttle

log = logging.getLogger("wiro_jupyter")

__all__ = ["VoiceView"]

UPDATE_INTERVAL = 0.05  # at most ~20 updates a second


SPEAKERS = {"user": "You", "ai": "AI"}


class VoiceCore(Protocol):
    """What the view renders and drives: a session's async core (`wiro_jupyter.voice.AsyncVoiceSession`).

    (A protocol rather than an import: the voice package hands out this view, so it must not depend on it.)
    """

    slug: str
    state: str
    error: WiroError | None
    interrupts: int
    model: Model | None

    @property
    def task(self) -> Any: ...
    @property
    def transcript(self) -> list[tuple[str, str]]: ...
    @property
    def turns(self) -> list[Any]: ...
    @property
    def cost(self) -> float | None: ...
    def on_audio(self, callback: Callable[[bytes], None]) -> Any: ...
    def on_change(self, callback: Callable[[], None]) -> Any: ...
    def feed(self, pcm: bytes) -> None: ...
    async def start(self) -> Any: ...
    async def close(self) -> Any: ...
    async def interrupt(self) -> None: ...


@runtime_checkable
class BlockingVoice(Protocol):
    """A blocking session (`wiro_jupyter.voice.VoiceSession`): its core runs on the package's private loop."""

    @property
    def aio(self) -> VoiceCore: ...


def voice_kind(model: Model | None) -> str:
    """'conversation' (listens and speaks), 'tts' (speaks only) or 'stt' (listens only), from the model's categories."""
    categories = {c.lower() for c in (model.categories if model else [])}
    if "text-to-speech" in categories:
        return "tts"
    if "speech-to-text" in categories:
        return "stt"
    return "conversation"


class VoiceView(anywidget.AnyWidget):
    """The widget of one voice session (see the module docstring). `VoiceView(session)`, or `session.widget()`.

    A `VoiceSession` runs on the package's private loop; an `AsyncVoiceSession`'s view must be
    created inside the loop that session lives on.
    """

    _esm = es_module("voice.js")
    _css = static_file("voice.css")

    slug = t.Unicode("").tag(sync=True)
    task_id = t.Unicode("").tag(sync=True)
    state = t.Unicode("idle").tag(sync=True)  # idle | starting | live | closing | ended | failed
    error = t.Unicode("").tag(sync=True)  # why the session ended early (one paragraph)
    notice = t.Unicode("").tag(sync=True)  # e.g. why Start or Stop did not work
    transcript = t.List(t.Dict()).tag(sync=True)  # [{"speaker": "user" | "ai", "text": ...}]
    cost = t.Float(-1.0).tag(sync=True)  # cumulative USD; -1: none reported yet
    turns = t.Int(0).tag(sync=True)
    interrupts = t.Int(0).tag(sync=True)  # the front end stops playback whenever it grows
    barge_in = t.Bool(True).tag(sync=True)  # speaking while the model talks interrupts it
    muted = t.Bool(False).tag(sync=True)  # the front end sends silence instead of the microphone
    listens = t.Bool(True).tag(sync=True)  # the model takes the microphone (not a TTS model)
    speaks = t.Bool(True).tag(sync=True)  # the model talks back (not an STT model)

    def __init__(self, session: VoiceCore | BlockingVoice, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.session = session
        self._core: VoiceCore
        if isinstance(session, BlockingVoice):
            self._core, self._loop = session.aio, background_loop()
        else:
            try:
                self._core, self._loop = session, asyncio.get_running_loop()
            except RuntimeError:
                raise WiroError(
                    "The widget of an AsyncVoiceSession must be created inside the event loop the session lives on.",
                    hint="Call session.widget() from a notebook cell (or a coroutine) of that loop, "
                    "or use the blocking Wiro().voice(...), whose widget works anywhere.",
                ) from None
        kind = voice_kind(self._core.model)
        self.listens, self.speaks = kind != "tts", kind != "stt"
        self.slug = self._core.slug
        self._throttle = Throttle(self._sync, UPDATE_INTERVAL)
        self._core.on_audio(self._forward_audio)
        self._core.on_change(self._changed)
        self.on_msg(self._on_custom)
        self._sync()

    # -- session -> front end ----------------------------------------------------------------
    def _forward_audio(self, pcm: bytes) -> None:
        self.send({"kind": "audio"}, buffers=[pcm])

    def _changed(self) -> None:
        if self._core.state == "ended":
            self._throttle.flush(final=True)
        else:
            self._throttle()

    def _sync(self) -> None:
        core = self._core
        task = core.task
        with self.hold_sync():
            self.task_id = task.id if task is not None else ""
            self.transcript = [{"speaker": speaker, "text": text} for speaker, text in core.transcript]
            self.cost = core.cost if core.cost is not None else -1.0
            self.turns = len(core.turns)
            self.interrupts = core.interrupts
            self.error = str(core.error) if core.error is not None else ""
            self.state = "failed" if core.error is not None else core.state

    # -- front end -> session ------------------------------------------------------------------
    def _on_custom(self, _widget: Any, content: Any, buffers: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        core = self._core
        if action == "audio":
            for buffer in buffers or ():
                self._loop.call_soon_threadsafe(core.feed, bytes(buffer))
        elif action == "start" and core.state == "idle":
            self.notice = ""
            self._submit(core.start())
        elif action == "stop" and core.state in ("starting", "live"):
            self._submit(core.close())
        elif action == "interrupt" and core.state == "live":
            self._submit(core.interrupt())

    def _submit(self, coro: Any) -> None:
        # On the session's loop, not here: the kernel's comm handler must never wait.
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.add_done_callback(self._report)

    def _report(self, future: concurrent.futures.Future[Any]) -> None:
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None or exc is self._core.error:  # the session's own error shows as `error`
            return
        if not isinstance(exc, WiroError):
            log.error("voice widget action failed", exc_info=exc)
        self.notice = str(exc)

    # -- static fallbacks -------------------------------------------------------------------
    def text(self) -> str:
        """The header line, then one line per transcript entry ('You: …' / 'AI: …')."""
        bits = [self.slug, self.state]
        if self.task_id:
            bits.append(f"task {self.task_id}")
        bits.append(f"{self.turns} turn{'s' if self.turns != 1 else ''}")
        if self.cost >= 0:
            bits.append(f"${self.cost:.4f}")
        lines = [" · ".join(bits)]
        if self.error:
            lines.append(self.error)
        lines += [f"{SPEAKERS.get(e['speaker'], 'AI')}: {e['text']}" for e in self.transcript]
        return "\n".join(lines)

    def static_html(self) -> str:
        head = self.text().split("\n", 1)[0]
        error = f'<div style="color:#b91c1c">{escape(self.error)}</div>' if self.error else ""
        lines = "".join(
            f'<div><b>{escape(SPEAKERS.get(e["speaker"], "AI"))}:</b> {escape(e["text"])}</div>' for e in self.transcript
        )
        return (
            f'<div class="wiro-voice-static" style="border-left:4px solid #6b7280;padding:4px 8px;font-family:sans-serif;'
            f'font-size:13px"><div style="font-weight:600">{escape(head)}</div>{error}{lines}</div>'
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        return merge_bundle(super()._repr_mimebundle_(**kwargs), html_bundle(self.static_html(), self.text()))
