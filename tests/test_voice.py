"""Realtime voice sessions over real sockets against the emulator: audio in (converted to 24 kHz mono,
framed, paced), transcripts, audio and cost out, interrupt, the session's end (ours or the server's),
a dropped socket; the three kinds of realtime model; the widget's Python side.

What the emulator received and sent is read from `emu.tasks[id].voice` (a `VoiceLog`); its synthetic
models derive every transcript from the utterance's duration (`_realtime.user_text`, `reply_ms`).
"""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import elements

import wiro_jupyter as wj
from wiro_jupyter import ValidationError, Wiro
from wiro_jupyter.emulator.wiro import _realtime
from wiro_jupyter.voice import VoiceConnectionLost, VoiceSessionEnded, VoiceTurn
from wiro_jupyter.voice._audio import FRAME_BYTES, to_pcm
from wiro_jupyter.voice._session import merge_text

CHAT = "openai/gpt-realtime-mini"
RATE = 24_000


def tone(hz: float, seconds: float, rate: int = RATE, amplitude: float = 0.5) -> np.ndarray[Any, Any]:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def pcm16(samples: np.ndarray[Any, Any]) -> bytes:
    return (samples * 32767).astype("<i2").tobytes()


SILENCE = bytes(2 * RATE * 6 // 10)  # 0.6 s: ends an utterance (the emulator waits for 0.5 s of it)


def utterance(seconds: float, hz: float = 300.0) -> bytes:
    """PCM16 24 kHz: `seconds` of a tone, then enough silence for the model to answer."""
    return pcm16(tone(hz, seconds)) + SILENCE


def dominant_hz(pcm: bytes | np.ndarray[Any, Any], rate: int = RATE) -> float:
    samples = np.frombuffer(pcm, dtype="<i2") if isinstance(pcm, (bytes, bytearray)) else pcm
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


def task_of(session: Any) -> Any:
    assert session.task is not None
    return session.task


def record(emu: Any, session: Any) -> Any:
    return emu.tasks[task_of(session).id]


# --- audio conversion ------------------------------------------------------------------------------------


def test_conversion_rules() -> None:
    raw = pcm16(tone(440, 0.1))
    assert to_pcm(raw) == raw  # already the wire format: untouched
    assert len(to_pcm(raw, rate=12_000)) == 2 * len(raw)
    assert len(to_pcm(tone(440, 1.0, rate=48_000), rate=48_000)) == 2 * RATE  # float32 at 48 kHz
    cases: list[tuple[Any, int | None, str]] = [(b"\x00\x01\x02", None, "whole PCM16"), (np.zeros(10, np.int16), None, "rate="),
                                                (np.zeros(10, np.int64), 16_000, "int64"), (3.5, None, "float")]
    for bad, rate, words in cases:
        with pytest.raises(ValidationError, match=words):
            to_pcm(bad, rate)


def test_wav_files_that_cannot_be_read_say_why(tmp_path: Path) -> None:
    eight_bit = tmp_path / "8bit.wav"
    with wave.open(str(eight_bit), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(bytes(800))
    with pytest.raises(ValidationError, match="8-bit samples"):
        to_pcm(eight_bit)
    with pytest.raises(ValidationError, match="no file"):
        to_pcm(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(ValidationError, match="not a PCM WAV"):
        to_pcm(tmp_path / "text.wav")


def test_transcript_pieces_merge_like_words_or_snapshots() -> None:
    assert merge_text("", "hello") == "hello"
    assert merge_text("hello", "wiro") == "hello wiro"  # word by word (speech-to-text)
    assert merge_text("hello", "hello wiro") == "hello wiro"  # a growing snapshot replaces
    assert merge_text("hello", ", wiro") == "hello, wiro"
    assert merge_text("hello ", "wiro") == "hello wiro"


# --- a conversation ---------------------------------------------------------------------------------------


def test_a_16k_stereo_wav_arrives_as_24k_mono_of_the_same_duration_and_pitch(wiro: Wiro, emu: Any,
                                                                           tmp_path: Path) -> None:
    seconds, hz = 1.5, 440.0
    left, right = tone(hz, seconds, 16_000, 0.6), tone(hz, seconds, 16_000, 0.2)
    path = tmp_path / "question.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((np.stack([left, right], axis=1) * 32767).astype("<i2").tobytes())

    with wiro.voice(CHAT) as session:
        started = time.monotonic()
        assert session.send_audio(path) == pytest.approx(seconds)
        paced = time.monotonic() - started
    # Read after the session's end: the server handles task_session_end after every frame sent before it.
    voice = record(emu, session).voice
    frames, received = list(voice.frames_in), bytes(voice.pcm_in)
    assert seconds - 0.25 <= paced < seconds + 1.0  # real time: the last 200 ms frame leaves 1.3 s after the first
    assert frames and all(0 < size <= FRAME_BYTES for size in frames)  # routed by the token prefix, ≤ 200 ms each
    assert len(frames) == -(-len(received) // FRAME_BYTES)
    assert abs(len(received) / 2 - seconds * RATE) <= 2  # 24 kHz, same duration
    assert dominant_hz(received) == pytest.approx(hz, abs=1.0)  # same pitch...
    assert dominant_hz((left * 32767).astype(np.int16), 16_000) == pytest.approx(hz, abs=1.0)  # ...as what went in
    samples = np.frombuffer(received, dtype="<i2")[RATE // 10: -RATE // 10]
    assert np.abs(samples).max() / 32767 == pytest.approx(0.4, rel=0.02)  # both channels mixed: (0.6 + 0.2) / 2


def test_transcripts_audio_and_cost_come_back_as_the_emulator_sent_them(wiro: Wiro, emu: Any, tmp_path: Path) -> None:
    heard: list[tuple[str, str]] = []
    with wiro.voice(CHAT, voice="marin") as session:
        session.on_transcript(lambda speaker, text: heard.append((speaker, text)))
        assert session.state == "live" and session.task is not None
        session.send_audio(utterance(1.0), pace=False)
        first = session.wait_reply(timeout=15)
        session.send_audio(utterance(2.0), pace=False)
        second = session.wait_reply(timeout=15)
    rec = record(emu, session)
    assert isinstance(first, VoiceTurn) and not first.interrupted
    assert first.user_text == _realtime.user_text(1000) and second.user_text == _realtime.user_text(2000)
    assert first.ai_text.startswith("Turn 1: I heard 1.00 s") and second.ai_text.startswith("Turn 2: I heard 2.00 s")
    assert len(first.audio) == 2 * RATE * _realtime.reply_ms(1000) // 1000
    assert len(second.audio) == 2 * RATE * _realtime.reply_ms(2000) // 1000
    assert dominant_hz(first.audio) == pytest.approx(_realtime.tone_hz("marin"), abs=2.0)
    assert session.audio == first.audio + second.audio == bytes(rec.voice.pcm_out)
    lines = [line.split(":", 1) for line in rec.stdout]
    expected = [("user" if who == "TRANSCRIPT_USER" else "ai", text) for who, text in lines]
    assert session.transcript == expected == heard
    assert [first.cost, second.cost] == [c["turnCost"] for c in rec.voice.costs] == [_realtime.CONVERSATION_PRICE] * 2
    assert first.usage == {"input_audio_ms": 1000, "output_audio_ms": _realtime.reply_ms(1000)}
    assert session.cost == pytest.approx(rec.voice.costs[-1]["cumulativeCost"]) == pytest.approx(0.006)

    # Leaving the block ended the session on the server, and its task normally.
    assert rec.voice.session_end and rec.status == "task_postprocess_end" and rec.pexit == "0"
    task = session.task
    assert task is not None and task.done and task.ok and session.state == "ended" and session.error is None
    assert float(rec.totalcost) == pytest.approx(0.006) and task.cost == pytest.approx(0.006)
    kinds = [e.kind for e in session.events(timeout=5)]
    assert kinds.index("task_stream_ready") < kinds.index("audio") < kinds.index("task_cost") < kinds.index("done")

    saved = session.save_audio(tmp_path / "answer.wav")
    with wave.open(str(saved)) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (RATE, 1, 2)
        assert wav.readframes(wav.getnframes()) == session.audio


def test_interrupt_stops_the_answer_and_the_next_utterance_is_answered(emu: Any) -> None:
    async def main() -> tuple[VoiceTurn, VoiceTurn, Any]:
        async with wj.AsyncWiro(api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url,
                                poll_interval=0.05) as client:
            speaking = asyncio.Event()
            async with client.voice(CHAT) as session:
                session.on_audio(lambda pcm: speaking.set())
                await session.send_audio(utterance(4.0), pace=False)  # answered with 2.4 s of audio
                await asyncio.wait_for(speaking.wait(), 15)
                await session.interrupt()
                await session.send_audio(utterance(1.0), pace=False)
                answered = await session.wait_reply(timeout=15)  # not the turn it cut: that is no reply
            return session.turns[0], answered, session

    cut, answered, session = asyncio.run(asyncio.wait_for(main(), 60))
    voice = emu.tasks[task_of(session).id].voice
    full = 2 * RATE * _realtime.reply_ms(4000) // 1000
    assert cut.interrupted and 0 < len(cut.audio) <= 2 * FRAME_BYTES < full  # at most one frame more went out
    assert voice.interrupts == 1 and voice.costs[0]["usage"]["output_audio_ms"] <= 400
    assert not answered.interrupted and len(answered.audio) == 2 * RATE * _realtime.reply_ms(1000) // 1000
    assert answered.user_text == _realtime.user_text(1000)
    assert session.audio == cut.audio + answered.audio == bytes(voice.pcm_out)
    assert session.interrupts == 1 and task_of(session).ok and len(session.turns) == 2


def test_a_dropped_socket_ends_the_session_with_a_clear_error_and_keeps_the_transcript(wiro: Wiro, emu: Any) -> None:
    with wiro.voice(CHAT) as session:
        session.send_audio(utterance(1.0), pace=False)
        first = session.wait_reply(timeout=15)
        emu.faults.drop_socket(after_frames=1)  # the next frame the server sends cuts every socket
        session.send_audio(utterance(1.0), pace=False)
        with pytest.raises(VoiceConnectionLost) as info:
            session.wait_reply(timeout=15)
        with pytest.raises(VoiceConnectionLost):
            session.send_audio(SILENCE)
    message = str(info.value)
    assert "dropped" in message and "session.transcript" in message and "new session" in message
    assert session.state == "ended" and session.error is info.value  # seen once: leaving the block did not raise again
    assert session.transcript[:2] == [("user", first.user_text), ("ai", first.ai_text)]
    assert session.audio.startswith(first.audio)
    assert session.task is not None and task_of(session).done  # the server ended the session when the socket closed
    assert emu.tasks[task_of(session).id].status == "task_postprocess_end"


def test_a_session_the_server_ends_says_so_and_keeps_what_was_said(wiro: Wiro, emu: Any) -> None:
    emu.faults.end_voice_session(after_turns=1, times=2)
    with wiro.voice(CHAT) as session:
        session.send_audio(utterance(1.0), pace=False)
        turn = session.wait_reply(timeout=15)
        with pytest.raises(VoiceSessionEnded, match="exhausted balance") as info:
            session.wait_reply(timeout=15)
    assert "Top up" in str(info.value) and session.transcript[1] == ("ai", turn.ai_text)
    costs = emu.tasks[task_of(session).id].voice.costs
    assert [c["turnCost"] for c in costs] == [_realtime.CONVERSATION_PRICE, 0.0]  # a final cost, then task_end
    assert session.cost == pytest.approx(_realtime.CONVERSATION_PRICE) and task_of(session).done

    # Nothing raised inside the block: leaving it must not pass for a success.
    with pytest.raises(VoiceSessionEnded), wiro.voice(CHAT) as quiet:
        quiet.send_audio(utterance(1.0), pace=False)
        for _ in quiet.events(timeout=15):
            pass
    assert len(quiet.turns) == 1


# --- the other kinds of realtime model ------------------------------------------------------------------


def test_speech_to_text_sends_words_and_no_audio(wiro: Wiro, emu: Any) -> None:
    with wiro.voice("wiro/voxtral-mini-realtime") as session:
        session.send_audio(utterance(1.5) + SILENCE * 3)  # at real time: the words come while it is still sending
        assert len(session.turns) == 1
        turn = session.wait_reply(timeout=15)  # the reply to what was sent, though it came before this call
    rec = record(emu, session)
    assert turn.user_text == _realtime.user_text(1500) and turn.ai_text == "" and turn.audio == b""
    assert len(rec.stdout) == len(_realtime.user_words(1500)) > 1  # word by word...
    assert session.transcript == [("user", turn.user_text)]  # ...one entry
    assert turn.cost == _realtime.STT_PRICE and rec.voice.bytes_out == 0 and task_of(session).ok


def test_text_to_speech_sends_audio_and_no_transcript(wiro: Wiro, emu: Any) -> None:
    with wiro.voice("wiro/moss-tts", text="The lighthouse keeper speaks.") as session:
        turn = session.wait_reply(timeout=15)
    rec = record(emu, session)
    assert turn.audio and turn.audio == bytes(rec.voice.pcm_out) == session.audio
    assert session.transcript == [] and turn.user_text == turn.ai_text == ""
    assert turn.cost == _realtime.TTS_PRICE and task_of(session).ok and rec.voice.bytes_in == 0


def test_misuse_says_what_to_do(wiro: Wiro) -> None:
    session = wiro.voice(CHAT)
    with pytest.raises(wj.WiroError, match="not live"):
        session.send_audio(SILENCE)
    assert session.close() is None and session.state == "ended"
    with pytest.raises(ValidationError, match="voise"):
        wiro.voice(CHAT, voise="marin").start()
    with pytest.raises(VoiceSessionEnded, match="before the model opened its audio stream"):
        wiro.voice("wiro/kitchen-sink", prompt="not a realtime model").start(timeout=15)


# --- the widget, kernel side ------------------------------------------------------------------------


def test_the_widget_starts_streams_and_stops_the_session(wiro: Wiro, emu: Any) -> None:
    session = wiro.voice(CHAT)
    view = session.widget()
    sent: list[int] = []
    view.send = lambda content, buffers=None: sent.append(len(buffers[0]))  # the front end's side of the comm
    assert (view.state, view.listens, view.speaks, view.slug) == ("idle", True, True, CHAT)
    changed = threading.Event()
    session.on_change(changed.set)
    view._on_custom(view, {"action": "start"}, [])
    deadline = time.monotonic() + 15
    while session.state != "live":
        assert time.monotonic() < deadline, session.state
        changed.wait(1)
        changed.clear()
    chunk = utterance(1.0)
    for offset in range(0, len(chunk), 4800):  # what the front end sends: 100 ms per message
        view._on_custom(view, {"action": "audio"}, [memoryview(chunk[offset: offset + 4800])])
    while len(session.turns) < 1:
        assert time.monotonic() < deadline
        changed.wait(1)
        changed.clear()
    view._on_custom(view, {"action": "stop"}, [])
    while view.state != "ended":
        assert time.monotonic() < deadline, view.state
        changed.wait(1)
        changed.clear()
    rec = record(emu, session)
    assert bytes(rec.voice.pcm_in) == chunk and set(rec.voice.frames_in) == {4800}
    assert sum(sent) == len(session.audio) == rec.voice.bytes_out  # the model's audio went to the front end
    assert view.turns == 1 and view.cost == pytest.approx(_realtime.CONVERSATION_PRICE)
    assert [e["speaker"] for e in view.transcript] == ["user", "ai"] and rec.voice.session_end

    view.transcript = [{"speaker": "ai", "text": '<img src=x onerror="alert(1)"> & <script>x</script>'}]
    bundle, _ = view._repr_mimebundle_()
    tags, handlers = elements(bundle["text/html"])
    assert not ({"img", "script"} & tags) and not handlers
    assert "AI: <img src=x" in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_the_widget_of_a_speech_to_text_model_only_listens(wiro: Wiro) -> None:
    view = wiro.voice("wiro/voxtral-mini-realtime").widget()
    assert (view.listens, view.speaks) == (True, False)
    view = wiro.voice("wiro/moss-tts", text="hi").widget()
    assert (view.listens, view.speaks) == (False, True)
