"""The Dify-compatible ("Wbot") chat client against the Dify emulator on a real socket.

The emulator (wiro_jupyter/emulator/dify/) shares no code with the client, so
these tests check the client against the wire format, not against itself. A few
respx tests cover what the emulator does not produce (older servers, proxies,
odd URLs). Waits are bounded events, never sleeps.
"""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx

from wiro_jupyter._exceptions import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WiroConnectionError,
    WiroError,
)
from wiro_jupyter.chat._messages import ChatEvent, ChatMessage
from wiro_jupyter.dify._client import AsyncWbotChat
from wiro_jupyter.dify._sync import WbotChat
from wiro_jupyter.dify._turn import _Turn
from wiro_jupyter.emulator import Emulator
from wiro_jupyter.emulator.dify._world import DifyWorld


def app_key(emu: Emulator, app: str) -> str:
    return {"chat": emu.dify_chat_key, "agent": emu.dify_agent_key, "flow": emu.dify_chatflow_key}[app]

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def dify(emulator: Emulator) -> Iterator[Emulator]:
    world = emulator.dify
    emulator.faults.reset()
    world.messages_order = "asc"
    world.stopped = set()
    yield emulator
    emulator.faults.reset()
    world.messages_order = "asc"
    world.stopped = set()


@pytest.fixture
def world(dify: Emulator) -> DifyWorld:
    return dify.dify


@pytest.fixture
def make(dify: Emulator) -> Any:
    """A factory of sync chats on one emulator app, each with its own end user."""

    def make(app: str = "chat", **kw: Any) -> WbotChat:
        kw.setdefault("api_key", app_key(dify, app))
        kw.setdefault("base_url", dify.dify_url)
        kw.setdefault("user", "test-" + uuid.uuid4().hex[:10])
        chat = WbotChat(**kw)
        chat.aio.http.retry_base = 0.01
        return chat

    return make


def amake(dify: Emulator, app: str = "chat", **kw: Any) -> AsyncWbotChat:
    chat = AsyncWbotChat(api_key=app_key(dify, app), base_url=dify.dify_url, user="test-" + uuid.uuid4().hex[:10], **kw)
    chat.http.retry_base = 0.01
    return chat


def kinds(events: list[ChatEvent]) -> list[str]:
    return [e.kind for e in events]


# --------------------------------------------------------------------------- streaming: chat app


def test_stream_yields_typed_events_and_builds_the_message(make: Any) -> None:
    chat = make()
    stream = chat.stream("Hello *world*")
    assert iter(stream) is stream  # a real iterator, not a list
    first = next(stream)
    assert first.kind == "text" and first.message is not None and first.message.usage == {}  # before the end
    events = [first, *stream]
    assert kinds(events)[-1] == "end" and set(kinds(events)) == {"text", "end"}  # the ping was skipped
    message = chat.last
    assert message is not None
    assert "".join(e.text for e in events if e.kind == "text") == message.answer
    assert message.answer.startswith("**Echo:** Hello *world*\n\n")  # the query verbatim
    assert events[-2].answer == message.answer  # the running full text
    assert message.conversation_id and message.message_id and message.task_id
    assert chat.conversation_id == message.conversation_id
    assert message.usage["total_tokens"] > 0 and isinstance(message.usage["total_price"], str)
    assert message.retriever_resources[0]["dataset_name"] == "Emulator handbook"
    assert message.query == "Hello *world*" and message.backend == "wbot" and message.latency_s > 0
    assert isinstance(message.created_at, float)


def test_conversation_continues_and_new_starts_over(make: Any) -> None:
    chat = make()
    first = chat.send("one")
    second = chat.send("two")
    assert second.conversation_id == first.conversation_id
    assert 'turn 2 of this conversation; your previous message was: "one"' in second.answer
    assert chat.new() is chat and chat.conversation_id is None and chat.last is None
    third = chat.send("three")
    assert third.conversation_id != first.conversation_id and "first turn of a new conversation" in third.answer
    chat.reset()
    assert chat.conversation_id is None
    # Another chat object can pick a conversation up by id.
    again = make(user=chat.user, conversation_id=first.conversation_id).send("four")
    assert "turn 3" in again.answer and '"two"' in again.answer


