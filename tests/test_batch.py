"""Batches against the emulator over real sockets: order, bounded concurrency (measured at the server),
invalid items, kill -9 and resume, the account's limit, budgets, DataFrames, re-runs that reuse, Stop,
compare, the magic's parsing and Dask. Figures (max in flight, wall time against the ideal) are printed
with `-s`."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import elements, make_client

import wiro_jupyter as wj
from wiro_jupyter import Wiro
from wiro_jupyter._journal import Journal

SLOW = "wiro/slow"


def prompts(n: int, tag: str = "") -> list[str]:
    """Prompts no other test sends (the emulator's task list is shared by the session)."""
    tag = tag or uuid.uuid4().hex[:8]
    return [f"{tag}-{i}" for i in range(n)]


def runs_by_prompt(emu: Any, sent: list[str]) -> Counter[str]:
    """How many tasks the emulator started for each of `sent` (by the echoed prompt)."""
    wanted = set(sent)
    return Counter(t.parameters.get("prompt") for t in list(emu.tasks.values()) if t.parameters.get("prompt") in wanted)


def wait_until(run: Any, predicate: Any, timeout: float = 30.0) -> None:
    """Block until `predicate(run.progress())` holds, woken by the run's own listener (no polling sleeps)."""
    reached = threading.Event()

    def check(_item: Any) -> None:
        if predicate(run.progress()):
            reached.set()

    run.add_listener(check)
    try:
        check(None)
        assert reached.wait(timeout), f"never reached: {run!r}"
    finally:
        run.remove_listener(check)


# -- order, concurrency, invalid items -----------------------------------------------------------------
def test_order_is_kept_and_in_flight_never_exceeds_concurrency(wiro: Wiro, emu: Any) -> None:
    sent = prompts(9)
    emu.stats.reset()
    started = time.monotonic()
    result = wiro.batch(SLOW, sent, concurrency=3, seconds=1, progress=False)
    wall = time.monotonic() - started
    assert [item.input for item in result.items] == sent
    assert [item.index for item in result.items] == list(range(9))
    assert [item.task.parameters["prompt"] for item in result.items] == sent
    assert [item.status for item in result.items] == ["ok"] * 9 and not result.failed
    assert emu.stats.max_active == 3, emu.stats.max_active  # measured at the server: the limit, and reached
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))
    ideal = 3 * 1.0  # three waves of one-second tasks
    print(f"\n9 x 1 s at concurrency 3: max in flight {emu.stats.max_active}, wall {wall:.2f} s (ideal {ideal:.0f} s)")
    assert wall < ideal * 2, wall  # one task at a time would take 9 s
    assert result.spent == pytest.approx(sum(i.task.cost for i in result.items)) and result.spent > 0


def test_an_invalid_item_fails_alone_and_is_never_sent(wiro: Wiro, emu: Any) -> None:
    good = prompts(2)
    inputs: list[Any] = [good[0], {"prompt": "x", "seconds": 0}, {"prompt": "y", "sekonds": 1}, 42, good[1]]
    before = emu.stats.count("Run")
    result = wiro.batch(SLOW, inputs, concurrency=4, seconds=1, progress=False)
    assert emu.stats.count("Run") - before == 2  # counted at the emulator: only the two valid items
    assert [i.status for i in result.items] == ["ok", "failed", "failed", "failed", "ok"]
    assert "'seconds' must be between 0.1 and 600" in (result[1].error or "")
    assert "'sekonds'" in (result[2].error or "") and "Did you mean 'seconds'" in (result[2].error or "")
    assert "string or a dict" in (result[3].error or "")
    assert all(result[i].task is None for i in (1, 2, 3))
    assert len(result.failed) == 3 and len(result.ok) == 2


def test_a_single_string_is_refused_before_anything(wiro: Wiro, emu: Any) -> None:
    before = emu.stats.count("Run")
    with pytest.raises(wj.ValidationError, match="list of inputs"):
        wiro.batch(SLOW, "one prompt", progress=False)
    with pytest.raises(wj.ValidationError, match="concurrency"):
        wiro.batch(SLOW, ["a"], concurrency=0, progress=False)
    assert emu.stats.count("Run") == before


# -- crashes and re-runs ---------------------------------------------------------------------------------
KILLED = """
import json, sys, threading
from wiro_jupyter import Wiro
url, socket, key, name, prompts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
wiro = Wiro(api_key=key, api_url=url, socket_url=socket, poll_interval=0.05)
run = wiro.start_batch("wiro/slow", prompts, concurrency=3, seconds=2, name=name)
busy = threading.Event()
run.add_listener(lambda item: busy.set() if run.progress().running >= 3 else None)
busy.wait(30)
print("RUNNING", flush=True)
run.wait()
print("FINISHED", flush=True)
"""


