"""Credentials go only where they belong: the redactor's spellings, private files, recovery."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from conftest import make_client
from test_transport import Listener

import wiro_jupyter as wj
from wiro_jupyter import WiroError
from wiro_jupyter._exceptions import redact, register_secret
from wiro_jupyter._journal import Journal


def test_the_redactor_catches_encoded_spellings() -> None:
    secret = 's3cr+t/key=with&odd"chars'
    register_secret(secret)
    for spelling in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1], json.dumps({"k": secret})):
        shown = redact(f"the server echoed {spelling} back")
        assert secret not in shown and spelling not in shown, spelling
        assert "****" in shown


def test_errors_never_show_an_encoded_key(emu: Any) -> None:
    key = "wrong key/with+chars"
    emu.faults.respond(
        "Tool/List", status=401, body={"result": False, "errors": [{"code": 0, "message": f"key {quote(key)} unknown"}]}
    )
    with make_client(emu, api_key=key) as wiro, pytest.raises(WiroError) as info:
        wiro.models()
    assert quote(key) not in str(info.value) and key not in repr(info.value)


def test_wiro_home_and_journal_are_private_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "umask", os.umask)  # restored after the test
    old = os.umask(0o022)  # a common default: would give 0755 / 0644
    try:
        home = tmp_path / "deep" / "wiro-home"
        monkeypatch.setenv("WIRO_HOME", str(home))
        journal = Journal()
        journal.begin("wiro/x", {"prompt": "private"}, "http://127.0.0.1:1/v1")
    finally:
        os.umask(old)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for path in home.iterdir():  # the database and SQLite's -wal / -shm files
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_recover_never_sends_credentials_to_a_journaled_url(emu: Any, listener: Listener) -> None:
    Journal().begin("wiro/text-to-image", {"prompt": "x"}, f"{listener.url}/v1")
    entry = wj.tasks(1)[0]
    Journal().submitted(entry.rowid, "424242", "token424242")
    with make_client(emu) as wiro, pytest.raises(WiroError) as info:
        wj.recover("424242", client=wiro)
    text = str(info.value)
    assert listener.url in text and emu.api_url in text and "api_url=" in text
    assert listener.requests == []


def test_recover_of_an_emulator_task_says_how_to_point_at_it(emu: Any) -> None:
    Journal().begin("wiro/text-to-image", {}, "http://127.0.0.1:9/v1")
    entry = wj.tasks(1)[0]
    Journal().submitted(entry.rowid, "515151", "token515151")
    with make_client(emu) as wiro, pytest.raises(WiroError, match="local emulator keeps its tasks only while it runs"):
        wj.recover("515151", client=wiro)


@pytest.fixture
def listener() -> Any:
    server = Listener()
    yield server
    server.close()