def test_async_api_send_stream_and_continuity(dify: Emulator) -> None:
    async def main() -> None:
        async with amake(dify, inputs={"name": "Ada"}) as chat:
            seen: list[ChatEvent] = []

            async def on_event(event: ChatEvent) -> None:  # async callbacks are awaited
                seen.append(event)

            first = await chat.send("hi", on_event=on_event)
            assert "Hello, Ada!" in first.answer and kinds(seen)[-1] == "end"
            texts = [e.text async for e in chat.stream("again") if e.kind == "text"]
            assert chat.last is not None and "".join(texts) == chat.last.answer
            assert chat.last.conversation_id == first.conversation_id and "turn 2" in chat.last.answer

    asyncio.run(main())


def test_message_replace_replaces_the_whole_answer(make: Any) -> None:
    events: list[ChatEvent] = []
    message = make().send("please moderate this", on_event=events.append)
    assert kinds(events)[-2:] == ["replace", "end"] and "text" in kinds(events)
    assert message.answer == events[-2].text and message.answer.startswith("Sorry, I can't talk about that.")
    assert message.metadata["replaced"] == "output_moderation"


def test_in_stream_error_raises_after_the_partial_text(make: Any) -> None:
    chat = make()
    events: list[ChatEvent] = []
    with pytest.raises(ServerError) as caught:
        chat.send("please fail mid-stream now", on_event=events.append)
    err = caught.value
    assert err.code == "completion_request_error" and err.status_code == 400
    assert "Model invoke error" in str(err)
    assert kinds(events) == ["text", "text", "text", "error"]
    assert err.partial == "".join(e.text for e in events[:3]) == "**Echo:** please fail "  # type: ignore[attr-defined]
    assert err.partial_message.message_id  # type: ignore[attr-defined]
    assert chat.conversation_id  # the server created the conversation: the next send continues it
    assert "turn 2" in chat.send("ok").answer


def test_message_file_quirk_text_deltas_and_file(make: Any, dify: Emulator) -> None:
    events: list[ChatEvent] = []
    message = make().send("the quirk", on_event=events.append)
    assert events[0].kind == "file" and events[0].raw["event"] == "message_file"
    texts = [e for e in events if e.kind == "text"]
    assert texts and all(e.raw["event"] == "message_file" for e in texts)
    assert message.answer.startswith("**Echo:** the quirk")
    assert len(message.files) == 1  # the message_end copy was merged, not duplicated
    image = message.files[0]
    assert image.type == "image" and image.belongs_to == "assistant"
    assert image.url.startswith(dify.dify_url + "/files/tools/")  # relative URL resolved against base minus /v1
    assert httpx.get(image.url, timeout=10).content.startswith(b"\x89PNG")


def test_tts_audio_after_message_end_is_collected(make: Any) -> None:
    events: list[ChatEvent] = []
    message = make().send("speak to me", on_event=events.append)
    assert kinds(events).index("end") < kinds(events).index("tts")  # read past message_end
    assert message.audio is not None and message.audio.startswith(b"ID3") and len(message.audio) > 200


# --------------------------------------------------------------------------- agent and chatflow apps