def test_kill_9_mid_batch_then_the_same_call_finishes_every_item_once(wiro: Wiro, emu: Any) -> None:
    sent = prompts(8)
    name = f"killed-{uuid.uuid4().hex[:6]}"
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED, emu.api_url, emu.socket_url, emu.api_key, name, json.dumps(sent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),  # the same WIRO_HOME: the same journal
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(child.stdout.readline() if child.stdout else ""), daemon=True).start()
    try:
        line = lines.get(timeout=40)  # the child says so once three tasks run
        assert line.strip() == "RUNNING", (line, child.poll())
        child.kill()  # SIGKILL: no clean-up, no last journal write
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -9
    started_by_child = sum(runs_by_prompt(emu, sent).values())
    assert 3 <= started_by_child < 8
    rows = Journal().batch_rows(name, emu.api_url)
    assert rows and {r.item for r in rows} <= set(range(8))

    before = emu.stats.count("Run")
    result = wiro.batch(SLOW, sent, concurrency=3, seconds=2, name=name, progress=False)
    assert [i.status for i in result.items] == ["ok"] * 8, result.text()
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))  # every input ran exactly once
    assert emu.stats.count("Run") - before == 8 - started_by_child  # only what never started was sent
    print(f"\nkill -9 after {started_by_child} started; the second call sent {8 - started_by_child}")


INTERRUPTED = """
import json, sys
from wiro_jupyter import Wiro
url, socket, key, name, prompts = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
wiro = Wiro(api_key=key, api_url=url, socket_url=socket, poll_interval=0.05)
run = wiro.start_batch("wiro/slow", prompts, concurrency=3, seconds=30, name=name)
said = []
def say(item):  # on the loop's thread, while the main thread waits below
    if run.progress().running >= 3 and not said:
        said.append(print("RUNNING", flush=True))
run.add_listener(say)
run.wait(progress=True)
"""


def test_ctrl_c_while_waiting_stops_the_batch_on_the_server(emu: Any) -> None:
    sent = prompts(6)
    child = subprocess.Popen(
        [sys.executable, "-c", INTERRUPTED, emu.api_url, emu.socket_url, emu.api_key, f"ctrl-c-{sent[0]}", json.dumps(sent)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "RUNNING"
        child.send_signal(signal.SIGINT)  # what Ctrl-C (or interrupting a kernel) does
        _, err = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            child.kill()
    assert "KeyboardInterrupt" in err and "Interrupted: batch ctrl-c-" in err
    started = [t for t in list(emu.tasks.values()) if t.parameters.get("prompt") in set(sent)]
    assert len(started) == 3 and all(t.status == "task_cancel" for t in started)  # stopped, not left running unseen


def test_a_run_that_reached_the_server_unanswered_is_reconciled_not_resent(wiro: Wiro, emu: Any) -> None:
    """What a process killed between sending a Run and journaling its answer leaves: a `submitting` row
    whose task exists. The next call finds the task with Task/List and pays nothing more for it."""
    sent = prompts(3)
    name = f"unsure-{uuid.uuid4().hex[:6]}"
    lost = make_client(emu, journal=False).run(SLOW, prompt=sent[1], seconds=1, wait=False)  # the server has it
    journal = Journal()
    journal.begin(SLOW, {"prompt": sent[1], "seconds": 1}, emu.api_url, batch=name, item=1)
    before = emu.stats.count("Run")
    listed = emu.stats.count("Task/List")
    result = wiro.batch(SLOW, sent, concurrency=3, seconds=1, name=name, progress=False)
    assert [i.status for i in result.items] == ["ok"] * 3
    assert result[1].task.id == lost.id  # adopted, not sent again
    assert emu.stats.count("Run") - before == 2
    assert emu.stats.count("Task/List") > listed
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))
    row = [r for r in journal.batch_rows(name, emu.api_url) if r.item == 1][-1]
    assert row.task_id == lost.id and row.status == "task_postprocess_end"


