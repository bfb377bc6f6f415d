"""The synthetic models of the emulator: their catalogue entries, parameter definitions and behaviour.

Parameter items use the RAW server field names (research §4.1): `defaultvalue`,
string `minvalue`/`maxvalue`/`incrementby`, options `{text, value}`,
`maxinputlenght` (sic), `advanced`. Each model's behaviour is an async `run(ctx)`
that talks to the task engine only through the `RunContext` protocol below, so
this module knows nothing about HTTP or sockets.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import _media

OWNER = "wiro"
FILE_TYPES = ("fileinput", "multifileinput", "combinefileinput")
NUMERIC_TYPES = ("range", "number", "float")
SELECT_TYPES = ("select", "selectwithcover")


class ModelFailure(Exception):
    """Raised by a model run: the task ends with pexit "1" and this text in `debugerror`."""


@dataclass(frozen=True)
class InputFile:
    """One file given to a model: its URL as echoed in `parameters`, and its bytes when the emulator has them."""

    url: str
    name: str
    data: bytes | None


class RunContext(Protocol):
    """What a model run may do; implemented by `_runs.TaskRun`."""

    task_id: str
    parameters: dict[str, Any]  # the echoed (string-coerced) parameters, as in Task/Detail

    def value(self, name: str) -> Any: ...
    def files(self, name: str) -> list[InputFile]: ...
    async def tick(self, factor: float = 1.0) -> None: ...
    async def output_line(self, text: str) -> None: ...
    async def progress(self, message: dict[str, str]) -> None: ...
    async def error_line(self, text: str) -> None: ...
    async def llm_snapshot(self, snapshot: dict[str, Any]) -> None: ...
    def llm_result(self, prompt: str, raw: str, thinking: list[str], answer: list[str]) -> None: ...
    def add_output(self, name: str, content_type: str, data: bytes) -> None: ...
    def add_blob_output(self, name: str, content_type: str, size: int, seed: str) -> None: ...
    async def render(self, func: Callable[..., Any], *args: Any) -> Any: ...
    def session(self, session_id: str) -> list[str]: ...
    async def send_event(self, type_: str, **extra: Any) -> None: ...
    async def send_audio(self, pcm: bytes) -> None: ...
    async def wait_for_listener(self) -> None: ...
    async def next_audio(self) -> bytes | str | None: ...
    def add_turn(self) -> None: ...


Runner = Callable[[RunContext], Awaitable[None]]


@dataclass(frozen=True)
class ModelSpec:
    id: str
    project: str  # raw `slugproject`, display-ish ("Text To Image") like the real catalogue (research §3)
    clean: str  # `cleanslugproject`, URL-safe
    title: str
    description: str
    categories: tuple[str, ...]
    groups: list[dict[str, Any]]
    run: Runner
    price: float
    price_method: str = "cpr"
    computingtime: str = "5 seconds"
    inspire: list[dict[str, Any]] = field(default_factory=list)
    owner: str = OWNER

    @property
    def items(self) -> list[dict[str, Any]]:
        return [item for group in self.groups for item in group["items"]]

    @property
    def dynamicprice(self) -> str:
        # A JSON-encoded STRING, not an array (research §3, §4 "Pricing").
        return json.dumps([{"inputs": {}, "price": self.price, "priceMethod": self.price_method,
                            "priceExtra": 0.0, "priceInput": 0.0}], separators=(",", ":"))

    @property
    def cps(self) -> str:
        return f"{self.price / 10:.12f}"

    @property
    def readme(self) -> str:
        return (f"<p><strong>{self.title}</strong> is a synthetic model served by the local Wiro emulator.</p>"
                f"<p>{self.description}</p><ul><li>Owner: {self.owner}</li><li>Categories: "
                f"{', '.join(self.categories)}</li></ul>")


def param(pid: str, type_: str, label: str, *, required: bool = False, default: Any = "",
          placeholder: str = "", note: str = "", advanced: bool = False, minvalue: str | None = None,
          maxvalue: str | None = None, step: str | None = None, options: list[tuple[str, str]] | None = None,
          maxlen: int | None = None, covers: bool = False) -> dict[str, Any]:
    """One parameter item with raw field names; type-specific fields only where they apply."""
    item: dict[str, Any] = {"id": pid, "type": type_, "label": label, "placeholder": placeholder, "note": note,
                            "required": required, "defaultvalue": default, "advanced": advanced}
    if minvalue is not None:
        item["minvalue"] = minvalue  # strings (research §4.1)
        item["maxvalue"] = maxvalue
        item["incrementby"] = step or "1"
    if options is not None:
        item["options"] = [{"text": text, "value": value} for text, value in options]
        if covers:
            for option in item["options"]:
                option["cover"] = f"/files/covers/{option['value'] or 'default'}.jpg"
    if maxlen is not None:
        item["maxinputlenght"] = maxlen  # (sic) int
    return item


def group(title: str, items: list[dict[str, Any]], subtitle: str = "") -> dict[str, Any]:
    return {"title": title, "subtitle": subtitle, "items": items}


def progress_message(step: int, total: int, started: float) -> dict[str, str]:
    """The image-model progress object; every value a string (research §8)."""
    elapsed = max(0.0, time.monotonic() - started)
    speed = step / elapsed if elapsed > 0 else 0.0
    remaining = (total - step) / speed if speed > 0 else 0.0
    return {"type": "progressGenerate", "task": "Generate", "percentage": str(int(100 * step / max(1, total))),
            "stepCurrent": str(step), "stepTotal": str(total), "speed": f"{speed:.1f}", "speedType": "it/s",
            "elapsedTime": f"{int(elapsed)}s", "remainingTime": f"{int(remaining)}s"}


def _int(ctx: RunContext, name: str) -> int:
    return int(float(ctx.value(name)))


# --- behaviour -----------------------------------------------------------------------------------


async def _run_text_to_image(ctx: RunContext) -> None:
    prompt, seed = str(ctx.value("prompt")), _int(ctx, "seed")
    width, height, steps, samples = _int(ctx, "width"), _int(ctx, "height"), _int(ctx, "steps"), _int(ctx, "samples")
    style, output_format = str(ctx.value("style")), str(ctx.value("outputFormat"))
    started = time.monotonic()
    await ctx.output_line("Loading pipeline wiro/text-to-image (synthetic)")
    reports = min(steps, 10)
    for k in range(1, reports + 1):
        await ctx.tick(0.5)
        await ctx.progress(progress_message(round(k * steps / reports), steps, started))
    _, ext, content_type = _media.image_format(output_format)
    for i in range(samples):
        data = await ctx.render(_media.generated_image, prompt, seed, i, width, height, style, output_format)
        ctx.add_output(f"{i}.{ext}", content_type, data)
    await ctx.output_line(f"Saved {samples} image(s)")


async def _run_image_to_image(ctx: RunContext) -> None:
    source = ctx.files("inputImage")[0]
    started = time.monotonic()
    for step in range(1, 5):
        await ctx.tick(0.5)
        await ctx.progress(progress_message(step, 4, started))
    data = await ctx.render(_media.transformed_image, source.data, source.name, str(ctx.value("effect")),
                            float(ctx.value("strength")))
    ctx.add_output("0.png", "image/png", data)


async def _run_image_blend(ctx: RunContext) -> None:
    inputs = ctx.files("inputImages") + ctx.files("referenceImages")
    await ctx.output_line(f"Blending {len(inputs)} image(s)")
    await ctx.tick()
    data = await ctx.render(_media.blended_image, [(f.data, f.name) for f in inputs], str(ctx.value("mode")))
    ctx.add_output("0.png", "image/png", data)


async def _run_kitchen_sink(ctx: RunContext) -> None:
    await ctx.output_line("Echoing the received parameters")
    await ctx.tick()
    ctx.add_output("params.json", "application/json", _media.params_json(ctx.parameters))
    ctx.add_output("preview.png", "image/png", await ctx.render(_media.small_png, str(ctx.value("prompt"))))


def _chat_texts(prompt: str, history: list[str], system_prompt: str) -> tuple[str, str]:
    turn = len(history) + 1
    thinking = (f"The user wrote {len(prompt)} characters. This is turn {turn} of the session. "
                f"I should answer in Markdown with a heading, a list and a code block.")
    memory = (f"I remember {len(history)} earlier turn(s) in this session. "
              + (f'Earlier you said: "{history[-1]}"' if history else "This is the start of our conversation."))
    lines = [
        "## Emulated answer",
        "",
        f"You said: {prompt}",
        "",
        memory,
        "",
        f"- Turn number: {turn}",
        f"- Prompt length: {len(prompt)} characters",
    ]
    if system_prompt:
        lines.append(f"- System prompt: {system_prompt[:80]}")
    lines += ["", "```python", f"print({prompt[:40]!r})", "```", "", "That is all from the synthetic model."]
    return thinking, "\n".join(lines)


def _chunks(text: str, count: int) -> list[str]:
    """`count` growing prefixes of `text`, cut at spaces where possible (cumulative snapshots, research §8)."""
    cuts = []
    for k in range(1, count + 1):
        cut = len(text) * k // count
        space = text.rfind(" ", 0, cut)
        cuts.append(text if k == count else text[: space if space > len(text) * (k - 1) // count else cut])
    return [c for i, c in enumerate(cuts) if c and (i == 0 or c != cuts[i - 1])]


async def _run_chat_llm(ctx: RunContext) -> None:
    prompt = str(ctx.value("prompt"))
    session_id = str(ctx.value("session_id") or "")
    history = ctx.session(session_id) if session_id else []
    reasoning = bool(ctx.value("reasoning"))
    thinking_text, answer_text = _chat_texts(prompt, list(history), str(ctx.value("system_prompt") or ""))
    started = time.monotonic()

    def snapshot(kind: str, thinking: str, answer: str) -> dict[str, Any]:
        elapsed = max(0.001, time.monotonic() - started)
        raw = (f"<think>\n{thinking}\n</think>\n\n" if thinking else "") + answer
        return {"type": kind, "raw": raw, "thinking": [thinking] if thinking else [],
                "answer": [answer] if answer else [], "isThinking": kind == "thinking",
                "speed": f"{len(raw.split()) / elapsed:.1f}", "speedType": "t/s", "elapsedTime": f"{int(elapsed)}s"}

    thinking_done = ""
    if reasoning:
        for piece in _chunks(thinking_text, 4):
            await ctx.tick(0.3)
            thinking_done = piece
            await ctx.llm_snapshot(snapshot("thinking", piece, ""))
    for piece in _chunks(answer_text, 10):
        await ctx.tick(0.3)
        await ctx.llm_snapshot(snapshot("answer", thinking_done, piece))
    final = snapshot("answer", thinking_done, answer_text)
    ctx.llm_result(prompt, final["raw"], final["thinking"], final["answer"])
    if session_id:
        history.append(prompt)


async def _run_text_to_speech(ctx: RunContext) -> None:
    text = str(ctx.value("text"))
    await ctx.output_line(f"Synthesizing {len(text)} characters")
    await ctx.tick()
    data = await ctx.render(_media.speech_wav, text, str(ctx.value("voice")), float(ctx.value("speed")))
    ctx.add_output("output.wav", "audio/wav", data)


async def _run_animate(ctx: RunContext) -> None:
    frames, prompt = _int(ctx, "frames"), str(ctx.value("prompt"))
    started = time.monotonic()
    for step in range(1, 5):
        await ctx.tick(0.5)
        await ctx.progress(progress_message(step * frames // 4, frames, started))
    gif, webp = await ctx.render(_media.animation, prompt, frames)
    ctx.add_output("output.gif", "image/gif", gif)
    ctx.add_output("output.webp", "image/webp", webp)


async def _run_always_fails(ctx: RunContext) -> None:
    await ctx.output_line("Loading synthetic model")
    await ctx.tick()
    lines = ["Traceback (most recent call last):", '  File "/app/run.py", line 42, in <module>',
             "    main(args)", f"RuntimeError: synthetic failure for prompt {str(ctx.value('prompt'))[:60]!r}"]
    for line in lines:
        await ctx.error_line(line)  # interim stderr, not terminal (research §8)
        await ctx.tick(0.3)
    raise ModelFailure("\n".join(lines))


async def _run_slow(ctx: RunContext) -> None:
    seconds = float(ctx.value("seconds"))
    started = time.monotonic()
    total = max(1, int(seconds / 0.2))
    for step in range(1, total + 1):
        await asyncio.sleep(0.2)  # real time, independent of stage_delay: this model exists to be slow
        await ctx.progress(progress_message(step, total, started))
    ctx.add_output("result.txt", "text/plain", f"slept {seconds:g} seconds\n".encode())


async def _run_big_file(ctx: RunContext) -> None:
    megabytes = _int(ctx, "megabytes")
    await ctx.output_line(f"Writing {megabytes} MB")
    await ctx.tick()
    ctx.add_blob_output("blob.bin", "application/octet-stream", megabytes * 1024 * 1024, f"blob:{ctx.task_id}")


async def _run_realtime_echo(ctx: RunContext) -> None:
    # The bridge to the "model" opens once a client listens on the socket; only then
    # does `task_stream_ready` go out (otherwise, without replay, nobody could ever see it).
    await ctx.wait_for_listener()
    await ctx.send_event("task_stream_ready")
    cumulative = 0.0
    turn_price = 0.002
    while True:
        chunk = await ctx.next_audio()
        if chunk is None:  # task_session_end, or every listener gone
            return
        if chunk == "interrupt":
            await ctx.send_event("task_stream_end")
            continue
        assert isinstance(chunk, bytes)
        millis = len(chunk) // 2 * 1000 // _media.SAMPLE_RATE
        await ctx.output_line(f"TRANSCRIPT_USER:heard {millis} ms of audio (peak {_media.pcm_peak(chunk)})")
        await ctx.send_audio(chunk)
        await ctx.output_line(f"TRANSCRIPT_AI:echoing {millis} ms back to you")
        await ctx.send_event("task_stream_end")
        ctx.add_turn()
        cumulative += turn_price
        await ctx.send_event("task_cost", turnCost=turn_price, cumulativeCost=round(cumulative, 6),
                             usage={"input_audio_ms": millis, "output_audio_ms": millis})


# --- catalogue -----------------------------------------------------------------------------------

_STYLES = [("Photo", "photo"), ("Illustration", "illustration"), ("Pixel art", "pixel-art"), ("None", "")]
_FORMATS = [("PNG", "png"), ("JPEG", "jpeg"), ("WEBP", "webp")]


def _catalogue() -> list[ModelSpec]:
    return [
        ModelSpec(
            "1001", "Text To Image", "text-to-image", "Text to Image",
            "Draws a deterministic gradient picture with your prompt written on it.",
            ("text-to-image", "image-generation"),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Describe the picture",
                      note="What to draw"),
                param("negativePrompt", "text", "Negative Prompt", placeholder="What to avoid"),
                param("width", "range", "Width", default=512, minvalue="256", maxvalue="1024", step="64",
                      note="Multiple of 64"),
                param("height", "range", "Height", default=512, minvalue="256", maxvalue="1024", step="64"),
                param("samples", "range", "Samples", default=1, minvalue="1", maxvalue="4"),
                param("style", "select", "Style", default="photo", options=_STYLES),
                param("outputFormat", "select", "Output Format", default="png", options=_FORMATS),
            ]), group("Advanced", [
                param("steps", "range", "Steps", default=20, minvalue="1", maxvalue="50", advanced=True),
                param("guidance", "range", "Guidance", default=4.5, minvalue="1.5", maxvalue="10", step="0.5",
                      advanced=True),
                param("seed", "range", "Seed", default=123, minvalue="0", maxvalue="9999999", advanced=True),
            ])],
            _run_text_to_image, 0.02, "cpo", "5 seconds",
            [{"prompt": "A lighthouse at dusk, oil painting", "width": 512, "height": 512}],
        ),
        ModelSpec(
            "1002", "Image To Image", "image-to-image", "Image to Image",
            "Applies an effect (invert, grayscale, posterize) to your picture.",
            ("image-to-image", "image-editing"),
            [group("Inputs", [
                param("inputImage", "fileinput", "Input Image", required=True, note="PNG or JPEG"),
                param("inputImageUrl", "text", "Input Image URL", placeholder="https://…",
                      note="Instead of uploading a file"),
                param("effect", "select", "Effect", default="invert",
                      options=[("Invert", "invert"), ("Grayscale", "grayscale"), ("Posterize", "posterize")]),
                param("strength", "range", "Strength", default=0.8, minvalue="0", maxvalue="1", step="0.05"),
            ])],
            _run_image_to_image, 0.01, "cpr", "3 seconds",
            [{"inputImageUrl": "https://cdn.wiro.ai/samples/cat.png", "effect": "grayscale"}],
        ),
        ModelSpec(
            "1003", "Image Blend", "image-blend", "Image Blend",
            "Blends or tiles up to three images, plus optional reference images.",
            ("image-to-image", "image-editing"),
            [group("Inputs", [
                param("inputImages", "combinefileinput", "Input Images", required=True, maxlen=3,
                      note="Up to 3 files or URLs"),
                param("referenceImages", "multifileinput", "Reference Images", maxlen=4),
                param("referenceImagesUrl", "text", "Reference Image URLs", note="Comma-separated URLs"),
                param("mode", "select", "Mode", default="average", options=[("Average", "average"), ("Tile", "tile")]),
            ])],
            _run_image_blend, 0.015, "cpr", "4 seconds",
        ),
        ModelSpec(
            "1004", "Kitchen Sink", "kitchen-sink", "Kitchen Sink",
            "Every parameter type once; echoes what it received as JSON.",
            ("tool",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Anything", note="Echoed back"),
                param("title", "text", "Title", placeholder="A title"),
                param("mode", "select", "Mode", required=True, default="fast",
                      options=[("Fast", "fast"), ("Quality", "quality"), ("Match input", "")]),
                param("scene", "selectwithcover", "Scene", default="beach",
                      options=[("Beach", "beach"), ("Forest", "forest"), ("City", "city")], covers=True),
                param("inputImage", "fileinput", "Input Image"),
                param("inputImageUrl", "text", "Input Image URL", note="Instead of uploading a file"),
            ], subtitle="The basics"),
             group("Numbers", [
                 param("count", "range", "Count", default=3, minvalue="1", maxvalue="10", step="1"),
                 param("amount", "number", "Amount", default=7, minvalue="0", maxvalue="100"),
                 param("ratio", "float", "Ratio", default=0.5, minvalue="0", maxvalue="1", step="0.1"),
                 param("enabled", "checkbox", "Enabled", default="false", note="A string boolean, like the real API"),
             ]),
             group("Advanced", [
                 param("gallery", "multifileinput", "Gallery", maxlen=5),
                 param("galleryUrl", "text", "Gallery URLs", note="Comma-separated"),
                 param("mixed", "combinefileinput", "Mixed Files", maxlen=4),
                 param("seed", "number", "Seed", default=42, minvalue="0", maxvalue="999999", advanced=True),
             ])],
            _run_kitchen_sink, 0.0, "cpr", "1 second",
            [{"prompt": "hello", "mode": "fast", "count": 3}],
        ),
        ModelSpec(
            "1005", "Chat LLM", "chat-llm", "Chat LLM",
            "A chat model that streams thinking and a Markdown answer, with memory per session_id.",
            ("chat", "llm"),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True, placeholder="Ask anything"),
                param("user_id", "text", "User ID"),
                param("session_id", "text", "Session ID", note="Reuse to keep the conversation"),
                param("system_prompt", "textarea", "System Prompt",
                      default="You are a helpful, respectful and honest assistant."),
                param("temperature", "text", "Temperature", default="0.7"),
                param("max_tokens", "range", "Max Tokens", default=0, minvalue="0", maxvalue="4096"),
                param("reasoning", "checkbox", "Reasoning", default=True),
            ])],
            _run_chat_llm, 0.001, "cpr", "2 seconds",
            [{"prompt": "What is quantum computing?"}],
        ),
        ModelSpec(
            "1006", "Text To Speech", "text-to-speech", "Text to Speech",
            "Turns text into a melody of tones (PCM16 mono 24 kHz WAV).",
            ("text-to-speech",),
            [group("Inputs", [
                param("text", "textarea", "Text", required=True, placeholder="Text to speak"),
                param("voice", "select", "Voice", default="marin",
                      options=[("Marin", "marin"), ("Cedar", "cedar"), ("Robot", "robot")]),
                param("speed", "range", "Speed", default=1, minvalue="0.5", maxvalue="2", step="0.1"),
            ])],
            _run_text_to_speech, 0.005, "cpr", "3 seconds",
        ),
        ModelSpec(
            "1007", "Animate", "animate", "Animate",
            "A short animation (GIF and animated WebP) standing in for a video model.",
            ("text-to-video",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt", required=True),
                param("frames", "range", "Frames", default=8, minvalue="4", maxvalue="24"),
            ])],
            _run_animate, 0.05, "cpr", "20 seconds",
        ),
        ModelSpec(
            "1008", "Always Fails", "always-fails", "Always Fails",
            "Runs, writes a traceback to stderr and fails.",
            ("tool",),
            [group("Inputs", [param("prompt", "textarea", "Prompt", required=True)])],
            _run_always_fails, 0.01, "cpr", "2 seconds",
        ),
        ModelSpec(
            "1009", "Slow", "slow", "Slow",
            "Takes its time (progress every 0.2 s); for cancel and kill.",
            ("tool",),
            [group("Inputs", [
                param("prompt", "textarea", "Prompt"),
                param("seconds", "range", "Seconds", default=30, minvalue="1", maxvalue="600"),
            ])],
            _run_slow, 0.0005, "cps", "30 seconds",
        ),
        ModelSpec(
            "1010", "Big File", "big-file", "Big File",
            "Produces a deterministic binary blob of the requested size.",
            ("tool",),
            [group("Inputs", [param("megabytes", "range", "Megabytes", default=8, minvalue="1", maxvalue="1024")])],
            _run_big_file, 0.0, "cpr", "5 seconds",
        ),
        ModelSpec(
            "1011", "Realtime Echo", "realtime-echo", "Realtime Echo",
            "A realtime voice model that echoes your audio back with transcripts.",
            ("realtime-conversation", "realtime"),
            [group("Inputs", [
                param("voice", "select", "Voice", default="marin", options=[("Marin", "marin"), ("Cedar", "cedar")]),
                param("system_instructions", "textarea", "System Instructions"),
                param("input_audio_rate", "text", "Input Audio Rate", default="24000"),
            ])],
            _run_realtime_echo, 0.002, "cp-realtimeturn", "realtime",
        ),
    ]


class Catalogue:
    """The models, looked up by raw or clean slug, case-insensitively (research §3)."""

    def __init__(self) -> None:
        self.models = _catalogue()

    def find(self, owner: str, project: str) -> ModelSpec | None:
        owner, project = owner.strip().lower(), project.strip().lower()
        for spec in self.models:
            if owner == spec.owner and project in (spec.clean, spec.project.lower()):
                return spec
        return None
