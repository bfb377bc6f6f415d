"""The voice widget in JupyterLab in Chromium, with Chromium's fake microphone playing a WAV made here:
Start streams the microphone to the session at real time (seconds of audio the emulator received against
wall-clock time), the model's transcript appears, its audio is handed to the page's audio output (the
samples the widget's player scheduled), and Stop ends the session on the server. The kernel starts its
own emulator (`wj.use_emulator()` in the notebook's first cell) and reports what it received.

The fake microphone is Chromium flags: this module's `chromium_args` fixture gives them to `browser_page`.
"""

from __future__ import annotations

import json
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .harness import (
    JupyterLab,
    console_for,
    shot,
)

SETUP = """\
import json
import wiro_jupyter as wj
from wiro_jupyter.voice._open import open_voice
emu = wj.use_emulator(stage_delay=0.05, quiet=True)"""

OPEN = 'view = open_voice("openai/gpt-realtime-mini", {"voice": "marin"})\nview'

# What the emulator's side of the session has seen (the notebook's own emulator, in the kernel).
REPORT = """\
import numpy as np
rec = emu.tasks[view.session.task.id]
v = rec.voice
heard = np.frombuffer(bytes(v.pcm_in), dtype="<i2")
loud = np.flatnonzero(heard)
print(json.dumps({"status": rec.status, "session_end": v.session_end, "bytes_in": v.bytes_in,
                  "frames": sorted(set(v.frames_in)), "last_frame": v.frames_in[-1] if v.frames_in else 0,
                  "span": v.times_in[-1] - v.times_in[0] if v.times_in else 0.0, "bytes_out": v.bytes_out,
                  "quiet_tail": int(len(heard) - 1 - loud[-1]) if len(loud) else len(heard),
                  "interrupts": v.interrupts, "state": view.state, "turns": len(view.session.turns)}))"""

# Keeps the widest the level meter got (the meter moves faster than a test could poll).
WATCH_LEVEL = """(root) => {
  window.__wiroLevel = 0;
  const level = root.querySelector('.wiro-voice-level');
  new MutationObserver(() => {
    window.__wiroLevel = Math.max(window.__wiroLevel, parseFloat(level.style.width) || 0);
  }).observe(level, {attributes: true, attributeFilter: ['style']});
}"""


def microphone_wav(path: Path) -> Path:
    """3 s, looped by Chromium: 0.8 s of a 300 Hz tone (an utterance), then 2.2 s of silence (the model answers)."""
    rate = 48_000
    t = np.arange(int(rate * 0.8)) / rate
    speech = 0.5 * np.sin(2 * np.pi * 300 * t)
    samples = np.concatenate([speech, np.zeros(int(rate * 2.2))])
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


@pytest.fixture
def chromium_args(tmp_path: Path) -> list[str]:
    """Chromium's fake microphone, playing `microphone_wav`, granted without a prompt."""
    wav = microphone_wav(tmp_path / "microphone.wav")
    return ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}"]


def report(lab: JupyterLab, page: Any) -> dict[str, Any]:
    lab.run_cell(page, 2)
    return dict(json.loads(lab.output_text(page, 2).strip().splitlines()[-1]))


def samples(widget: Any, name: str) -> int:
    return int(widget.get_attribute(f"data-{name}-samples") or 0)


def test_talking_through_the_microphone(lab: JupyterLab, browser_page: Any) -> None:
    page = browser_page
    begin = time.monotonic()
    lab.open_notebook(page, [SETUP, OPEN, REPORT], name="voice.ipynb")
    lab.run_cell(page, 0)
    lab.run_cell(page, 1)
    lab.wait_for(page, ".wiro-voice[data-state='idle']")
    widget = page.locator(".wiro-voice").first
    assert widget.locator(".wiro-voice-title").inner_text() == "openai/gpt-realtime-mini"
    assert widget.locator(".wiro-voice-stop").is_disabled()

    widget.evaluate(WATCH_LEVEL)
    widget.locator(".wiro-voice-start").click()
    lab.wait_for(page, ".wiro-voice[data-state='live'][data-mic='on']", timeout=30)
    answer = lab.wait_for(page, ".wiro-voice-line[data-speaker='ai'] .wiro-voice-text", timeout=30)
    assert answer.inner_text().startswith("Turn 1: I heard")
    assert widget.locator(".wiro-voice-line[data-speaker='user']").count() >= 1
    page.wait_for_function("(el) => Number(el.dataset.scheduledSamples) > 0", arg=widget.element_handle(), timeout=30_000)
    shot(page, "voice-live", widget)

    # Measure the rate over at least 3 s of streaming (each report is a cell run while the session goes on).
    seen = report(lab, page)
    while seen["span"] < 3.0:
        assert time.monotonic() - begin < 90, seen
        seen = report(lab, page)
    rate = (seen["bytes_in"] - seen["last_frame"]) / 48_000 / seen["span"]  # seconds of audio per second
    assert 0.9 < rate < 1.1, seen
    assert seen["frames"] == [4800], seen  # 100 ms per message, under the 200 ms cap, token-prefixed on the wire
    assert seen["turns"] >= 1 and seen["state"] == "live" and seen["bytes_out"] > 0
    assert page.evaluate("() => window.__wiroLevel") > 50  # the level meter followed the microphone

    widget.locator(".wiro-voice-interrupt").click()
    while seen["interrupts"] < 1:
        assert time.monotonic() - begin < 90, seen
        seen = report(lab, page)

    # Muted, the widget streams silence: longer than any pause of the microphone's loop (2.2 s).
    widget.locator(".wiro-voice-mute").click()
    lab.wait_for(page, ".wiro-voice-mute:has-text('Unmute')")
    while seen["quiet_tail"] < 3.5 * 24_000:
        assert time.monotonic() - begin < 90, seen
        seen = report(lab, page)
    assert seen["state"] == "live" and seen["frames"] == [4800]

    widget.locator(".wiro-voice-stop").click()
    lab.wait_for(page, ".wiro-voice[data-state='ended'][data-mic='off']", timeout=30)
    lab.wait_for_idle()
    ended = report(lab, page)
    assert ended["status"] == "task_postprocess_end" and ended["session_end"], ended
    scheduled, received = samples(widget, "scheduled"), samples(widget, "received")
    assert 0 < scheduled == received <= ended["bytes_out"] // 2  # every chunk that came was handed to the output
    assert samples(widget, "sent") * 2 >= seen["bytes_in"]
    assert widget.locator(".wiro-voice-message").inner_text() == "Run the cell again for a new session."
    shot(page, "voice-ended", widget)
    console_for(page).check()
    assert time.monotonic() - begin < 120
