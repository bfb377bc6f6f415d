"""The Wiro LLM chat, the per-notebook chat sessions, the chat widget and `%%wchat`, against the emulator.

The emulator's `wiro/chat-llm` remembers the earlier prompts of each `session_id` and says so in its
answer, and its Dify chat app says which turn of a conversation it is answering: so continuity is
checked by what the servers remember, not by the client's own bookkeeping. Waits are bounded
events or joins, never sleeps standing in for synchronisation.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import elements, wait_for_widget_state
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError
from kernels import Kernel

from wiro_jupyter import AsyncWiro, Wiro
from wiro_jupyter._exceptions import (
    AuthenticationError,
    ServerError,
    TaskFailedError,
    ValidationError,
    WiroError,
)
from wiro_jupyter._render import render_markdown
from wiro_jupyter.chat._messages import AgentThought, ChatEvent, ChatFile, ChatMessage
from wiro_jupyter.chat._sessions import chat_session, forget_sessions, open_session, sessions
from wiro_jupyter.chat._wiro import AsyncChat, Chat
from wiro_jupyter.dify._sync import WbotChat
from wiro_jupyter.emulator import Emulator
from wiro_jupyter.magics import _transform, load_ipython_extension
from wiro_jupyter.magics._wchat import parse_wchat
from wiro_jupyter.widgets import ChatView
from wiro_jupyter.widgets._frontend import WIDGET_VIEW

XSS = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script>'


# ------------------------------------------------------------------------------------------------ fixtures


@pytest.fixture
def world(emu: Emulator) -> Iterator[Any]:
    """The emulator's Dify world with its faults and stop flags reset."""
    dify = emu.dify
    emu.faults.reset()
    dify.stopped = set()
    yield dify
    emu.faults.reset()
    dify.stopped = set()


@pytest.fixture
def wbot(emu: Emulator, world: Any) -> Any:
    """A factory of Wbot chats on one emulator app, each with its own end user."""
    keys = {"chat": emu.dify_chat_key, "agent": emu.dify_agent_key, "flow": emu.dify_chatflow_key}

    def make(app: str = "chat") -> WbotChat:
        return WbotChat(api_key=keys[app], base_url=emu.dify_url, user="test-" + uuid.uuid4().hex[:10])

    return make