def test_a_run_lost_in_a_proxy_is_checked_then_sent_once_more(wiro: Wiro, emu: Any) -> None:
    sent = prompts(3)
    emu.faults.http_error("Run", 502, times=1)  # a proxy's answer: the request never reached the API
    before = emu.stats.count("Run")
    result = wiro.batch(SLOW, sent, concurrency=1, seconds=1, progress=False)
    assert [i.status for i in result.items] == ["ok"] * 3
    assert emu.stats.count("Run") - before == 4  # the lost one, checked with Task/List, then sent again
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))
    statuses = [r.status for r in Journal().batch_rows(result.name, emu.api_url)]
    assert statuses.count("not_submitted") == 1  # what the check concluded


def test_failed_items_are_sent_again_only_when_asked(wiro: Wiro, emu: Any) -> None:
    sent = prompts(2)
    first = wiro.batch("wiro/always-fails", sent, progress=False)
    assert [i.status for i in first.items] == ["failed", "failed"]
    assert all("failed" in (i.error or "") for i in first.items)
    before = emu.stats.count("Run")
    again = wiro.batch("wiro/always-fails", sent, progress=False)
    assert emu.stats.count("Run") == before  # collected, not paid again
    assert [i.task.id for i in again.items] == [i.task.id for i in first.items]
    retried = wiro.batch("wiro/always-fails", sent, retry_failed=True, progress=False)
    assert emu.stats.count("Run") - before == 2
    assert {i.task.id for i in retried.items}.isdisjoint(i.task.id for i in first.items)


# -- the account's limit and the budget -------------------------------------------------------------------
def test_the_accounts_limit_slows_a_batch_without_failing_items(emu: Any) -> None:
    sent = prompts(6)
    client = make_client(emu, max_retries=0)  # every refusal reaches the batch (the transport retries none)
    try:
        emu.faults.concurrency_limit(2)
        emu.stats.reset()
        started = time.monotonic()
        run = client.start_batch(SLOW, sent, concurrency=5, seconds=1)
        result = run.wait(60)
        wall = time.monotonic() - started
    finally:
        emu.faults.concurrency_limit(None)
        client.close()
    assert [i.status for i in result.items] == ["ok"] * 6, result.text()
    assert emu.stats.max_active == 2
    assert run.limit == 2  # the batch lowered its own concurrency to what the server allows
    runs = emu.stats.count("Run")
    assert 6 < runs <= 6 + 4, runs  # refusals only while it learned the limit (first wave), none after
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))
    print(f"\nlimit 2, asked 5: {runs - 6} refused Runs, max in flight {emu.stats.max_active}, wall {wall:.2f} s (ideal 3 s)")


def test_a_budget_stops_before_it_would_be_exceeded(wiro: Wiro, emu: Any) -> None:
    # wiro/text-to-image costs $0.02 per output; all six could start at once without the reservations.
    before = emu.stats.count("Run")
    result = wiro.batch("wiro/text-to-image", prompts(6), concurrency=8, max_cost=0.05, progress=False)
    assert [i.status for i in result.items] == ["ok", "ok", "skipped", "skipped", "skipped", "skipped"]
    assert emu.stats.count("Run") - before == 2
    assert result.spent == pytest.approx(0.04) and result.spent <= 0.05
    assert "max_cost=$0.05" in (result[2].error or "") and result[2].task is None
    # Two outputs per run: $0.04 each, so only one fits.
    two = wiro.batch("wiro/text-to-image", prompts(3), max_cost=0.05, samples=2, progress=False)
    assert [i.status for i in two.items] == ["ok", "skipped", "skipped"] and two.spent == pytest.approx(0.04)
    with pytest.raises(wj.ValidationError):
        wiro.batch("wiro/text-to-image", ["a"], max_cost=-1, progress=False)


# -- tables -----------------------------------------------------------------------------------------------
def test_a_dataframe_in_a_dataframe_out(wiro: Wiro) -> None:
    pd = pytest.importorskip("pandas")
    tag = uuid.uuid4().hex[:6]
    frame = pd.DataFrame(
        {"prompt": [f"{tag} fox", f"{tag} owl", f"{tag} cat"], "seed": [1, 2, None], "style": ["photo", "cubist", "photo"]},
        index=["a", "b", "c"],
    )
    result = wiro.batch("wiro/text-to-image", frame, width=256, height=256, progress=False)
    out = result.to_pandas()
    assert list(out.index) == ["a", "b", "c"]
    assert list(out.columns) == ["prompt", "seed", "style", "status", "task_id", "cost", "elapsed", "outputs", "text", "error"]
    assert list(out["prompt"]) == list(frame["prompt"])
    assert list(out["status"]) == ["ok", "failed", "ok"]  # 'cubist' is not one of the styles
    assert "'style' must be one of" in out.loc["b", "error"]
    assert out.loc["a", "task_id"] == result[0].task.id and pd.isna(out.loc["b", "task_id"])
    assert out.loc["a", "outputs"] == [o.url for o in result[0].task.files] and out.loc["a", "outputs"][0].startswith("http")
    assert out["cost"].dtype == "float64" and out.loc["a", "cost"] == pytest.approx(0.02)
    assert result[0].task.parameters["seed"] == 1 and "seed" not in result[2].task.parameters  # NaN is "not given"
    # A column named like a result column keeps its data under another name.
    speech = wiro.batch("wiro/text-to-speech", pd.DataFrame({"text": [f"{tag} hello"]}), progress=False).to_pandas()
    assert list(speech.columns[:2]) == ["input_text", "status"] and speech.loc[0, "input_text"] == f"{tag} hello"