def test_agent_thoughts_upserted_tool_image_and_empty_delta(make: Any, dify: Emulator) -> None:
    events: list[ChatEvent] = []
    message = make("agent").send("a red cat", on_event=events.append)
    assert kinds(events).count("agent_thought") == 5  # 3 snapshots of step 1, 2 of step 2
    assert all(e.text for e in events if e.kind == "text")  # the empty agent_message made no event
    assert [t.position for t in message.agent_thoughts] == [1, 2]
    step = message.agent_thoughts[0]
    assert step.thought == "I will draw it with the draw_image tool."  # kept when a later snapshot was blank
    assert step.tool == "draw_image" and step.tools == ["draw_image"]
    assert step.tool_input == {"draw_image": {"prompt": "a red cat"}}  # parsed JSON
    assert step.observation["draw_image"].startswith("image has been created")
    assert message.agent_thoughts[1].thought == message.answer == "Here is your picture of: a red cat."
    assert len(message.files) == 1 and step.files == [message.files[0].id]
    url = message.files[0].url
    assert url.startswith(dify.dify_url + "/files/tools/") and "sign=" in url
    assert httpx.get(url, timeout=10).headers["content-type"] == "image/png"
    shown = message._repr_mimebundle_()["text/html"]  # the tool call, and the image fetched by the kernel
    assert "<strong>draw_image</strong>" in shown and '<img src="data:image/png;base64,' in shown and url not in shown


def test_chatflow_reads_past_message_end(make: Any) -> None:
    events: list[ChatEvent] = []
    message = make("flow").send("think, iterate and loop", on_event=events.append)
    labels = [e.text for e in events if e.kind == "progress"]
    assert labels[0] == "workflow started" and labels[-1] == "workflow succeeded"
    assert kinds(events)[-2:] == ["end", "progress"]  # workflow_finished came after message_end
    assert {"Iteration started", "Iteration next 2", "Loop completed", "LLM succeeded"} <= set(labels)
    assert message.thinking == "The user wants an echo. I will repeat the message."
    assert message.answer == "Flow answer: think, iterate and loop"
    assert message.metadata["workflow_status"] == "succeeded" and message.metadata["workflow_run_id"]
    shown = message._repr_mimebundle_()["text/html"]
    assert shown.startswith("<blockquote><p>The user wants an echo.")  # the thinking, quoted above the answer
    text_chunks = make("flow").send("text_chunk please")
    assert text_chunks.answer == "Flow answer: text_chunk please"


def test_chatflow_failure_fails_the_turn(make: Any) -> None:
    events: list[ChatEvent] = []
    with pytest.raises(ValidationError) as caught:
        make("flow").send("workflow fail", on_event=events.append)
    assert "Run failed" in str(caught.value) and caught.value.partial == ""  # type: ignore[attr-defined]
    assert "workflow failed" in [e.text for e in events] and kinds(events)[-1] == "error"


# --------------------------------------------------------------------------- stop