@pytest.fixture
def chat_env(emu_env: Emulator, world: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """WIRO_* and WBOT_* pointing at the emulator (its chat app), and no sessions kept."""
    monkeypatch.setenv("WBOT_API_URL", emu_env.dify_url)
    monkeypatch.setenv("WBOT_API_KEY", emu_env.dify_chat_key)
    monkeypatch.delenv("WIRO_JUPYTER_WIDGETS", raising=False)
    forget_sessions()
    yield emu_env
    forget_sessions()


class Shell:
    """A plain InteractiveShell with the extension loaded and a display publisher that records."""

    def __init__(self, ip: Any) -> None:
        self.ip = ip
        self.pub = CapturingDisplayPublisher()

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return list(self.pub.outputs)

    def run(self, source: str) -> Any:
        self.pub.outputs.clear()
        return self.ip.run_cell(source, store_history=True)


@pytest.fixture
def shell(chat_env: Emulator) -> Iterator[Shell]:
    from IPython.core.interactiveshell import InteractiveShell

    ip = InteractiveShell.instance()
    load_ipython_extension(ip)
    wrapper = Shell(ip)
    saved = ip.display_pub
    ip.display_pub = wrapper.pub
    try:
        yield wrapper
    finally:
        ip.display_pub = saved
        _transform.FORCE_AWAIT = None


def kinds(events: list[ChatEvent]) -> list[str]:
    return [e.kind for e in events]


def rebuild(events: list[ChatEvent]) -> tuple[str, str]:
    """The answer and thinking as a consumer of the deltas would rebuild them."""
    answer = thinking = ""
    for event in events:
        if event.kind == "text":
            answer += event.text
        elif event.kind == "replace":
            answer = event.text
        elif event.kind == "thinking":
            thinking = event.text if event.raw.get("thinking_replace") else thinking + event.text
    return answer, thinking


# ------------------------------------------------------------------------------------------------ Wiro LLM chat


def test_turns_continue_one_session_and_reset_starts_fresh(wiro: Wiro, emu: Emulator) -> None:
    chat = Chat(client=wiro)
    first = chat.send("The first message")
    second = chat.send("The second message")
    assert "I remember 0 earlier turn(s)" in first.answer
    assert 'I remember 1 earlier turn(s) in this session. Earlier you said: "The first message"' in second.answer
    assert first.session_id == second.session_id == chat.session_id
    for message in (first, second):
        assert message.backend == "wiro" and message.model == "wiro/chat-llm"
        assert message.task_id and message.metadata["task_id"] == message.task_id
        assert message.metadata["memory"] is True and message.metadata["user_id"] == chat.user_id
        assert message.latency_s > 0 and message.metadata["cost"] is not None
        assert message.usage["total_price"] == message.metadata["cost"] and message.usage["currency"] == "USD"
        assert message.thinking.startswith("The user wrote")
    record = emu.tasks[second.task_id]
    assert record.parameters["session_id"] == chat.session_id and record.parameters["user_id"] == chat.user_id
    assert [m.query for m in chat.turns] == ["The first message", "The second message"] and chat.last is second
    assert chat.last_task is not None and chat.last_task.id == second.task_id

    old = chat.session_id
    chat.reset()
    assert chat.session_id != old and chat.turns == [] and chat.last is None
    assert "I remember 0 earlier turn(s)" in chat.send("After the reset").answer
    assert "I remember 0 earlier turn(s)" in Chat(client=wiro).send("A new chat").answer
    assert repr(chat).startswith("Chat(model='wiro/chat-llm', session_id=")


def test_parameters_per_chat_and_per_message(wiro: Wiro, emu: Emulator) -> None:
    chat = Chat(client=wiro, system_prompt="Answer like a pirate", temperature="0.2")
    reply = chat.send("Ahoy")
    assert "- System prompt: Answer like a pirate" in reply.answer
    params = emu.tasks[reply.task_id].parameters
    assert params["temperature"] == "0.2" and params["prompt"] == "Ahoy"
    once = chat.send("Quietly", system_prompt="Whisper", reasoning=False)
    assert "- System prompt: Whisper" in once.answer and once.thinking == ""
    assert emu.tasks[once.task_id].parameters["temperature"] == "0.2"  # the chat's own still apply
    again = chat.send("Back to normal")
    assert "- System prompt: Answer like a pirate" in again.answer and again.thinking
    chat.params = {"temperature": "0.9"}
    assert emu.tasks[chat.send("Hotter").task_id].parameters["temperature"] == "0.9"


def test_events_rebuild_the_exact_text(wiro: Wiro, emu: Emulator) -> None:
    emu.stage_delay = 0.01  # the snapshots arrive one by one
    chat = Chat(client=wiro)
    events: list[ChatEvent] = []
    message = chat.send("Stream it to me", on_event=events.append)
    assert kinds(events)[0] == "progress" and events[0].text == "sending"
    assert kinds(events)[-1] == "end" and kinds(events).count("end") == 1
    assert kinds(events).count("text") >= 3 and kinds(events).count("thinking") >= 2
    answer, thinking = rebuild(events)
    assert answer == message.answer == chat.last_task.text  # type: ignore[union-attr]
    assert thinking == message.thinking
    assert all(e.message is message for e in events)
    texts = [e for e in events if e.kind == "text"]
    assert all(e.answer.endswith(e.text) for e in texts)  # `answer` is the text so far
    assert "running" in [e.text for e in events if e.kind == "progress"]
    assert message.metadata["first_token_s"] <= message.latency_s

    streamed = list(chat.stream("And once more"))
    assert kinds(streamed)[-1] == "end" and rebuild(streamed)[0] == chat.last.answer  # type: ignore[union-attr]


def test_async_chat_send_stream_and_stop(emu: Emulator) -> None:
    async def main() -> None:
        client = AsyncWiro(api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url, poll_interval=0.05)
        async with client:
            chat = AsyncChat(client=client, temperature="0.1")
            first = await chat.send("Async hello")
            events = [event async for event in chat.stream("Async again")]
            assert 'Earlier you said: "Async hello"' in chat.last.answer  # type: ignore[union-attr]
            assert kinds(events)[-1] == "end" and first.session_id == chat.session_id
            seen: list[str] = []

            async def on_event(event: ChatEvent) -> None:  # a coroutine callback is awaited
                seen.append(event.kind)

            await chat.send("Third", on_event=on_event)
            assert seen[-1] == "end"

            emu.stage_delay = 0.1
            first_text = asyncio.Event()
            task = asyncio.create_task(chat.send("Stop me", on_event=lambda e: e.kind == "text" and first_text.set()))
            await asyncio.wait_for(first_text.wait(), 20)
            assert await chat.stop() is True
            stopped = await asyncio.wait_for(task, 20)
            assert stopped.metadata["stopped"] is True
            assert "That is all from the synthetic model." not in stopped.answer
            assert emu.tasks[stopped.task_id].status == "task_cancel"  # type: ignore[index]
            assert await chat.stop() is False
        with pytest.raises(TypeError):
            AsyncChat(client=Wiro(api_key="x"))  # type: ignore[arg-type]

    asyncio.run(main())


def test_stop_from_another_thread_keeps_the_partial_answer(wiro: Wiro, emu: Emulator) -> None:
    emu.stage_delay = 0.1
    chat = Chat(client=wiro)
    first_text = threading.Event()
    result: dict[str, Any] = {}

    def worker() -> None:
        try:
            result["message"] = chat.send("Please stop me", on_event=lambda e: e.kind == "text" and first_text.set())
        except BaseException as exc:  # pragma: no cover - reported below
            result["error"] = exc

    thread = threading.Thread(target=worker)
    thread.start()
    assert first_text.wait(20)
    assert chat.busy and chat.stop() is True
    thread.join(20)
    assert not thread.is_alive() and "error" not in result
    message: ChatMessage = result["message"]
    assert message.metadata["stopped"] is True and message.answer.startswith("## Emulated answer")
    assert "That is all from the synthetic model." not in message.answer
    assert emu.tasks[message.task_id].status == "task_cancel"  # type: ignore[index]
    assert chat.stop() is False and not chat.busy
    emu.stage_delay = 0
    assert "I remember" in chat.send("Still usable").answer


def test_stop_inside_the_stream_loop_and_leaving_it_early(wiro: Wiro, emu: Emulator) -> None:
    emu.stage_delay = 0.1
    chat = Chat(client=wiro)
    events = []
    for event in chat.stream("Stop in the loop"):
        events.append(event)
        if event.kind == "text" and kinds(events).count("text") == 1:
            assert chat.stop() is True
    assert events[-1].kind == "end" and chat.last is not None and chat.last.metadata["stopped"]
    assert emu.tasks[chat.last.task_id].status == "task_cancel"  # type: ignore[index]

    stream = chat.stream("Leave early")
    for event in stream:
        if event.kind == "text":
            break
    stream.close()  # what a `break` leads to once the generator is collected
    task = chat.last_task
    assert task is not None
    record = emu.wait_task(task.id, timeout=10)
    assert record.status == "task_cancel"  # leaving a stream early stops the paid task
    assert not chat.busy


def test_errors_model_failure_validation_http_and_in_flight(wiro: Wiro, emu: Emulator) -> None:
    events: list[ChatEvent] = []
    failing = Chat("wiro/always-fails", client=wiro)
    with pytest.raises(TaskFailedError) as failed:
        failing.send("boom", on_event=events.append)
    assert "synthetic failure for prompt 'boom'" in str(failed.value)
    assert events[-1].kind == "error" and "failed" in events[-1].text
    partial = failed.value.partial_message  # type: ignore[attr-defined]
    assert partial.metadata["error"] and partial.metadata["memory"] is False  # no session_id on this model
    assert not failing.busy and failing.turns == []

    chat = Chat(client=wiro)
    before = len(emu.tasks)
    with pytest.raises(ValidationError) as bad:
        chat.send("too long", max_tokens=99999)
    assert "max_tokens" in str(bad.value) and "Nothing was sent" in str(bad.value)
    with pytest.raises(ValidationError, match="Did you mean 'temperature'"):
        chat.send("typo", temprature="0.5")
    with pytest.raises(ValidationError, match="empty"):
        chat.send("   ")
    with pytest.raises(ValidationError, match="set by the chat itself"):
        chat.send("elsewhere", session_id="another")
    with pytest.raises(ValidationError, match="is not a model slug"):
        Chat("no-slash", client=wiro)
    with pytest.raises(ValidationError, match="cannot also be a parameter"):
        chat.send("twice", prompt="other")
    assert len(emu.tasks) == before  # nothing was sent

    emu.faults.http_error("Run", 500, times=1)
    events.clear()
    with pytest.raises(ServerError) as server:
        chat.send("server trouble", on_event=events.append)
    assert "HTTP 500" in str(server.value) and kinds(events) == ["progress", "error"]
    assert "I remember" in chat.send("fine again").answer  # the chat is not stuck

    emu.stage_delay = 0.1
    stream = chat.stream("first of two")
    next(stream)
    with pytest.raises(WiroError, match="still streaming"):
        chat.send("second of two")
    stream.close()


# ------------------------------------------------------------------------------------------------ sessions


def test_sessions_remember_backend_and_model(chat_env: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    default = chat_session()
    assert isinstance(default, Chat) and default.model == "wiro/chat-llm"
    assert chat_session() is default and chat_session("default") is default
    session_id = default.session_id
    assert chat_session(new=True) is default and default.session_id != session_id
    other = chat_session("other")
    assert other is not default and other.session_id != default.session_id

    switched = chat_session(model="wiro/always-fails")
    assert switched is not default and switched.model == "wiro/always-fails"
    note = capsys.readouterr().err
    assert "was a conversation with wiro/chat-llm; starting a new conversation with wiro/always-fails" in note
    assert chat_session() is switched  # the model is remembered for the session...
    assert chat_session("third").model == "wiro/always-fails"  # ...and for new sessions of the notebook
    assert chat_session(model="wiro/always-fails") is switched and capsys.readouterr().err == ""

    bot = chat_session(wbot=True)
    assert isinstance(bot, WbotChat) and "starting a new conversation with the Wbot chat app" in capsys.readouterr().err
    assert chat_session() is bot and isinstance(chat_session("fourth"), WbotChat)
    session, note = open_session("default", new=True)
    assert session.chat is bot and note == "" and session.backend == "wbot" and session.label == "the Wbot chat app"
    assert sorted(sessions()) == ["default", "fourth", "other", "third"]
    with pytest.raises(ValidationError, match="no model to choose"):
        chat_session(model="wiro/chat-llm", wbot=True)
    with pytest.raises(ValidationError):
        chat_session(model="not a slug")


def test_sessions_need_their_keys_and_never_show_them(chat_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WBOT_API_KEY")
    with pytest.raises(AuthenticationError) as missing:
        chat_session(wbot=True)
    assert "WBOT_API_KEY" in str(missing.value) and "%env WBOT_API_KEY=app-" in str(missing.value)
    assert "wbot" not in {s.backend for s in sessions().values()}  # nothing half-made was kept
    monkeypatch.delenv("WIRO_API_KEY")
    with pytest.raises(AuthenticationError, match="WIRO_API_KEY"):
        chat_session("wiro-less")
    assert chat_env.api_key not in str(missing.value)


def test_a_session_starts_over_when_its_credentials_change(
    chat_env: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = chat_session(wbot=True)
    assert chat_session() is bot
    monkeypatch.setenv("WBOT_API_KEY", chat_env.dify_agent_key)
    agent = chat_session()
    assert isinstance(agent, WbotChat) and agent is not bot and agent.api_key == chat_env.dify_agent_key
    assert "WBOT_API_KEY or WBOT_API_URL changed; starting a new conversation" in capsys.readouterr().err
    wiro = chat_session("w", model="wiro/chat-llm")
    monkeypatch.setenv("WIRO_API_KEY", chat_env.signature_key)
    monkeypatch.setenv("WIRO_API_SECRET", chat_env.signature_secret)
    again = chat_session("w")
    assert isinstance(again, Chat) and again is not wiro and again.model == "wiro/chat-llm"
    assert "the Wiro API key or URL changed" in capsys.readouterr().err
    assert "I remember 0" in again.send("Signed, this time").answer


def test_session_history_and_widget(chat_env: Emulator) -> None:
    session, _ = open_session("hist")
    session.chat.send("Remember me")
    view = session.widget()
    assert [t["role"] for t in view.turns] == ["user", "assistant"] and view.turns[0]["text"] == "Remember me"
    session.chat.send("And me")  # a Wiro session's widget follows the chat live
    assert [t["text"] for t in view.turns if t["role"] == "user"] == ["Remember me", "And me"]
    bot, _ = open_session("bot", wbot=True)
    reply = bot.chat.send("Hi bot")
    assert bot.turns == [reply] and bot.conversation == reply.conversation_id
    assert [t["role"] for t in bot.widget().turns] == ["user", "assistant"]
    bot.new()
    assert bot.turns == [] and bot.conversation is None


# ------------------------------------------------------------------------------------------------ the widget


def test_view_of_an_agent_turn_shows_steps_image_and_usage(wbot: Any) -> None:
    chat = wbot("agent")
    view = ChatView(chat)
    assert view.show_input and view.following and view.title == "Wbot chat"  # WbotChat has listeners too
    message = view.send("a red cat")
    assert view.pending == [] and view.busy is False
    user, assistant = view.turns
    assert user["role"] == "user" and user["text"] == "a red cat" and user["files"] == []
    assert assistant["role"] == "assistant" and assistant["state"] == "done" and assistant["error"] == ""
    assert assistant["html"] == render_markdown(message.answer) and "Here is your picture of: a red cat" in assistant["html"]
    (step,) = assistant["thoughts"]  # the second step only repeats the answer
    assert step["tool"] == "draw_image" and step["thought"].startswith("I will draw it")
    assert '"prompt": "a red cat"' in step["input"] and "image has been created" in step["observation"]
    (image,) = assistant["files"]
    assert image["type"] == "image" and image["url"].startswith("http")
    fetched = httpx.get(image["url"], timeout=10)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x89PNG")
    assert "tokens" in assistant["meta"] and " s" in assistant["meta"] and "$" in assistant["meta"]


def test_view_of_an_in_stream_error_replace_tts_and_a_chatflow(wbot: Any) -> None:
    view = ChatView(wbot("chat"))
    with pytest.raises(ServerError) as failed:
        view.send("please fail mid-stream")
    assistant = view.turns[-1]
    assert assistant["state"] == "error" and "failed while streaming" in assistant["error"]
    assert assistant["html"] and assistant["html"] == render_markdown(failed.value.partial)  # type: ignore[attr-defined]
    assert "<strong>Error:</strong>" in view.static_bundle()["text/html"]

    moderated = view.send("please moderate this")  # a `replace` event swaps the whole answer
    assert view.turns[-1]["html"] == render_markdown(moderated.answer) and "moderation" in moderated.answer
    spoken = view.send("speak to me")  # text-to-speech audio after the answer: inline, as a data URL
    (audio,) = view.turns[-1]["files"]
    assert spoken.audio and audio["type"] == "audio" and audio["url"].startswith("data:audio/mpeg;base64,")

    flow = ChatView(wbot("flow"))
    message = flow.send("think about it")
    assistant = flow.turns[-1]
    assert assistant["state"] == "done" and message.thinking and assistant["thinking_html"]
    assert assistant["html"] == render_markdown(message.answer)


def test_view_follows_a_wiro_chat_and_its_resets(wiro: Wiro) -> None:
    chat = Chat(client=wiro)
    chat.send("Before the widget")
    view = chat.widget()
    assert view.following and view.title == "wiro/chat-llm"
    assert [t["role"] for t in view.turns] == ["user", "assistant"]  # the history so far
    chat.send("From code, not from the widget")
    assistant = view.turns[-1]
    assert view.turns[-2]["text"] == "From code, not from the widget" and assistant["state"] == "done"
    assert assistant["html"] == render_markdown(chat.last.answer)  # type: ignore[union-attr]
    assert assistant["thinking_html"] and assistant["meta"].startswith(f"wiro/chat-llm · task {chat.last.task_id}")  # type: ignore[union-attr]
    view.send("Through the view")
    assert [t["text"] for t in view.turns if t["role"] == "user"][-1] == "Through the view"
    assert len(view.turns) == 6  # no turn shown twice
    chat.reset()
    assert view.turns[-1]["role"] == "divider"
    view.close()
    chat.send("After the view closed")
    assert len(view.turns) == 7


def test_view_follows_a_wbot_chat_too(wbot: Any) -> None:
    chat = wbot("chat")
    view = ChatView(chat)
    chat.send("Sent from code")  # not through the view: it follows the chat's listeners
    assert [t["text"] for t in view.turns if t["role"] == "user"] == ["Sent from code"]
    assert view.turns[-1]["state"] == "done" and "Sent from code" in view.turns[-1]["html"]
    view.send("Through the view")
    assert len(view.turns) == 4  # no turn shown twice
    chat.new()
    assert view.turns[-1]["role"] == "divider"


def test_widget_buttons_send_and_stop_off_the_comm_thread(wbot: Any) -> None:
    view = ChatView(wbot("chat"))
    view._on_custom(view, {"action": "send", "text": "typed in the box"}, [])
    assert view.worker is not None
    view.worker.join(30)
    assert view.turns[-2]["text"] == "typed in the box"
    assert view.turns[-1]["html"].startswith("<p><strong>Echo:</strong> typed in the box</p>\n<p>This is the first turn")
    streaming = threading.Event()
    view.observe(lambda change: any(t.get("html") for t in change["new"]) and streaming.set(), names="pending")
    view._on_custom(view, {"action": "send", "text": "count slow please"}, [])
    assert streaming.wait(20)
    view._on_custom(view, {"action": "send", "text": "not now"}, [])  # one answer at a time
    assert "still streaming" in view.notice
    view._on_custom(view, {"action": "stop"}, [])
    assert view.stop_thread is not None
    view.stop_thread.join(20)
    view.worker.join(20)
    assistant = view.turns[-1]
    assert assistant["state"] == "stopped" and assistant["meta"].endswith("stopped")
    assert assistant["html"].startswith("<p>Counting") and "150." not in assistant["html"]
    assert view.busy is False and view.stopping is False


def test_view_throttles_a_fast_stream_and_ends_exact() -> None:
    view = ChatView(None, interval=0.05)
    assert view.show_input is False  # nothing to send through
    updates: list[Any] = []
    view.observe(updates.append, names="pending")
    message = ChatMessage(query="count", backend="wiro", model="wiro/chat-llm")
    view.begin("count")
    start = time.monotonic()
    for i in range(400):  # a 400-token stream, one token every ~millisecond
        piece = f"word{i} "
        message.answer += piece
        view.feed(ChatEvent(kind="text", text=piece, answer=message.answer, message=message))
        time.sleep(0.001)  # pacing the fake stream, not synchronisation
    elapsed = time.monotonic() - start
    message.latency_s = elapsed
    view.feed(ChatEvent(kind="end", answer=message.answer, message=message))
    assert 2 <= len(updates) <= elapsed / 0.05 + 3, (len(updates), elapsed)
    assert view.pending == [] and view.turns[-1]["html"] == render_markdown(message.answer)
    assert "word399" in view.turns[-1]["html"] and view.turns[-1]["state"] == "done"


def test_static_fallback_is_a_sanitized_transcript() -> None:
    message = ChatMessage(
        answer=f"Here you go: {XSS}",
        thinking="hmm",
        query="show me",
        model="wiro/chat-llm",
        backend="wiro",
        task_id="42",
        latency_s=1.25,
        usage={"total_price": 0.0012, "currency": "USD"},
        # unreachable (connection refused at once): the file stays a link, never a remote <img>
        files=[ChatFile(type="image", url="http://127.0.0.1:9/a.png", filename="a.png", belongs_to="assistant")],
        agent_thoughts=[AgentThought(id="1", tool="search", tool_input={"q": "x"}, observation="found")],
    )
    view = ChatView(None, messages=[message])
    assert view.wait_files(30)
    data, _meta = view._repr_mimebundle_()
    assert {"text/plain", "text/html", WIDGET_VIEW} <= set(data) and "text/markdown" not in set(data)
    html = data["text/html"]
    assert html.startswith('<div class="wiro-chat-static"><p><strong>You:</strong>') and "show me" in html
    assert "<strong>wiro/chat-llm:</strong>" in html and "tool <strong>search</strong>" in html
    assert '<a href="http://127.0.0.1:9/a.png" target="_blank" rel="noopener noreferrer">a.png</a>' in html
    assert "<em>wiro/chat-llm · task 42 · 1.2 s · $0.0012</em>" in html
    tags, handlers = elements(html)
    assert not {"script", "img"} & tags and handlers == [] and "&lt;script&gt;" in html  # shown as text, never run
    assert data["text/plain"].startswith("You: show me\nwiro/chat-llm: Here you go:")
    tags, handlers = elements(view.turns[-1]["html"])
    assert tags == {"p"} and handlers == []
    assert view.turns[-1]["files"][0]["src"] == ""  # nothing to show inline
    assert "(no messages yet)" in ChatView(None)._repr_mimebundle_()[0]["text/html"]
    assert repr(view) == "<ChatView chat · 1 turn>"


# ------------------------------------------------------------------------------------------------ %%wchat


def test_parse_wchat_line() -> None:
    request = parse_wchat("wiro/chat-llm --new --session {name} -o reply", {"name": "side"})
    assert (request.model, request.new, request.session, request.output, request.wbot) == (
        "wiro/chat-llm",
        True,
        "side",
        "reply",
        False,
    )
    assert parse_wchat("").session == "default" and parse_wchat("--wbot").wbot
    for line, needle in (
        ("--bogus", "unrecognized arguments: --bogus"),
        ("wiro/chat-llm --wbot", "takes no model"),
        ("chat-llm", "is not a model"),
        ("-o 1x", "variable name"),
        ("--session", "expected one argument"),
        ("a/b c/d", "unrecognized arguments"),
    ):
        with pytest.raises(UsageError, match=needle):
            parse_wchat(line)
    with pytest.raises(UsageError, match="Consecutive %%wchat cells"):
        parse_wchat("--help")


@pytest.mark.parametrize("awaited", [False, True], ids=["blocking", "awaited"])
def test_wchat_wiro_cells_continue_until_new_and_sessions_side_by_side(shell: Shell, awaited: bool) -> None:
    _transform.FORCE_AWAIT = awaited
    first = shell.run("%%wchat -o hello\nHello there")
    assert first.error_in_exec is None
    reply = shell.ip.user_ns["hello"]
    assert isinstance(reply, ChatMessage) and first.result is reply and shell.ip.user_ns["_"] is reply
    (shown,) = shell.outputs  # no widget front end here: the reply once, with provenance
    assert shown["data"] == reply._repr_mimebundle_() and shown["data"]["text/plain"] == reply.answer
    assert "text/markdown" not in shown["data"]  # sanitized HTML only
    wiro = shown["metadata"]["wiro"]
    assert wiro["chat"] == "wiro" and wiro["model"] == "wiro/chat-llm" and wiro["session"] == "default"
    assert wiro["session_id"] == reply.session_id and wiro["task_id"] == reply.task_id
    assert wiro["elapsed_s"] >= 0 and wiro["latency_s"] > 0 and wiro["cost"] == reply.metadata["cost"]

    second = shell.run("%%wchat\nSecond, about {hello.model}")
    assert second.error_in_exec is None
    assert 'Earlier you said: "Hello there"' in second.result.answer
    assert "You said: Second, about wiro/chat-llm" in second.result.answer  # {name} interpolation
    assert second.result.session_id == reply.session_id

    fresh = shell.run("%%wchat --new\nThird")
    assert "I remember 0 earlier turn(s)" in fresh.result.answer and fresh.result.session_id != reply.session_id
    aside = shell.run("%%wchat --session aside\nAn aside")
    assert "I remember 0 earlier turn(s)" in aside.result.answer
    assert shell.outputs[0]["metadata"]["wiro"]["session"] == "aside"
    back = shell.run("%%wchat\nFourth")
    assert 'I remember 1 earlier turn(s) in this session. Earlier you said: "Third"' in back.result.answer
    assert shell.ip.user_ns["_"] is back.result


@pytest.mark.parametrize("awaited", [False, True], ids=["blocking", "awaited"])
def test_wchat_wbot_cells_continue_one_conversation(shell: Shell, awaited: bool) -> None:
    _transform.FORCE_AWAIT = awaited
    first = shell.run("%%wchat --wbot\nHello bot")
    assert first.error_in_exec is None
    message = first.result
    assert message.backend == "wbot" and message.answer.startswith("**Echo:** Hello bot")
    assert "first turn of a new conversation" in message.answer
    wiro = shell.outputs[-1]["metadata"]["wiro"]
    assert wiro["chat"] == "wbot" and wiro["conversation_id"] == message.conversation_id
    assert wiro["message_id"] == message.message_id and wiro["usage"]["total_tokens"] > 0
    second = shell.run("%%wchat\nAgain")  # the backend is remembered
    assert 'This is turn 2 of this conversation; your previous message was: "Hello bot"' in second.result.answer
    assert second.result.conversation_id == message.conversation_id
    fresh = shell.run("%%wchat --wbot --new\nFresh start")
    assert "first turn of a new conversation" in fresh.result.answer
    assert fresh.result.conversation_id != message.conversation_id
    assert sessions()["default"].turns == [fresh.result]


def test_wchat_errors_are_short_and_never_show_a_key(
    shell: Shell, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for source, error in (
        ("%%wchat --bogus\nhi", UsageError),
        ("%%wchat wiro/chat-llm --wbot\nhi", UsageError),
        ("%%wchat\n   \n", UsageError),
        ("%%wchat not-a-model\nhi", UsageError),
    ):
        result = shell.run(source)
        assert isinstance(result.error_in_exec, error), source
        assert shell.outputs == []
    failed = shell.run("%%wchat wiro/always-fails\nboom")
    assert isinstance(failed.error_in_exec, TaskFailedError)
    assert failed.error_in_exec._render_traceback_()[0].startswith("\x1b[0;31mTaskFailedError")

    in_stream = shell.run("%%wchat --wbot\nplease fail mid-stream")
    assert isinstance(in_stream.error_in_exec, ServerError) and "failed while streaming" in str(in_stream.error_in_exec)

    monkeypatch.delenv("WBOT_API_KEY")
    missing = shell.run("%%wchat --wbot --session keyless\nhi")
    assert isinstance(missing.error_in_exec, AuthenticationError)
    assert "WBOT_API_KEY" in str(missing.error_in_exec) and "%env" in str(missing.error_in_exec)

    wrong = "app-wrongKey0123456789abcdef"
    monkeypatch.setenv("WBOT_API_KEY", wrong)
    bad = shell.run("%%wchat --wbot --session wrongkey\nhi")
    assert isinstance(bad.error_in_exec, AuthenticationError) and "401" in str(bad.error_in_exec)
    shown = capsys.readouterr()
    for text in (str(bad.error_in_exec), repr(sessions()["wrongkey"].chat), shown.out, shown.err):
        assert wrong not in text and shell.ip.user_ns.get("_") is not bad.error_in_exec


def test_ctrl_c_in_a_blocking_wchat_cell_stops_generation(shell: Shell, emu: Emulator) -> None:
    emu.stage_delay = 0.1
    chat = chat_session()
    streaming = threading.Event()
    chat.add_listener(lambda event: event.kind == "text" and streaming.set())

    def interrupter() -> None:
        if streaming.wait(20):
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]

    helper = threading.Thread(target=interrupter)
    helper.start()
    try:
        result = shell.run("%%wchat\nPlease be interrupted")
    finally:
        helper.join(20)
    assert isinstance(result.error_in_exec, _transform.CellInterrupted)
    assert "generation was stopped" in str(result.error_in_exec)
    task = chat.last_task  # type: ignore[union-attr]
    assert task is not None and emu.wait_task(task.id, timeout=10).status == "task_cancel"
    assert not chat.busy
    emu.stage_delay = 0
    assert "I remember" in shell.run("%%wchat\nAfter the interrupt").result.answer  # the session goes on


def test_wchat_with_a_widget_front_end_updates_its_cell(shell: Shell, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIRO_JUPYTER_WIDGETS", "1")  # as in a kernel: a ChatView for the turn
    _transform.FORCE_AWAIT = True
    result = shell.run("%%wchat -o answer\nShow me the widget")
    assert result.error_in_exec is None
    live, final = shell.outputs
    assert not live["update"] and final["update"]
    assert live["transient"]["display_id"] == final["transient"]["display_id"]
    assert WIDGET_VIEW in live["data"] and WIDGET_VIEW in final["data"]
    assert "<em>(answering…)</em>" in live["data"]["text/html"] and "text/markdown" not in live["data"]
    message = shell.ip.user_ns["answer"]
    assert final["data"]["text/plain"].startswith("You: Show me the widget")
    assert render_markdown(message.answer) in final["data"]["text/html"]
    assert "task_id" not in live["metadata"]["wiro"] and final["metadata"]["wiro"]["task_id"] == message.task_id

    failed = shell.run("%%wchat wiro/always-fails\nboom")
    assert isinstance(failed.error_in_exec, TaskFailedError)
    final = shell.outputs[-1]
    assert final["update"] and "<strong>Error:</strong> <span" in final["data"]["text/html"]
    assert "Task" in final["data"]["text/plain"]
    assert "synthetic failure" in final["metadata"]["wiro"]["error"]


# ------------------------------------------------------------------------------------------------ kernel


def _wait_until_streaming(kc: Any, deadline: float) -> str:
    """Until a ChatView's comm shows the answer streaming in; returns the comm id."""
    return wait_for_widget_state(
        kc, "ChatView", lambda state: any("Counting" in (t.get("html") or "") for t in state.get("pending") or []), deadline
    )


def test_stop_button_and_interrupt_stop_an_awaited_wchat_cell_in_a_kernel(
    emu: Emulator, world: Any, start_kernel: Callable[..., Kernel]
) -> None:
    """The chat widget's Stop (a comm message) is handled while an awaited %%wchat cell streams;
    interrupting the kernel stops the answer too and fails the cell in one line."""
    km, kc = start_kernel(WBOT_API_URL=emu.dify_url, WBOT_API_KEY=emu.dify_chat_key)
    deadline = time.monotonic() + 90
    cell = kc.execute("%%wchat --wbot -o reply\ncount slow please")
    view_comm = _wait_until_streaming(kc, deadline)
    click = kc.session.msg("comm_msg", {"comm_id": view_comm, "data": {"method": "custom", "content": {"action": "stop"}}})
    clicked = time.monotonic()
    kc.shell_channel.send(click)
    check = kc.execute("print('CHECK', reply.metadata.get('stopped'), reply.answer.endswith('150.'), reply.task_id)")
    texts: dict[str, str] = {}
    idle: set[str] = set()
    final_state = None
    while idle != {cell, check}:
        assert time.monotonic() < deadline, f"cells did not finish: {texts}"
        msg = kc.get_iopub_msg(timeout=30)
        parent = msg["parent_header"].get("msg_id", "")
        content = msg["content"]
        if msg["msg_type"] == "status" and parent in (cell, check) and content["execution_state"] == "idle":
            idle.add(parent)
        elif msg["msg_type"] == "stream":
            texts[parent] = texts.get(parent, "") + content["text"]
        elif msg["msg_type"] == "error":
            pytest.fail("\n".join(content["traceback"]))
        elif msg["msg_type"] == "comm_msg" and content["comm_id"] == view_comm:
            turns = content["data"].get("state", {}).get("turns")
            if turns:
                final_state = turns[-1]["state"]
        elif msg["msg_type"] == "update_display_data" and parent == cell:
            assert "Counting" in content["data"]["text/html"] and "150." not in content["data"]["text/html"]
            assert content["metadata"]["wiro"]["stopped"] is True
    assert time.monotonic() - clicked < 15
    words = texts[check].split()
    assert words[:3] == ["CHECK", "True", "False"], texts  # the cell ended with the partial answer
    assert final_state == "stopped"
    assert words[3] in world.stopped  # the stop request reached the app

    stops = len(world.stopped)
    cell = kc.execute("%%wchat --new\ncount slow again")
    _wait_until_streaming(kc, deadline)
    km.interrupt_kernel()
    errors = []
    while True:
        assert time.monotonic() < deadline, "the interrupted cell did not end"
        msg = kc.get_iopub_msg(timeout=30)
        if msg["parent_header"].get("msg_id") != cell:
            continue
        if msg["msg_type"] == "error":
            errors.append(msg["content"])
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
    (error,) = errors
    assert error["ename"] == "CellInterrupted" and len(error["traceback"]) == 1
    assert "generation was stopped" in error["traceback"][0]
    assert len(world.stopped) == stops + 1  # the interrupt stopped the answer on the server