def test_save_writes_outputs_and_a_manifest(wiro: Wiro, tmp_path: Path) -> None:
    result = wiro.batch("wiro/text-to-image", [*prompts(2), {"prompt": "x", "width": 1}], width=256, height=256, progress=False)
    paths = result.save(tmp_path / "out")
    assert sorted(p.name for p in paths) == ["0-0.png", "1-0.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    manifest = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert [i["status"] for i in manifest["items"]] == ["ok", "ok", "failed"]
    assert manifest["items"][0]["files"] == ["0-0.png"] and manifest["items"][2]["files"] == []


def test_the_display_escapes_inputs_and_embeds_thumbnails(wiro: Wiro) -> None:
    hostile = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    result = wiro.batch("wiro/text-to-image", [hostile], width=256, height=256, progress=False)
    bundle = result._repr_mimebundle_()
    html = bundle["text/html"]
    tags, handlers = elements(html)
    assert "script" not in tags and handlers == []
    assert "&lt;script&gt;" in html  # the input shows as text
    sources = re.findall(r'<img [^>]*src="([^"]*)"', html)
    assert len(sources) == 1 and sources[0].startswith("data:image/")  # the thumbnail, fetched by the kernel
    assert "1 ok" in bundle["text/plain"]


# -- reuse ------------------------------------------------------------------------------------------------
def test_reuse_returns_the_journaled_task_and_costs_nothing(wiro: Wiro, emu: Any, capsys: Any, monkeypatch: Any) -> None:
    prompt = f"reuse {uuid.uuid4().hex[:6]}"
    first = wiro.run("wiro/text-to-image", prompt=prompt, width=256, reuse=True)  # nothing to reuse yet: it runs
    before = emu.stats.count("Run")
    again = wiro.run("wiro/text-to-image", prompt=prompt, width=256, reuse=True)
    assert emu.stats.count("Run") == before  # no new Run at the emulator
    assert again.id == first.id and again.ok and [o.url for o in again.files] == [o.url for o in first.files]
    assert f"reused task {first.id} from" in capsys.readouterr().err
    assert [e.kind for e in again.event_log] == ["reused"] and "reused task" in again.event_log[0].message
    wiro.run("wiro/text-to-image", prompt=prompt, width=320, reuse=True)  # other parameters: a new run
    latest = wiro.run("wiro/text-to-image", prompt=prompt, width=256)  # off by default: a new run
    assert latest.id != first.id and emu.stats.count("Run") == before + 2
    monkeypatch.setenv("WIRO_REUSE", "1")  # the per-process default (`%wiro config reuse=on`)
    assert wiro.run("wiro/text-to-image", prompt=prompt, width=256).id == latest.id  # the newest identical one
    assert emu.stats.count("Run") == before + 2
    assert wiro.run("wiro/text-to-image", prompt=prompt, width=256, reuse=False).ok
    assert emu.stats.count("Run") == before + 3


def test_reuse_compares_input_files_by_content(wiro: Wiro, emu: Any, tmp_path: Path) -> None:
    picture = wiro.run("wiro/text-to-image", prompt=f"file {uuid.uuid4().hex[:6]}", width=256, height=256).images[0]
    path = tmp_path / "in.png"
    picture.save(path)
    first = wiro.run("wiro/image-to-image", inputImage=path, reuse=True)
    before = emu.stats.count("Run")
    assert wiro.run("wiro/image-to-image", inputImage=path, reuse=True).id == first.id
    picture.rotate(90).save(path)  # same name, other bytes
    assert wiro.run("wiro/image-to-image", inputImage=path, reuse=True).id != first.id
    assert emu.stats.count("Run") == before + 1


# -- Stop --------------------------------------------------------------------------------------------------
def test_stop_cancels_what_runs_and_sends_nothing_more_then_the_same_call_resumes(wiro: Wiro, emu: Any) -> None:
    sent = prompts(5)
    name = f"stopped-{uuid.uuid4().hex[:6]}"
    run = wiro.start_batch(SLOW, sent, concurrency=2, seconds=30, name=name)
    wait_until(run, lambda p: p.running == 2)
    before = emu.stats.count("Run")
    run.stop()
    result = run.wait(30)
    assert emu.stats.count("Run") == before
    assert [i.status for i in result.items] == ["cancelled", "cancelled", "skipped", "skipped", "skipped"]
    assert all(emu.tasks[i.task.id].status == "task_cancel" for i in result.items[:2])  # stopped on the server
    assert run.progress().state == "stopped"
    # The same batch again: the stopped and the unsent items are sent.
    resumed = wiro.start_batch(SLOW, sent, concurrency=5, seconds=1, name=name)
    done = resumed.wait(30)
    assert [i.status for i in done.items] == ["ok"] * 5
    assert runs_by_prompt(emu, sent) == Counter({p: (2 if i < 2 else 1) for i, p in enumerate(sent)})


def test_async_batch_and_cancelling_its_wait_stops_it(emu: Any) -> None:
    sent = prompts(4)

    async def main() -> None:
        async with wj.AsyncWiro(
            api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url, poll_interval=0.05
        ) as client:
            result = await client.batch(SLOW, sent[:2], seconds=1, progress=False)
            assert [i.status for i in result.items] == ["ok", "ok"] and isinstance(result[0].task, wj.AsyncTask)
            run = await client.start_batch(SLOW, sent[2:], concurrency=2, seconds=30)
            both = asyncio.Event()
            run.add_listener(lambda _item: both.set() if run.progress().running == 2 else None)
            await asyncio.wait_for(both.wait(), 30)
            waiter = asyncio.ensure_future(run.wait_async())
            await asyncio.sleep(0)  # one turn of the loop (not a timed wait): the waiter is now inside wait_async
            waiter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiter
            assert run.done and [i.status for i in run.items] == ["cancelled", "cancelled"]

    asyncio.run(main())
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))


