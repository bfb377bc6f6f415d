"""What each synthetic model does when it runs: an async `run(ctx)` per model, talking only to `RunContext`.

References like "Wiro §8" are sections of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from . import _media
from ._models import ModelFailure, RunContext
from ._records import INTERRUPT, SERVER_END


def progress_message(step: int, total: int, started: float) -> dict[str, str]:
    """The image-model progress object; every value a string (Wiro §8)."""
    elapsed = max(0.0, time.monotonic() - started)
    speed = step / elapsed if elapsed > 0 else 0.0
    remaining = (total - step) / speed if speed > 0 else 0.0
    return {"type": "progressGenerate", "task": "Generate", "percentage": str(int(100 * step / max(1, total))),
            "stepCurrent": str(step), "stepTotal": str(total), "speed": f"{speed:.1f}", "speedType": "it/s",
            "elapsedTime": f"{int(elapsed)}s", "remainingTime": f"{int(remaining)}s"}


def _int(ctx: RunContext, name: str) -> int:
    return int(float(ctx.value(name)))



async def run_text_to_image(ctx: RunContext) -> None:
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


async def run_image_to_image(ctx: RunContext) -> None:
    source = ctx.files("inputImage")[0]
    started = time.monotonic()
    for step in range(1, 5):
        await ctx.tick(0.5)
        await ctx.progress(progress_message(step, 4, started))
    data = await ctx.render(_media.transformed_image, source.data, source.name, str(ctx.value("effect")),
                            float(ctx.value("strength")))
    ctx.add_output("0.png", "image/png", data)


async def run_image_blend(ctx: RunContext) -> None:
    inputs = ctx.files("inputImages") + ctx.files("referenceImages")
    await ctx.output_line(f"Blending {len(inputs)} image(s)")
    await ctx.tick()
    data = await ctx.render(_media.blended_image, [(f.data, f.name) for f in inputs], str(ctx.value("mode")))
    ctx.add_output("0.png", "image/png", data)


async def run_kitchen_sink(ctx: RunContext) -> None:
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
    """`count` growing prefixes of `text`, cut at spaces where possible (cumulative snapshots, Wiro §8)."""
    cuts = []
    for k in range(1, count + 1):
        cut = len(text) * k // count
        space = text.rfind(" ", 0, cut)
        cuts.append(text if k == count else text[: space if space > len(text) * (k - 1) // count else cut])
    return [c for i, c in enumerate(cuts) if c and (i == 0 or c != cuts[i - 1])]


def llm_snapshot(kind: str, thinking: str, answer: str, started: float) -> dict[str, Any]:
    """One cumulative LLM `task_output` message: everything so far, not a delta (Wiro §8)."""
    elapsed = max(0.001, time.monotonic() - started)
    raw = (f"<think>\n{thinking}\n</think>\n\n" if thinking else "") + answer
    return {"type": kind, "raw": raw, "thinking": [thinking] if thinking else [],
            "answer": [answer] if answer else [], "isThinking": kind == "thinking",
            "speed": f"{len(raw.split()) / elapsed:.1f}", "speedType": "t/s", "elapsedTime": f"{int(elapsed)}s"}


async def run_chat_llm(ctx: RunContext) -> None:
    prompt = str(ctx.value("prompt"))
    session_id = str(ctx.value("session_id") or "")
    history = ctx.session(session_id) if session_id else []
    reasoning = bool(ctx.value("reasoning"))
    thinking_text, answer_text = _chat_texts(prompt, list(history), str(ctx.value("system_prompt") or ""))
    started = time.monotonic()
    thinking_done = ""
    if reasoning:
        for piece in _chunks(thinking_text, 4):
            await ctx.tick(0.3)
            thinking_done = piece
            await ctx.llm_snapshot(llm_snapshot("thinking", piece, "", started))
    for piece in _chunks(answer_text, 10):
        await ctx.tick(0.3)
        await ctx.llm_snapshot(llm_snapshot("answer", thinking_done, piece, started))
    final = llm_snapshot("answer", thinking_done, answer_text, started)
    ctx.llm_result(prompt, final["raw"], final["thinking"], final["answer"])
    if session_id:
        history.append(prompt)


def stream_text(chars: int) -> str:
    """Exactly `chars` characters of numbered sentences in paragraphs: the same text for the same length."""
    parts: list[str] = []
    length = n = 0
    while length < chars:
        n += 1
        sentence = f"Sentence {n} of the synthetic stream." + ("\n\n" if n % 8 == 0 else " ")
        parts.append(sentence)
        length += len(sentence)
    return "".join(parts)[:chars]


async def run_stream_llm(ctx: RunContext) -> None:
    # Exactly `frames` snapshots, the k-th holding chars*k//frames characters: early ones may be empty or
    # repeat when frames > chars. Real-time `delay`, not the stage delay: this model exists to pace a stream.
    prompt, chars, frames, delay = str(ctx.value("prompt")), _int(ctx, "chars"), _int(ctx, "frames"), float(ctx.value("delay"))
    answer = stream_text(chars)
    started = time.monotonic()
    for k in range(1, frames + 1):
        if k > 1:
            await asyncio.sleep(delay)
        await ctx.llm_snapshot(llm_snapshot("answer", "", answer[: chars * k // frames], started))
    ctx.llm_result(prompt, answer, [], [answer])


async def run_named_output(ctx: RunContext) -> None:
    # The name and content type are declared exactly as given (hostile ones too); the file store
    # serves the bytes under a URL-safe name of its own.
    name, content_type, text = str(ctx.value("name")), str(ctx.value("contenttype")), str(ctx.value("text"))
    if content_type.lower().startswith("image/"):
        data = await ctx.render(_media.small_png, text)
    else:
        data = text.encode("utf-8")
    for _ in range(_int(ctx, "count")):
        ctx.add_output(name, content_type, data)


async def run_text_to_speech(ctx: RunContext) -> None:
    text = str(ctx.value("text"))
    await ctx.output_line(f"Synthesizing {len(text)} characters")
    await ctx.tick()
    data = await ctx.render(_media.speech_wav, text, str(ctx.value("voice")), float(ctx.value("speed")))
    ctx.add_output("output.wav", "audio/wav", data)


async def run_animate(ctx: RunContext) -> None:
    frames, prompt = _int(ctx, "frames"), str(ctx.value("prompt"))
    started = time.monotonic()
    for step in range(1, 5):
        await ctx.tick(0.5)
        await ctx.progress(progress_message(step * frames // 4, frames, started))
    gif, webp = await ctx.render(_media.animation, prompt, frames)
    ctx.add_output("output.gif", "image/gif", gif)
    ctx.add_output("output.webp", "image/webp", webp)


async def run_always_fails(ctx: RunContext) -> None:
    await ctx.output_line("Loading synthetic model")
    await ctx.tick()
    lines = ["Traceback (most recent call last):", '  File "/app/run.py", line 42, in <module>',
             "    main(args)", f"RuntimeError: synthetic failure for prompt {str(ctx.value('prompt'))[:60]!r}"]
    for line in lines:
        await ctx.error_line(line)  # interim stderr, not terminal (Wiro §8)
        await ctx.tick(0.3)
    raise ModelFailure("\n".join(lines))


async def run_slow(ctx: RunContext) -> None:
    seconds = float(ctx.value("seconds"))
    started = time.monotonic()
    total = max(1, math.ceil(seconds / 0.2 - 1e-9))  # a progress frame about every 0.2 s, `seconds` in all
    for step in range(1, total + 1):
        await asyncio.sleep(seconds / total)  # real time, independent of stage_delay: this model exists to be slow
        await ctx.progress(progress_message(step, total, started))
    ctx.add_output("result.txt", "text/plain", f"slept {seconds:g} seconds\n".encode())


async def run_big_file(ctx: RunContext) -> None:
    megabytes = _int(ctx, "megabytes")
    await ctx.output_line(f"Writing {megabytes} MB")
    await ctx.tick()
    ctx.add_blob_output("blob.bin", "application/octet-stream", megabytes * 1024 * 1024, f"blob:{ctx.task_id}")


async def run_realtime_echo(ctx: RunContext) -> None:
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
        if chunk == SERVER_END:  # e.g. the balance ran out: a final cost, then the task ends (Wiro §9)
            await ctx.send_event("task_cost", turnCost=0.0, cumulativeCost=round(cumulative, 6), usage={})
            return
        if chunk == INTERRUPT:
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
