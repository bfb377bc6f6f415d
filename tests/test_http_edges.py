"""Edge cases the emulator cannot produce, with respx (mocked transport of httpx, not of our code)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import httpx
import pytest
import respx

from wiro_jupyter import AuthenticationError, ServerError, Wiro, WiroConnectionError, WiroError
from wiro_jupyter._transport import retry_after as retry_after_seconds

API = "https://wiro.test/v1"


def client(**kwargs: Any) -> Wiro:
    return Wiro(api_key="edge-case-key-123456", api_url=API, max_retries=2, **kwargs)


def test_retry_after_forms() -> None:
    assert retry_after_seconds("3") == 3
    assert retry_after_seconds(None) is None
    assert 0 <= (retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") or 0) <= 1


@respx.mock
def test_non_json_answer_is_a_server_error() -> None:
    respx.post(f"{API}/Tool/List").mock(return_value=httpx.Response(200, text="<html>maintenance</html>"))
    with client() as wiro, pytest.raises(ServerError) as info:
        wiro.models()
    assert "not JSON" in str(info.value) and "maintenance" in str(info.value)


@respx.mock
def test_401_with_html_body_from_a_proxy() -> None:
    respx.post(f"{API}/Tool/List").mock(return_value=httpx.Response(401, text="<html>denied</html>"))
    with client() as wiro, pytest.raises(AuthenticationError) as info:
        wiro.models()
    assert "HTTP 401" in str(info.value) and "WIRO_API_KEY" in str(info.value)  # what happened, what to do
    assert "edge-case-key-123456" not in str(info.value)


@respx.mock
def test_run_timeout_is_not_retried_and_says_to_check() -> None:
    respx.post(f"{API}/Tool/Detail").mock(
        return_value=httpx.Response(
            200,
            json={"result": True, "errors": [], "tool": [{"slugowner": "o", "slugproject": "m", "parameters": []}]},
        )
    )
    run = respx.post(f"{API}/Run/o/m").mock(side_effect=httpx.ReadTimeout("slow"))
    with client() as wiro, pytest.raises(WiroConnectionError) as info:
        wiro.run("o/m")
    assert run.call_count == 1
    assert "charged twice" in str(info.value)


@respx.mock
def test_connect_error_on_run_is_retried_because_nothing_was_sent() -> None:
    respx.post(f"{API}/Tool/Detail").mock(
        return_value=httpx.Response(
            200,
            json={"result": True, "errors": [], "tool": [{"slugowner": "o", "slugproject": "m", "parameters": []}]},
        )
    )
    run = respx.post(f"{API}/Run/o/m").mock(
        side_effect=[
            httpx.ConnectError("refused"),
            httpx.Response(200, json={"result": False, "errors": [{"code": 97, "message": "Insufficient balance"}]}),
        ]
    )
    with client() as wiro, pytest.raises(WiroError) as info:
        wiro.run("o/m")
    assert run.call_count == 2
    assert "Insufficient balance" in str(info.value) and "credit" in str(info.value)


def test_async_events_iterator(emu: Any) -> None:
    import wiro_jupyter as wj

    async def main() -> list[str]:
        async with wj.AsyncWiro(api_key=emu.api_key, api_url=emu.api_url, socket_url=emu.socket_url) as wiro:
            task = await wiro.run("wiro/chat-llm", prompt="async events", wait=False)
            return [event.kind async for event in task.events()]

    kinds = asyncio.run(main())
    assert kinds[-1] == "done"


def test_cli_emulator_prints_urls() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "wiro_jupyter.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or "Ctrl-C" not in lines[-1]:  # ends when the banner is complete, or at EOF
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
    finally:
        proc.terminate()
        proc.wait(10)
    text = "".join(lines)
    assert "http://127.0.0.1:" in text and "ws://127.0.0.1:" in text and "\nAPI key:           wiro-demo-" in text