# -- compare -------------------------------------------------------------------------------------------------
def test_compare_runs_the_same_input_on_each_model(wiro: Wiro, emu: Any) -> None:
    tag = uuid.uuid4().hex[:6]
    emu.stats.reset()
    comparison = wiro.compare(["wiro/text-to-image", "wiro/chat-llm"], [f"{tag} a", f"{tag} b"], concurrency=2, progress=False)
    assert comparison.models == ["wiro/text-to-image", "wiro/chat-llm"]
    assert all(i.status == "ok" for r in comparison.results.values() for i in r.items)
    assert emu.stats.max_active <= 2  # one limit for both models
    html = comparison._repr_mimebundle_()["text/html"]
    assert html.count("<tr>") == 3 and 'src="data:image/' in html and "wiro/chat-llm" in html
    frame = comparison.to_pandas()
    assert list(frame["model"]) == ["wiro/text-to-image"] * 2 + ["wiro/chat-llm"] * 2
    single = wiro.compare(["wiro/text-to-image", "wiro/kitchen-sink"], prompt=f"{tag} one", progress=False)
    assert [r.items[0].status for r in single.results.values()] == ["ok", "ok"]


# -- the journal -------------------------------------------------------------------------------------------
def test_an_older_journal_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE tasks (rowid INTEGER PRIMARY KEY AUTOINCREMENT, task_id TEXT, token TEXT, model TEXT NOT NULL,"
            " parameters TEXT NOT NULL, api_url TEXT NOT NULL, status TEXT NOT NULL, created REAL NOT NULL,"
            " updated REAL NOT NULL, outputs TEXT NOT NULL DEFAULT '[]', saved TEXT NOT NULL DEFAULT '[]', error TEXT);"
            "INSERT INTO tasks (task_id, token, model, parameters, api_url, status, created, updated)"
            " VALUES ('7', 'tok', 'wiro/x', '{\"prompt\": \"old\"}', 'http://h/v1', 'task_postprocess_end', 1, 2);"
        )
    journal = Journal(path)
    old = journal.find("7")
    assert old is not None and old.parameters == {"prompt": "old"} and old.batch is None and old.item is None
    rowid = journal.begin("wiro/x", {"prompt": "new"}, "http://h/v1", batch="b", item=3, fingerprint="f" * 64)
    journal.submitted(rowid, "8", "tok8")
    new = journal.batch_rows("b", "http://h/v1")
    assert [(e.task_id, e.item, e.fingerprint) for e in new] == [("8", 3, "f" * 64)]
    with sqlite3.connect(path) as db:
        columns = [row[1] for row in db.execute("PRAGMA table_info(tasks)")]
    assert columns[-3:] == ["batch", "item", "fingerprint"]