def test_stop_from_another_thread_ends_the_stream(make: Any, world: DifyWorld) -> None:
    chat = make()
    first_text = threading.Event()
    result: dict[str, Any] = {}

    def on_event(event: ChatEvent) -> None:
        if event.kind == "text":
            first_text.set()

    def worker() -> None:
        try:
            result["message"] = chat.send("count slow please", on_event=on_event)
        except BaseException as exc:  # pragma: no cover - reported below
            result["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    assert first_text.wait(10)
    assert chat.stop() is True
    thread.join(10)
    assert not thread.is_alive() and "error" not in result
    message: ChatMessage = result["message"]
    assert message.answer.startswith("Counting") and not message.answer.endswith("150.")
    assert message.metadata["stopped"] is True and message.usage  # ended by message_end
    assert message.task_id in world.stopped
    assert chat.stop() is False  # nothing in flight any more


def test_stop_inside_the_stream_loop_and_when_the_server_ignores_it(make: Any, world: DifyWorld) -> None:
    chat = make()
    chat.aio.stop_grace = 30  # the server honours stop: no waiting for the grace period
    started = time.monotonic()
    events = []
    for event in chat.stream("slow"):
        events.append(event)
        if len(events) == 2:
            assert chat.stop() is True
    assert events[-1].kind == "end" and time.monotonic() - started < 10
    # A server that ignores the stop request: the client cuts the stream after stop_grace.

    class Deaf(set):  # type: ignore[type-arg]
        def add(self, item: Any) -> None:
            pass

    world.stopped = Deaf()
    chat.aio.stop_grace = 0.2
    events = []
    for event in chat.stream("slow again"):
        events.append(event)
        if len(events) == 2:
            chat.stop()
    message = chat.last
    assert message is not None and message.metadata["stopped"] and not message.usage  # cut: no message_end
    assert message.answer.startswith("Counting") and not message.answer.endswith("150.")


def test_async_stop_from_another_task(dify: Emulator) -> None:
    async def main() -> None:
        chat = amake(dify)
        first_text = asyncio.Event()
        task = asyncio.create_task(chat.send("slow", on_event=lambda e: e.kind == "text" and first_text.set()))
        await asyncio.wait_for(first_text.wait(), 10)
        assert await chat.stop() is True
        message = await asyncio.wait_for(task, 10)
        assert message.metadata["stopped"] and not message.answer.endswith("150.")
        await chat.aclose()

    asyncio.run(main())


def test_ctrl_c_while_waiting_stops_the_answer_then_raises(make: Any, world: DifyWorld) -> None:
    chat = make()
    first_text = threading.Event()
    task_ids: list[str] = []

    def on_event(event: ChatEvent) -> None:
        if event.kind == "text" and not first_text.is_set():
            task_ids.append(str(event.message.task_id))  # type: ignore[union-attr]
            first_text.set()

    def interrupter() -> None:
        if first_text.wait(10):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    helper = threading.Thread(target=interrupter)
    helper.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            chat.send("slow", on_event=on_event)
    finally:
        helper.join(10)
    assert task_ids and task_ids[0] in world.stopped  # the server was asked to stop
    assert "turn 2" in chat.send("after the interrupt").answer  # the chat is usable, same conversation


def test_leaving_a_stream_early_stops_the_answer(make: Any, world: DifyWorld) -> None:
    chat = make()
    for event in chat.stream("slow"):
        task_id = event.message.task_id  # type: ignore[union-attr]
        break
    assert task_id in world.stopped


# --------------------------------------------------------------------------- conversations, messages, feedback


def test_conversations_list_rename_delete(make: Any) -> None:
    chat = make()
    first = chat.send("alpha").conversation_id
    second = chat.new().send("beta").conversation_id
    page = chat.conversations()
    assert [c["id"] for c in page] == [second, first] and page.has_more is False
    assert page[0]["name"] == "beta"  # named after the first query
    one = chat.conversations(limit=1)
    assert len(one) == 1 and one.has_more is True
    assert [c["id"] for c in chat.conversations(limit=1, last_id=one[0]["id"])] == [first]
    assert chat.rename(name="Greek letters")["name"] == "Greek letters"  # the current conversation
    assert chat.rename(first, auto_generate=True)["name"] == "About: alpha"
    with pytest.raises(ValidationError, match="needs a name"):
        chat.rename(first)
    assert make(user="someone-else").conversations() == []  # scoped by user
    chat.delete()  # the current one: the chat starts over
    assert chat.conversation_id is None and [c["id"] for c in chat.conversations()] == [first]
    with pytest.raises(NotFoundError, match="Conversation Not Exists"):
        chat.delete(second)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_history_pages_back_with_first_id(make: Any, world: DifyWorld, order: str) -> None:
    world.messages_order = order  # current Dify: pages oldest first; older versions newest first
    chat = make()
    for i in range(5):
        chat.send(f"q{i}")
    page = chat.messages(limit=2)
    assert [m.query for m in page] == ["q3", "q4"] and page.has_more  # normalised: oldest first
    older = chat.messages(limit=2, first_id=page[0].message_id)
    assert [m.query for m in older] == ["q1", "q2"]
    history = list(chat.history(page_size=2))
    assert [m.query for m in history] == ["q4", "q3", "q2", "q1", "q0"]
    assert history[0].answer.startswith("**Echo:** q4") and history[0].conversation_id == chat.conversation_id


def test_feedback_and_suggested_questions(make: Any) -> None:
    chat = make()
    message = chat.send("rate me")
    chat.feedback(rating="like")  # the last answer by default
    assert chat.messages()[-1].metadata["feedback"] == "like"
    chat.feedback(message.message_id, rating=None)
    assert chat.messages()[-1].metadata["feedback"] is None
    with pytest.raises(ValidationError):
        chat.feedback(rating="meh")
    with pytest.raises(NotFoundError, match="Message Not Exists"):
        chat.feedback(str(uuid.uuid4()))
    questions = chat.suggested()
    assert len(questions) == 3 and "rate me" in questions[0]
    agent = make("agent")
    agent.send("a dog")
    with pytest.raises(ValidationError, match="Suggested Questions Is Disabled"):
        agent.suggested()


def test_parameters_info_meta(make: Any) -> None:
    chat = make()
    params = chat.parameters()
    assert params["user_input_form"][0]["text-input"]["variable"] == "name"
    assert params["suggested_questions_after_answer"]["enabled"] is True
    assert params["system_parameters"]["image_file_size_limit"] == 10
    assert chat.info()["mode"] == "chat"
    assert chat.send("hi").model == "Echo (emulated chat app)"  # the app name, once info() was read
    assert make("agent").info()["mode"] == "agent-chat" and make("flow").info()["mode"] == "advanced-chat"
    assert make("agent").meta()["tool_icons"]["draw_image"]["content"] == "🎨"


# --------------------------------------------------------------------------- files


def test_upload_local_files_and_remote_urls(make: Any, tmp_path: Path) -> None:
    chat = make()
    notes = tmp_path / "notes.txt"
    notes.write_text("hello file")
    upload_id = chat.upload(PNG, filename="dot.png")
    assert uuid.UUID(upload_id)
    events: list[ChatEvent] = []
    message = chat.send(
        "look",
        files=[
            notes,
            PNG,
            "https://example.com/cat.png",
            {"type": "image", "transfer_method": "local_file", "upload_file_id": upload_id},
        ],
        on_event=events.append,
    )
    assert "document via local_file (notes.txt, 10 bytes)" in message.answer
    assert "image via local_file (upload.png, 40 bytes)" in message.answer
    assert "image via remote_url (https://example.com/cat.png)" in message.answer
    assert "image via local_file (dot.png, 40 bytes)" in message.answer
    user_files = [f for f in message.files if f.belongs_to == "user"]
    assert [(f.type, f.filename) for f in user_files] == [
        ("document", "notes.txt"),
        ("image", "upload.png"),
        ("image", "cat.png"),
        ("image", "dot.png"),
    ]
    shown = message._repr_mimebundle_()["text/html"]
    assert "<img" not in shown and "<a " not in shown and "<audio" not in shown  # the user's own files are not shown again
    with pytest.raises(ValidationError, match="File not found"):
        chat.send("x", files=[tmp_path / "missing.pdf"])
    with pytest.raises(ValidationError, match="unsupported_file_type") as caught:
        chat.upload(b"MZ...", filename="tool.exe")
    assert caught.value.status_code == 415
    with open(notes, "rb") as handle:
        assert uuid.UUID(chat.upload(handle))


# --------------------------------------------------------------------------- HTTP errors and retries


def test_bad_key_missing_key_and_the_key_never_shows(make: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "app-THIS-IS-A-SECRET-KEY-0123"
    chat = make(api_key=secret)
    with pytest.raises(AuthenticationError) as caught:
        chat.send("hi")
    err = caught.value
    assert err.status_code == 401 and err.code == "unauthorized" and "Access token is invalid" in str(err)
    assert "WBOT_API_KEY" in str(err)
    for text in (str(err), repr(err), repr(chat), repr(chat.aio), "".join(err._render_traceback_())):
        assert secret not in text
    assert "api_key=ap…23" in repr(chat) and "user=" in repr(chat) and chat.base_url in repr(chat)
    monkeypatch.delenv("WBOT_API_KEY", raising=False)
    with pytest.raises(AuthenticationError, match="WBOT_API_KEY"):
        WbotChat(base_url=chat.base_url).send("hi")


def test_request_validation_errors(make: Any) -> None:
    chat = make(conversation_id=str(uuid.uuid4()))
    with pytest.raises(NotFoundError, match="Conversation Not Exists") as caught:
        chat.send("hi")
    assert "chat.new()" in str(caught.value) and caught.value.status_code == 404
    with pytest.raises(ValidationError, match="not a valid uuid"):
        make(conversation_id="not-a-uuid").send("hi")
    nobody = make()
    nobody.user = ""
    with pytest.raises(ValidationError, match="Arg user must be provided") as bad:
        nobody.send("hi")
    assert bad.value.code == "invalid_param" and bad.value.status_code == 400
    with pytest.raises(ValidationError, match="query is required"):
        make("agent").send("")


def test_429_is_retried_but_500_is_not(make: Any, world: DifyWorld, dify: Emulator) -> None:
    # A 429 refused the turn outright: sent again. A 500 may have been answered (and paid): sent once.
    chat = make()
    world.faults.http_error("dify:chat-messages", 429, times=1)
    assert chat.send("after one retry").answer.startswith("**Echo:** after one retry")
    before = dify.stats.count("dify:chat-messages")
    world.faults.http_error("dify:chat-messages", 500, times=3)
    with pytest.raises(ServerError) as failed:
        chat.send("sent once")
    assert dify.stats.count("dify:chat-messages") == before + 1 and failed.value.maybe_submitted
    world.faults.reset()
    world.faults.http_error("dify:chat-messages", 429, times=3, retry_after=0)
    with pytest.raises(RateLimitError) as caught:
        chat.send("gives up after max_retries")
    assert caught.value.retry_after == 0 and caught.value.code == "too_many_requests"
    assert "maximum concurrent requests" in str(caught.value)


def test_502_html_page_from_a_proxy(make: Any, world: DifyWorld) -> None:
    chat = make()
    world.faults.http_error("dify:chat-messages", 502, times=1)
    with pytest.raises(ServerError) as caught:
        chat.send("hi")
    text = str(caught.value)
    assert caught.value.status_code == 502 and "HTML page" in text and "502 Bad Gateway" in text and "proxy" in text
    assert chat.send("now it works").answer  # bounded: the fault is used up


def test_connection_refused_and_dropped_stream(make: Any, world: DifyWorld) -> None:
    with pytest.raises(WiroConnectionError, match="Could not connect"):
        make(base_url="http://127.0.0.1:9/v1").send("hi")
    chat = make()
    world.faults.drop_stream()
    events: list[ChatEvent] = []
    with pytest.raises(WiroConnectionError, match="dropped while the answer was streaming") as caught:
        chat.send("hello there friend", on_event=events.append)
    assert caught.value.partial == "**Echo:** hello there "  # type: ignore[attr-defined]
    assert kinds(events)[-1] == "error"


def test_one_turn_at_a_time_per_chat(dify: Emulator) -> None:
    async def main() -> None:
        chat = amake(dify)
        first = chat.stream("slow")
        await first.__anext__()
        with pytest.raises(WiroError, match="still streaming"):
            await chat.send("second")
        await chat.stop()
        rest = [e async for e in first]
        assert rest[-1].kind == "end"
        await chat.aclose()

    asyncio.run(main())


# --------------------------------------------------------------------------- the emulator's wire format, read raw


def test_emulator_wire_framing_and_blocking_mode(dify: Emulator) -> None:
    url = dify.dify_url + "/chat-messages"
    body = {"inputs": {}, "query": "raw", "user": "raw-user", "response_mode": "streaming", "conversation_id": ""}
    headers = {"Authorization": f"Bearer {dify.dify_chat_key}"}
    with httpx.stream("POST", url, json=body, headers=headers, timeout=10) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        raw = resp.read().decode()
    frames = [f for f in raw.split("\n\n") if f]
    assert "event: ping" in frames  # a bare keep-alive line
    events = [json.loads(f[len("data: ") :]) for f in frames if f != "event: ping"]
    assert all(f.startswith("data: {") for f in frames if f != "event: ping")  # no `event:` lines
    assert {"conversation_id", "message_id", "created_at", "task_id"} <= set(events[0])
    assert events[-1]["event"] == "message_end" and events[-1]["metadata"]["usage"]["currency"] == "USD"
    blocking = httpx.post(url, json={**body, "response_mode": "blocking"}, headers=headers, timeout=10).json()
    assert blocking["mode"] == "chat" and blocking["answer"].startswith("**Echo:** raw")
    assert blocking["id"] == blocking["message_id"]
    agent_headers = {"Authorization": f"Bearer {dify.dify_agent_key}"}
    agent = httpx.post(url, json={**body, "response_mode": "blocking"}, headers=agent_headers)
    assert agent.status_code == 400
    assert agent.json() == {
        "code": "invalid_param",
        "message": "Agent Chat App does not support blocking mode",
        "status": 400,
    }
    denied = httpx.get(dify.dify_url + "/info", headers={"Authorization": "Bearer nope"})
    assert denied.status_code == 401 and denied.headers["www-authenticate"] == 'Bearer realm="api"'
    assert denied.json() == {"code": "unauthorized", "message": "Access token is invalid", "status": 401}
    assert (
        httpx.delete(
            dify.dify_url + "/conversations/" + events[0]["conversation_id"], headers=headers, params={"user": "raw-user"}
        ).status_code
        == 204
    )


# --------------------------------------------------------------------------- respx: servers the emulator is not


def sse(*events: dict[str, Any], spaced: bool = False) -> bytes:
    sep = (", ", ": ") if spaced else (",", ":")
    return "".join("data: " + json.dumps(e, separators=sep) + "\n\n" for e in events).encode()


def mocked_send(body: bytes | str, *, status: int = 200, content_type: str = "text/event-stream", **kw: Any) -> Any:
    async def main() -> Any:
        chat = AsyncWbotChat(api_key="app-respx-key-000000", base_url=kw.pop("base_url", "http://dify.test/v1"))
        chat.http.retry_base = 0.001
        with respx.mock(assert_all_called=False) as router:
            router.post(url__regex=r".*/chat-messages$").mock(
                return_value=httpx.Response(status, content=body, headers={"content-type": content_type})
            )
            events: list[ChatEvent] = []
            try:
                message = await chat.send("q", on_event=events.append)
            finally:
                await chat.aclose()
            return message, events

    return asyncio.run(main())


def test_old_server_spaced_json_and_url_forms() -> None:
    message, events = mocked_send(
        b": a comment line\n\n"
        + sse(
            {"event": "message", "task_id": "t1", "id": "m1", "answer": "Hi", "created_at": 1705398420},
            {
                "event": "message_file",
                "id": "f1",
                "type": "image",
                "belongs_to": "assistant",
                "url": "/files/tools/f1.png?sign=x",
                "conversation_id": "c1",
            },
            {"event": "message_file", "id": "f2", "type": "image", "url": "//cdn.test/f2.png"},
            {"event": "message_file", "id": "f3", "type": "image", "url": "https://other.test/f3.png"},
            {"event": "something_new", "task_id": "t1"},
            {
                "event": "message_end",
                "task_id": "t1",
                "id": "m1",
                "conversation_id": "c1",
                "metadata": {"usage": {"total_tokens": 3}},
            },
            spaced=True,
        )
        + b"data: [DONE]\n\n"
    )
    assert message.answer == "Hi" and message.message_id == "m1" and message.task_id == "t1"
    assert message.conversation_id == "c1" and message.created_at == 1705398420
    assert [f.url for f in message.files] == [
        "http://dify.test/files/tools/f1.png?sign=x",  # real Dify layout: host root, not /v1
        "http://cdn.test/f2.png",
        "https://other.test/f3.png",
    ]
    assert "something new" in [e.text for e in events if e.kind == "progress"]


def test_prefixed_base_url_resolution() -> None:
    message, _ = mocked_send(
        sse(
            {"event": "message_file", "id": "f1", "type": "image", "url": "/files/tools/f1.png"},
            {"event": "message_end", "id": "m1", "metadata": {}},
        ),
        base_url="https://gw.test/dify/v1/",
    )
    assert message.files[0].url == "https://gw.test/dify/files/tools/f1.png"


def test_blocking_json_fallback_and_truncated_stream() -> None:
    blocking = {
        "event": "message",
        "task_id": "t",
        "id": "m",
        "message_id": "m",
        "conversation_id": "c",
        "mode": "chat",
        "answer": "whole answer",
        "metadata": {"usage": {"total_tokens": 9}},
        "created_at": 1,
    }
    message, events = mocked_send(json.dumps(blocking), content_type="application/json")
    assert message.answer == "whole answer" and message.usage == {"total_tokens": 9} and kinds(events)[-1] == "end"
    with pytest.raises(WiroConnectionError, match="no message_end") as caught:
        mocked_send(sse({"event": "message", "id": "m", "answer": "half"}))
    assert caught.value.partial == "half"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "body", "content_type", "error", "needle"),
    [
        (
            403,
            {"code": "forbidden", "message": "The app's API service has been disabled.", "status": 403},
            "application/json",
            WiroError,
            "API service has been disabled",
        ),
        (413, {"code": "file_too_large", "message": "", "status": 413}, "application/json", ValidationError, "file_too_large"),
        (
            400,
            {"code": "not_chat_app", "message": "Please check if your app mode matches the right API route.", "status": 400},
            "application/json",
            ValidationError,
            "workflow or completion app",
        ),
        (404, "Not Found", "text/plain", NotFoundError, "base_url"),
        (503, "<html><title>Maintenance</title></html>", "text/html", ServerError, "'Maintenance'"),
    ],
)
def test_error_mapping(status: int, body: Any, content_type: str, error: type[WiroError], needle: str) -> None:
    content = json.dumps(body) if isinstance(body, dict) else body
    with pytest.raises(error) as caught:
        mocked_send(content, status=status, content_type=content_type)
    assert needle in str(caught.value) and caught.value.status_code == status
    assert type(caught.value) is error or error is WiroError


