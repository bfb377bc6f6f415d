"""Following tasks live: the status stream, LLM deltas, socket faults with polling
fallback, cancel/kill, kernel interrupts, the journal, and streamed downloads."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from conftest import make_client

import wiro_jupyter as wj
from wiro_jupyter import TaskCancelledError, Wiro
from wiro_jupyter._events import STAGES


def kinds(task: Any) -> list[str]:
    return [e.kind for e in task.event_log]


def run_live(client: Wiro, emu: Any, slug: str, *, stage_delay: float = 0.01, **params: Any) -> Any:
    """Start a task that the socket sees from its first stage on.

    The server replays nothing to a late subscriber, so the task is held in
    the queue until the emulator has seen our socket register it, then released.
    """
    emu.pause_queue()
    emu.stage_delay = stage_delay
    task = client.run(slug, wait=False, **params)
    assert emu.wait_registered(task.token, timeout=10), "the task socket never registered the task"
    emu.resume_queue()
    return task


def test_whole_status_sequence_in_order(wiro: Wiro, emu: Any) -> None:
    seen: list[str] = []
    task = run_live(wiro, emu, "wiro/text-to-image", prompt="stages", on_event=lambda e: seen.append(e.kind))
    streamed = [e.kind for e in task.events(timeout=30)]
    assert task.ok
    lifecycle = [k for k in streamed if k in STAGES and k != "task_output"]
    assert lifecycle == [s for s in STAGES if s not in ("task_queue", "task_output")]
    assert "task_output" in streamed
    assert streamed[-1] == "done"
    assert seen == streamed  # the callback and the iterator see the same stream
    progress = [e for e in task.event_log if e.progress]
    assert progress and all(e.percentage is not None for e in progress)  # incl. JSON-encoded-string messages


def test_events_replay_after_the_end(wiro: Wiro) -> None:
    task = wiro.run("wiro/text-to-image", prompt="replay")
    first = [e.kind for e in task.events()]
    assert first == kinds(task) and first.count("done") == 1
    assert [e.kind for e in task.events()] == first  # iterating again adds nothing


def test_llm_deltas_rebuild_the_exact_text(wiro: Wiro, emu: Any) -> None:
    answer_parts: list[str] = []
    thinking_parts: list[str] = []

    def on_event(event: Any) -> None:
        answer_parts.append(event.answer_delta)
        thinking_parts.append(event.thinking_delta)

    task = run_live(wiro, emu, "wiro/chat-llm", prompt="Explain entanglement", on_event=on_event).wait(30)
    assert task.ok
    assert len([p for p in answer_parts if p]) > 3  # it streamed, not one blob
    assert "".join(answer_parts) == task.text
    assert "".join(thinking_parts) == task.thinking
    assert task.text == task.refresh().text  # socket text == Task/Detail text


def test_socket_drop_mid_task_falls_back_and_completes(emu: Any) -> None:
    emu.faults.drop_socket(after_frames=3)
    with make_client(emu, poll_interval=0.05) as client:
        task = run_live(client, emu, "wiro/chat-llm", prompt="drop me").wait(30)
    assert task.ok and "drop me" in task.text
    assert "socket_lost" in kinds(task)


def test_silent_socket_is_noticed(emu: Any) -> None:
    emu.faults.silent_socket(True)
    with make_client(emu, socket_silence=0.3) as client:
        task = client.run("wiro/text-to-image", prompt="silence", timeout=30)
    assert task.ok
    assert "poll" in kinds(task)


def test_refused_socket_polls(emu: Any) -> None:
    emu.faults.refuse_socket(times=50)
    with make_client(emu, poll_interval=0.05) as client:
        task = client.run("wiro/text-to-image", prompt="no socket", timeout=30)
    assert task.ok and task.outputs


@pytest.mark.parametrize("status", [429, 503])
def test_task_detail_errors_while_following(emu: Any, status: int) -> None:
    emu.faults.http_error(path="Task/Detail", status=status, times=3, retry_after=0)
    with make_client(emu, max_retries=1) as client:
        task = client.run("wiro/text-to-image", prompt=f"detail {status}", timeout=30)
    assert task.ok and task.outputs


def test_cancel_while_queued(wiro: Wiro, emu: Any) -> None:
    emu.pause_queue()
    task = wiro.run("wiro/text-to-image", prompt="queued", wait=False)
    task.refresh()
    assert task.status == "task_queue"
    task.cancel()
    assert task.status == "task_cancel" and task.done and not task.ok
    with pytest.raises(TaskCancelledError):
        task.wait(5)


def test_kill_while_running(wiro: Wiro) -> None:
    started = threading.Event()
    task = wiro.run(
        "wiro/slow",
        prompt="long",
        seconds=120,
        wait=False,
        on_event=lambda e: started.set() if e.kind == "task_output" else None,
    )
    assert started.wait(20)
    assert task.stop() == "kill"
    assert task.status == "task_cancel"


def test_stop_picks_cancel_when_queued(wiro: Wiro, emu: Any) -> None:
    emu.pause_queue()
    task = wiro.run("wiro/slow", prompt="q", wait=False)
    assert task.stop() == "cancel"


def test_keyboard_interrupt_stops_the_paid_task(wiro: Wiro, emu: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """What the kernel does on "interrupt": a KeyboardInterrupt in the thread waiting on run()."""

    def interrupt_once_running(event: Any) -> None:
        if event.kind == "task_output" and not getattr(interrupt_once_running, "done", False):
            interrupt_once_running.done = True  # type: ignore[attr-defined]
            os.kill(os.getpid(), signal.SIGINT)  # a real signal, as the kernel's "interrupt" sends

    with pytest.raises(KeyboardInterrupt):
        wiro.run("wiro/slow", prompt="interrupt me", seconds=120, on_event=interrupt_once_running)
    err = capsys.readouterr().err
    assert "killed on the server" in err
    latest = wj.tasks(1)[0]
    remote = wiro.task(latest.task_id or "")
    assert remote.status == "task_cancel"


def test_many_tasks_share_one_socket_and_a_bounded_pool(emu: Any) -> None:
    async def main() -> tuple[int, bool]:
        async with wj.AsyncWiro(
            api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url, poll_interval=0.2, max_connections=4
        ) as client:
            tasks = await asyncio.gather(
                *(client.run("wiro/text-to-image", prompt=f"n{i}", wait=False, width=256, height=256) for i in range(40))
            )
            await asyncio.gather(*(t.wait(60) for t in tasks))
            pool = client.http.client._transport._pool  # httpcore's pool: the TCP connections it holds
            return len(pool.connections), all(t.ok for t in tasks)

    sockets_before = emu.stats.socket_connections
    connections, ok = asyncio.run(main())
    assert ok
    assert emu.stats.socket_connections - sockets_before == 1  # one WebSocket for all 40 tasks (server's count)
    assert 1 <= connections <= 4  # 40 concurrent tasks, never more HTTP connections than the bound


def test_tasks_one_after_another_keep_the_socket(emu: Any) -> None:
    """The socket stays open between back-to-back tasks (no close, reopen and spurious drop per task)."""
    before = emu.stats.socket_connections
    with make_client(emu) as client:
        tasks = [client.run("wiro/text-to-image", prompt=f"in turn {i}", width=256, height=256) for i in range(5)]
    assert all(t.ok for t in tasks)
    assert emu.stats.socket_connections - before == 1
    assert not [e for t in tasks for e in t.event_log if e.kind == "socket_lost"]


# -- the journal ------------------------------------------------------------------------------
def test_journal_records_before_returning(wiro: Wiro) -> None:
    task = wiro.run("wiro/text-to-image", prompt="journal me", wait=False)
    entry = wj.tasks(1)[0]
    assert entry.task_id == task.id and entry.token == task.token
    assert entry.parameters["prompt"] == "journal me"
    task.wait(30)


def test_journal_holds_no_secret_and_no_bytes(emu: Any, tmp_path: Path) -> None:
    with make_client(emu, api_key=emu.signature_key, api_secret=emu.signature_secret) as client:
        client.run("wiro/text-to-image", prompt="secret-free")
    raw = (Path(os.environ["WIRO_HOME"]) / "journal.sqlite3").read_bytes()
    assert emu.signature_key.encode() not in raw and emu.signature_secret.encode() not in raw


def test_recover_in_a_new_process(wiro: Wiro, emu: Any, tmp_path: Path) -> None:
    task = wiro.run("wiro/text-to-image", prompt="recover me", width=256, height=256)
    saved = task.save(tmp_path / "first")
    code = (
        "import json, sys, wiro_jupyter as wj\n"
        "entries = wj.tasks(5)\n"
        f"t = wj.recover({task.id!r})\n"
        "paths = t.save(sys.argv[1])\n"
        "print(json.dumps({'ok': t.ok, 'model': t.model, 'prompt': t.parameters.get('prompt'),"
        " 'ids': [e.task_id for e in entries], 'files': [p.name for p in paths],"
        " 'saved': [str(o.path) for o in t.outputs]}))\n"
    )
    env = {**os.environ, "WIRO_API_KEY": emu.api_key, "WIRO_API_URL": emu.api_url, "WIRO_SOCKET_URL": emu.socket_url}
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "again")], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["ok"] and result["model"] == "wiro/text-to-image" and result["prompt"] == "recover me"
    assert task.id in result["ids"]
    assert result["files"] == [p.name for p in saved]
    assert (tmp_path / "again" / saved[0].name).read_bytes() == saved[0].read_bytes()


# -- downloads ---------------------------------------------------------------------------------
def test_large_output_streams_with_bounded_memory(wiro: Wiro, tmp_path: Path) -> None:
    task = wiro.run("wiro/big-file", megabytes=64)
    tracemalloc.start()
    try:
        paths = task.save(tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert paths[0].stat().st_size == 64 * 1024 * 1024
    assert peak < 8 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while saving 64 MB"


def test_size_cap_can_be_raised(wiro: Wiro, tmp_path: Path) -> None:
    task = wiro.run("wiro/big-file", megabytes=2)
    out = tmp_path / "out"
    with pytest.raises(wj.ValidationError) as info:
        task.save(out, max_bytes=1024 * 1024)
    assert "max_bytes" in str(info.value)
    assert not list(out.iterdir())  # no partial file left behind
    assert task.save(out, max_bytes=4 * 1024 * 1024)[0].stat().st_size == 2 * 1024 * 1024


@pytest.mark.parametrize("name", ["../../etc/passwd", "/abs/path.png", "..", "a\\..\\b.png", "ok.png"])
def test_output_names_cannot_escape(name: str) -> None:
    from wiro_jupyter._outputs import safe_filename

    safe = safe_filename(name)
    assert "/" not in safe and "\\" not in safe and safe not in ("", ".", "..")


def test_decompression_bomb_guard_stays_on(wiro: Wiro) -> None:
    from PIL import Image

    assert Image.MAX_IMAGE_PIXELS is not None
    task = wiro.run("wiro/text-to-image", prompt="guard", width=256, height=256)
    assert task.images  # opening our images must not switch the guard off
    assert Image.MAX_IMAGE_PIXELS is not None


def test_two_outputs_with_the_same_name_are_both_saved(wiro: Wiro, tmp_path: Path) -> None:
    task = wiro.run("wiro/named-output", name="0.png", contenttype="image/png", count=3)
    out = tmp_path / "out"
    paths = task.save(out)
    assert [p.name for p in paths] == ["0.png", "0-2.png", "0-3.png"]
    assert all(p.stat().st_size > 0 for p in paths) and len(list(out.iterdir())) == 3
    assert [p.name for p in task.save(out)] == ["0.png", "0-2.png", "0-3.png"]  # deterministic: saved again in place


def test_a_directory_in_the_way_is_a_clear_error(wiro: Wiro, tmp_path: Path) -> None:
    task = wiro.run("wiro/named-output", name="result.txt", contenttype="text/plain", text="hi")
    (tmp_path / "result.txt").mkdir()
    with pytest.raises(wj.WiroError, match="a directory of that name is in the way"):
        task.save(tmp_path)
    a_file = tmp_path / "plain-file"
    a_file.write_text("x")
    with pytest.raises(wj.WiroError, match="it is a file, not a directory"):
        task.save(a_file)


def test_a_long_llm_stream_is_held_once(wiro: Wiro) -> None:
    """900 cumulative snapshots of a 90 kB answer: the text is kept once, the event log keeps deltas."""
    import gc
    import tracemalloc

    chars = 90_000
    tracemalloc.start()
    try:
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        task = wiro.run("wiro/stream-llm", prompt="long", chars=chars, frames=900)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(task.text) == chars
    deltas = "".join(e.answer_delta for e in task.event_log)
    assert deltas == task.text  # the log still rebuilds the exact text
    assert held < 5 * 1024**2 + 4 * chars, f"{held / 1024**2:.1f} MB held after run()"