# -- the magic -------------------------------------------------------------------------------------------------
def test_the_magic_parses_its_line_and_body() -> None:
    from IPython.core.error import UsageError

    from wiro_jupyter.magics._batch import inputs, parse

    args, params = parse('wiro/slow seconds=1 -c 2 prompt="a red fox" --max-cost 0.5 --name "my batch" -o out --retry-failed')
    assert (args.model, args.concurrency, args.max_cost, args.name, args.output, args.retry_failed) == (
        "wiro/slow",
        2,
        0.5,
        "my batch",
        "out",
        True,
    )
    assert params == {"seconds": "1", "prompt": "a red fox"}
    assert inputs('a fox\n\n  {"prompt": "an owl", "seconds": 2}\n') == ["a fox", {"prompt": "an owl", "seconds": 2}]
    for line in ("wiro/slow -c 0", "wiro/slow -c two", "wiro/slow stray", 'wiro/slow prompt="open'):
        with pytest.raises(UsageError):
            parse(line)
    for body in ("", "  \n\n", "{not json", 'a prompt\n{"prompt": 1} and more'):
        with pytest.raises(UsageError):
            inputs(body)


def test_the_magic_runs_a_batch_into_a_variable(emu_env: Any, capsys: Any) -> None:
    from wiro_jupyter.magics._batch import batch_cell

    class Shell:
        def __init__(self) -> None:
            self.user_ns: dict[str, Any] = {}

    shell = Shell()
    tag = uuid.uuid4().hex[:6]
    value = batch_cell(shell, "wiro/slow seconds=1 -c 2 -o out", f'{tag} one\n{{"prompt": "{tag} two"}}\n\n{tag} three\n')
    assert shell.user_ns["out"] is value
    assert [i.status for i in value.items] == ["ok"] * 3
    assert [i.task.parameters["prompt"] for i in value.items] == [f"{tag} one", f"{tag} two", f"{tag} three"]
    assert "wiro/slow" in capsys.readouterr().err  # the text progress bar, on stderr outside a notebook


# -- Dask ------------------------------------------------------------------------------------------------------
@pytest.mark.timeout(180)
def test_dask_partitions_share_one_cluster_wide_limit(wiro: Wiro, emu: Any) -> None:
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("distributed")
    sent = prompts(8)
    frame = dd.from_pandas(pd.DataFrame({"prompt": sent}), npartitions=4)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=False, dashboard_address=":0")
    with cluster, distributed.Client(cluster):
        before = emu.stats.count("Run")
        lazy = wiro.batch(SLOW, frame, concurrency=2, seconds=1)
        assert emu.stats.count("Run") == before  # lazy: nothing sent until computed
        assert emu.api_key not in repr(lazy.dask)  # the credentials never print
        emu.stats.reset()
        started = time.monotonic()
        out = lazy.compute()
        wall = time.monotonic() - started
    assert list(out.columns) == ["prompt", "status", "task_id", "cost", "elapsed", "outputs", "text", "error"]
    assert list(out["prompt"]) == sent and list(out["status"]) == ["ok"] * 8
    assert emu.stats.max_active == 2, emu.stats.max_active  # four partitions on four threads, two in flight in all
    assert runs_by_prompt(emu, sent) == Counter(dict.fromkeys(sent, 1))
    print(f"\nDask, 4 partitions x 2 rows, limit 2: max in flight {emu.stats.max_active}, wall {wall:.2f} s (ideal 4 s)")


def test_dask_without_a_cluster_shares_an_in_process_limit(wiro: Wiro, emu: Any) -> None:
    pd = pytest.importorskip("pandas")
    dd = pytest.importorskip("dask.dataframe")
    import dask

    sent = prompts(6)
    frame = dd.from_pandas(pd.DataFrame({"prompt": sent}), npartitions=3)
    emu.stats.reset()
    with dask.config.set(scheduler="threads", num_workers=3):
        out = wiro.batch(SLOW, frame, concurrency=2, seconds=1).compute()
    assert list(out["status"]) == ["ok"] * 6
    assert emu.stats.max_active == 2
