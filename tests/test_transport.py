"""The one HTTP core, over real sockets to the emulator: redirects, the paid-request policy,
retries and `Retry-After`, size caps (answer, Server-Sent Event, socket message).

Counts are taken at the emulator (`emu.stats`), so "sent once" means what reached the server.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_client

import wiro_jupyter as wj
from wiro_jupyter import RateLimitError, ServerError, WbotChat, WiroError
from wiro_jupyter._transport import retry_after

CREDENTIAL_HEADERS = ("x-api-key", "x-nonce", "x-signature", "authorization")


class Listener:
    """A plain HTTP server on another loopback port that records every request it gets."""

    def __init__(self) -> None:
        self.requests: list[dict[str, str]] = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                seen.append({k.lower(): v for k, v in self.headers.items()})
                body = b'{"result": true, "errors": [], "tool": [], "total": 0}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def dify_chat(emu: Any, **kwargs: Any) -> WbotChat:
    chat = WbotChat(api_key=emu.dify_chat_key, base_url=emu.dify_url, **kwargs)
    chat.aio.http.retry_base = 0.01
    return chat


# -- redirects ------------------------------------------------------------------------------------
def test_api_requests_do_not_follow_a_redirect_to_another_origin(emu: Any, listener: Listener) -> None:
    emu.faults.redirect("Tool/List", f"{listener.url}/v1/Tool/List", status=307)
    with make_client(emu, api_secret=None) as wiro, pytest.raises(WiroError) as info:
        wiro.models()
    port = listener.url.rsplit(":", 1)[1]
    assert f"127.0.0.1:{port}" in str(info.value) and "redirect" in str(info.value)
    assert listener.requests == []  # nothing, so no credential header either


def test_signed_requests_do_not_follow_a_redirect(emu: Any, listener: Listener) -> None:
    emu.faults.redirect("Task/Detail", f"{listener.url}/steal", status=302, times=5)
    with make_client(emu, api_key=emu.signature_key, api_secret=emu.signature_secret) as wiro, pytest.raises(WiroError):
        wiro.task("123456")
    assert listener.requests == []


def test_dify_requests_do_not_follow_a_redirect(emu: Any, listener: Listener) -> None:
    emu.faults.redirect("dify:conversations", f"{listener.url}/v1/conversations", status=301)
    with pytest.raises(WiroError, match="redirect"):
        dify_chat(emu).conversations()
    assert not [h for h in listener.requests if any(name in h for name in CREDENTIAL_HEADERS)]
    assert listener.requests == []


# -- a paid request is sent once ---------------------------------------------------------------------
def test_a_504_on_chat_messages_is_one_post_and_a_clear_error(emu: Any) -> None:
    chat = dify_chat(emu)
    before = emu.stats.count("dify:chat-messages")
    emu.faults.http_error("dify:chat-messages", status=504, times=3)
    with pytest.raises(ServerError) as info:
        chat.send("an expensive question")
    assert emu.stats.count("dify:chat-messages") == before + 1
    assert info.value.maybe_submitted
    text = str(info.value)
    assert "504" in text and "may have reached the server" in text and "chat.messages()" in text


def test_a_429_on_chat_messages_is_retried(emu: Any) -> None:
    chat = dify_chat(emu)
    before = emu.stats.count("dify:chat-messages")
    emu.faults.http_error("dify:chat-messages", status=429, times=1, retry_after=0)
    assert chat.send("after one refusal").answer.startswith("**Echo:** after one refusal")
    assert emu.stats.count("dify:chat-messages") == before + 2


def test_a_run_dropped_mid_answer_is_not_sent_again(emu: Any) -> None:
    # A 5xx after the request reached the server: sent once, journaled as submit_unknown.
    with make_client(emu) as wiro:
        wiro.model("wiro/text-to-image")
        before = emu.stats.count("Run")
        emu.faults.http_error("Run", status=500, times=3)
        with pytest.raises(ServerError) as info:
            wiro.run("wiro/text-to-image", prompt="once")
    assert emu.stats.count("Run") == before + 1
    assert info.value.maybe_submitted and "submit_unknown" in str(info.value)
    assert wj.tasks(1)[0].status == "submit_unknown"


def test_the_concurrency_refusal_is_retried_and_runs_once(emu: Any) -> None:
    with make_client(emu) as wiro:
        wiro.model("wiro/text-to-image")
        before = emu.stats.count("Run")
        emu.faults.business_error(path="Run", code=96, times=1)
        task = wiro.run("wiro/text-to-image", prompt="after the refusal", width=256, height=256)
    assert task.ok
    assert emu.stats.count("Run") == before + 2  # refused (nothing started), then run
    runs = [t for t in emu.tasks.values() if t.parameters.get("prompt") == "after the refusal"]
    assert len(runs) == 1


def test_the_concurrency_refusal_gives_up_with_nothing_started(emu: Any) -> None:
    with make_client(emu, max_retries=1) as wiro:
        wiro.model("wiro/text-to-image")
        emu.faults.business_error(path="Run", code=96, times=5)
        with pytest.raises(RateLimitError) as info:
            wiro.run("wiro/text-to-image", prompt="refused")
    assert not info.value.maybe_submitted and "Nothing was started" in str(info.value)
    assert wj.tasks(1)[0].status == "not_submitted"


# -- reads retry; Retry-After ------------------------------------------------------------------------
def test_retry_after_forms() -> None:
    assert retry_after("3") == 3
    assert retry_after(" 0.5 ") == 0.5
    assert retry_after("-4") == 0
    assert retry_after(None) is None and retry_after("") is None
    for junk in ("soon", "NaN", "inf", "1e999", "Wed, 99 Foo 2015", "[]"):
        assert retry_after(junk) is None, junk
    assert 0 <= (retry_after("Wed, 21 Oct 2015 07:28:00 GMT") or 0) <= 1  # a date in the past: now
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 20))
    assert 15 <= (retry_after(future) or 0) <= 21


def test_retry_after_prose_on_task_detail_keeps_the_result(emu: Any) -> None:
    with make_client(emu) as wiro:
        task = wiro.run("wiro/text-to-image", prompt="soon", width=256, height=256, wait=False)
        emu.faults.http_error("Task/Detail", status=503, times=2, retry_after="soon")
        task.wait(30)
    assert task.ok and task.outputs


# -- size caps ------------------------------------------------------------------------------------
def test_an_oversized_answer_is_a_clear_error(emu: Any) -> None:
    emu.faults.respond("Tool/List", body=b'{"result": true, "tool": [], "pad": "' + b"x" * 300_000 + b'"}')
    with make_client(emu, max_response_bytes=100_000) as wiro, pytest.raises(WiroError) as info:
        wiro.models()
    assert "larger than 100,000 bytes" in str(info.value) and "max_response_bytes" in str(info.value)


def test_an_oversized_server_sent_event_is_a_clear_error(emu: Any) -> None:
    event = "data: " + json.dumps({"event": "message", "answer": "y" * 300_000, "conversation_id": "c"}) + "\n\n"
    emu.faults.respond("dify:chat-messages", body=event, content_type="text/event-stream")
    with pytest.raises(WiroError) as info:
        dify_chat(emu, max_response_bytes=100_000).send("big")
    assert "100,000 characters" in str(info.value)


def test_an_endless_sse_line_is_cut_at_the_cap(emu: Any) -> None:
    emu.faults.respond("dify:chat-messages", body="data: " + "z" * 500_000, content_type="text/event-stream")
    with pytest.raises(WiroError, match="100,000 characters"):
        dify_chat(emu, max_response_bytes=100_000).send("endless")


def test_an_oversized_socket_message_falls_back_to_polling(emu: Any) -> None:
    events: list[wj.TaskEvent] = []
    with make_client(emu, max_response_bytes=200_000, socket_silence=1.0) as wiro:
        emu.pause_queue()  # the padded frame must go to a registered socket, so hold the task until it is
        task = wiro.run("wiro/text-to-image", prompt="big frame", width=256, height=256, on_event=events.append, wait=False)
        assert emu.wait_registered(task.token)
        emu.faults.oversized_socket_frame(400_000, times=1)
        emu.resume_queue()
        task.wait(30)
    assert task.ok
    lost = [e for e in events if e.kind == "socket_lost"]
    assert lost and "larger than 200,000 bytes" in str(lost[0].message)


class RecordingTransport:
    """A real httpx transport (it talks to the emulator) that notes each request's method and path."""

    def __init__(self) -> None:
        import httpx

        self.inner = httpx.AsyncHTTPTransport()
        self.seen: list[tuple[str, str]] = []

    async def handle_async_request(self, request: Any) -> Any:
        self.seen.append((request.method, request.url.path))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_the_clients_transport_carries_api_calls_and_downloads(emu: Any, tmp_path: Any) -> None:
    transport = RecordingTransport()
    with make_client(emu, transport=transport) as wiro:  # type: ignore[arg-type]
        task = wiro.run("wiro/text-to-image", prompt="through my transport", width=256, height=256)
        [path] = task.save(tmp_path)
    output_path = task.outputs[0].url.split("://", 1)[1].split("/", 1)[1]
    assert ("POST", "/v1/Run/wiro/text-to-image") in transport.seen
    assert ("GET", "/" + output_path) in transport.seen and path.stat().st_size > 0  # the download too
    chat_transport = RecordingTransport()
    dify_chat(emu, transport=chat_transport).send("through my transport too")  # type: ignore[arg-type]
    assert ("POST", "/dify/v1/chat-messages") in chat_transport.seen