def test_turn_state_machine_unit() -> None:
    turn = _Turn("q", {}, [], root="http://h")
    turn.feed({"event": "agent_thought", "id": "a", "position": 2, "tool": "x;y", "tool_input": "not json"})
    turn.feed({"event": "agent_thought", "id": "b", "position": 1, "observation": "[1, 2]"})
    turn.feed({"event": "agent_thought", "id": "a", "thought": "later", "tool": "", "message_files": [{"id": "f"}]})
    assert [t.id for t in turn.message.agent_thoughts] == ["b", "a"]
    a = turn.message.agent_thoughts[1]
    assert (a.tool, a.tools, a.tool_input, a.thought, a.files) == ("x;y", ["x", "y"], "not json", "later", ["f"])
    assert turn.message.agent_thoughts[0].observation == [1, 2]
    error = turn.feed({"code": "weird", "message": "no event key", "status": 400})  # treated as an error
    assert error[0].kind == "error" and isinstance(turn.failure(), ValidationError)


def test_chat_message_display_is_sanitized_html_and_text() -> None:
    message = ChatMessage(answer="**Hi** <b>x</b>", thinking="step one\nstep two", backend="wbot")
    bundle = message._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}  # no text/markdown: front ends would run its raw HTML
    assert bundle["text/plain"] == str(message) == "**Hi** <b>x</b>"
    assert bundle["text/html"].startswith("<blockquote><p>step one\nstep two</p>\n</blockquote>\n<p><strong>Hi</strong>")
    assert "&lt;b&gt;x&lt;/b&gt;" in bundle["text/html"] and "<details" not in bundle["text/html"]
    assert message._repr_mimebundle_(include={"text/plain"}) == {"text/plain": "**Hi** <b>x</b>"}
    assert "ChatMessage(answer='**Hi** <b>x</b>'" in repr(message)
