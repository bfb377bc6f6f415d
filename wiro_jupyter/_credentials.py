"""The saved credentials (`%wiro login`): `$XDG_CONFIG_HOME/wiro-jupyter/credentials.json`.

(`~/.config/wiro-jupyter/credentials.json` when XDG_CONFIG_HOME is not set.) The
directory is created with mode 0700 and the file written with mode 0600 (owner
only), atomically: it is written under a temporary name with those permissions
from the start, then renamed into place, so no other user can ever read a
partial or world-readable copy.

`Settings.resolve()` falls back to this file when neither arguments nor
WIRO_API_KEY give a key, so a saved login serves scripts as well as notebooks.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["credentials_path", "delete_credentials", "load_credentials", "save_credentials"]


def credentials_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base).expanduser() if base.strip() else Path.home() / ".config"
    return root / "wiro-jupyter" / "credentials.json"


def save_credentials(api_key: str, api_secret: str | None = None) -> Path:
    """Write key (and secret) readable by the owner only; returns the path."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(OSError):  # an existing directory keeps its mode otherwise
        os.chmod(path.parent, 0o700)
    payload = {"api_key": api_key}
    if api_secret:
        payload["api_secret"] = api_secret
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            json.dump(payload, sink)
        with contextlib.suppress(OSError):
            os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


def load_credentials() -> tuple[dict[str, str], str | None]:
    """({"api_key": …, "api_secret": …}, warning) from the file; ({}, None) when there is none.

    A file that others may read is still used, with a warning telling how to fix it.
    """
    path = credentials_path()
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return {}, None
    except OSError as exc:
        return {}, f"wiro-jupyter: could not read {path}: {exc.strerror}."
    try:
        data = json.loads(text)
    except ValueError:
        return {}, f"wiro-jupyter: {path} is not valid JSON; run %wiro login again."
    if not isinstance(data, dict) or not isinstance(data.get("api_key"), str) or not data["api_key"]:
        return {}, f"wiro-jupyter: {path} has no api_key; run %wiro login again."
    result = {"api_key": data["api_key"]}
    if isinstance(data.get("api_secret"), str) and data["api_secret"]:
        result["api_secret"] = data["api_secret"]
    warning = None
    with contextlib.suppress(OSError):
        if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
            warning = f"wiro-jupyter: {path} can be read by other users; fix it with: chmod 600 {path}"
    return result, warning


def delete_credentials() -> bool:
    path = credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
