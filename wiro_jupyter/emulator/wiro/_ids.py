"""Identifiers and timestamps in the shapes the real server uses (docs/protocol.md, Wiro §5, §6, §10)."""

from __future__ import annotations

import secrets
import string
import time

_ALNUM = string.ascii_letters + string.digits


def random_token(length: int = 30) -> str:
    """Socket access tokens and access keys: 30 alphanumerics (Wiro §5, §10)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def hex_id() -> str:
    return secrets.token_hex(16)  # file/folder ids: 32 hex (Wiro §6)


def cdn_folder() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(8))  # cdn1.wiro.ai/<8 dash-joined 8-hex groups>/ (Wiro §6)


def unix_now() -> str:
    return str(int(time.time()))
