"""Whose account and which server: `%wiro login`, `logout`, `config` and `emulator`, and the key checks.

`%wiro login` keeps the key and secret for this kernel session (in the environment, where every new
client reads them) and may save them (owner-only file) for `%load_ext` to read later
(`credentials_from_file`). `%wiro emulator start` points the session at a local emulator and
`stop` restores the environment it found. `%wiro config` shows what is in effect, secrets masked, and
`%wiro config reuse=on|off` sets whether runs reuse identical finished tasks by default.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ._display import provenance
from ._parse import assignments, exclusive, usage

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .._client import Wiro
    from ..emulator import Emulator

__all__ = ["STATE", "config", "credentials_from_file", "emulator", "login", "logout", "require_client"]


@dataclass
class _State:
    key_source: str = "environment"  # where the key in effect came from, for %wiro config
    emulator_env: dict[str, str | None] | None = None  # the environment before %wiro emulator start


STATE = _State()
_ENV_NAMES = ("WIRO_API_KEY", "WIRO_API_SECRET", "WIRO_API_URL", "WIRO_SOCKET_URL", "WBOT_API_URL", "WBOT_API_KEY")


def require_client() -> Wiro:
    """The session's client; a missing key is a short error with the fix (not a 401 later)."""
    from .._client import default_client
    from .._config import Settings
    from .._exceptions import AuthenticationError

    if not Settings.resolve().api_key:
        raise AuthenticationError(
            "No Wiro API key is set.",
            hint="Run %wiro login (it asks for the key), set WIRO_API_KEY, "
            "or try %wiro emulator start for synthetic models without an account.",
        )
    return default_client()


def credentials_from_file() -> None:
    """At load: without WIRO_API_KEY in the environment, use the key saved by `%wiro login`."""
    from .._credentials import credentials_path, load_credentials
    from .._exceptions import register_secret

    if os.environ.get("WIRO_API_KEY"):
        return
    found, warning = load_credentials()
    if warning:
        sys.stderr.write(warning + "\n")
    if not found:
        return
    register_secret(found["api_key"])
    register_secret(found.get("api_secret"))
    os.environ["WIRO_API_KEY"] = found["api_key"]
    if found.get("api_secret"):
        os.environ["WIRO_API_SECRET"] = found["api_secret"]
    STATE.key_source = str(credentials_path())


@magic_arguments("wiro login")
@exclusive()
@argument("--store", action="store_true", help="also save them to the credentials file")
@argument("--no-store", action="store_true", help="do not ask about saving them")
def login(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Ask for the API key and secret (getpass); keep them for this kernel session."""
    import getpass

    from .._config import Settings, mask
    from .._credentials import credentials_path, save_credentials
    from .._exceptions import register_secret

    key = getpass.getpass("Wiro API key: ").strip()
    if not key:
        raise UsageError("No API key entered; nothing changed.")
    register_secret(key)
    secret = getpass.getpass("Wiro API secret (leave empty for an API-key-only project): ").strip()
    register_secret(secret)
    os.environ["WIRO_API_KEY"] = key
    if secret:
        os.environ["WIRO_API_SECRET"] = secret
    else:
        os.environ.pop("WIRO_API_SECRET", None)
    STATE.key_source = "%wiro login"
    store = bool(args.store)
    if not store and not args.no_store:
        answer = input(f"Save them in {credentials_path()} (readable only by you)? [y/N] ")
        store = answer.strip().lower() in ("y", "yes")
    settings = Settings.resolve()
    print(f"Logged in for this kernel session: key {mask(key)}, {settings.auth_mode} authentication, {settings.api_url}.")
    if store:
        path = save_credentials(key, secret or None)
        STATE.key_source = f"%wiro login (saved in {path})"
        print(f"Saved in {path} (mode 600); %load_ext wiro_jupyter reads it when WIRO_API_KEY is not set.")
    if STATE.emulator_env is not None:
        print("Note: this session still points at the local emulator; %wiro emulator stop switches back.")


@magic_arguments("wiro logout")
@argument("--forget", action="store_true", help="also delete the credentials file")
def logout(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Forget the key and secret of this session (and delete the credentials file with --forget)."""
    from .._credentials import credentials_path, delete_credentials

    os.environ.pop("WIRO_API_KEY", None)
    os.environ.pop("WIRO_API_SECRET", None)
    STATE.key_source = "environment"
    print("Forgot the API key and secret of this session.")
    if args.forget:
        if delete_credentials():
            print(f"Deleted {credentials_path()}.")
        else:
            print(f"There was no {credentials_path()}.")


_SWITCH = {"on": True, "off": False}


@magic_arguments("wiro config")
@argument("settings", nargs="*", metavar="reuse=on|off", help="set a default of this kernel session")
def config(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """What is in effect: URLs, auth mode, key/secret (masked), journal, emulator, reuse. With reuse=on,
    %%wiro run (and Wiro().run) reuses an identical finished task from the journal instead of paying again."""
    from .._tasks import REUSE_ENV

    settings = assignments(args.settings, usage(config))
    if not settings:
        _show_config()
        return
    for name, value in settings.items():
        if name != "reuse" or value.lower() not in _SWITCH:
            raise UsageError(f"%wiro config sets reuse=on or reuse=off; {name}={value} is not a setting.\n{usage(config)}")
        on = _SWITCH[value.lower()]
        os.environ[REUSE_ENV] = "1" if on else "0"
        print(
            "Runs of this session reuse an identical finished task from the journal (--reuse is the default)."
            if on
            else "Runs of this session start a new task every time (unless run with --reuse)."
        )


def _config_rows() -> list[tuple[str, str]]:
    from .._config import Settings, mask
    from .._credentials import credentials_path
    from .._journal import Journal
    from .._tasks import reuse_by_default

    settings = Settings.resolve()
    emulator = _running_emulator()
    source = STATE.key_source if settings.api_key else "-"
    if emulator is not None and settings.api_url == emulator.api_url:
        where = f"the local emulator at {emulator.base_url} (synthetic outputs)"
    elif emulator is not None:
        where = f"running at {emulator.base_url}, not in use"
    else:
        where = "not running"
    creds = credentials_path()
    return [
        ("API URL", settings.api_url),
        ("socket URL", settings.socket_url),
        ("authentication", settings.auth_mode if settings.api_key else "none (no key)"),
        ("API key", f"{mask(settings.api_key)}" + (f" (from {source})" if settings.api_key else "")),
        ("API secret", mask(settings.api_secret)),
        ("credentials file", f"{creds} ({'present' if creds.exists() else 'absent'})"),
        ("journal", str(Journal().path)),
        ("reuse", "on: identical finished tasks are reused" if reuse_by_default() else "off"),
        ("emulator", where),
        ("Wbot URL", os.environ.get("WBOT_API_URL") or "(not set)"),
        ("Wbot key", mask(os.environ.get("WBOT_API_KEY"))),
    ]


def _show_config() -> None:
    from IPython.display import display

    from .._exceptions import redact
    from .._render import table_bundle

    rows = [(name, redact(value)) for name, value in _config_rows()]  # before escaping, so every secret is found
    text = "\n".join(f"{name:<17} {value}" for name, value in rows)
    display(table_bundle(("setting", "value"), rows, text), raw=True)


def _running_emulator() -> Emulator | None:
    from .._emulated import running_emulator

    return running_emulator()


@magic_arguments("wiro emulator")
@argument("action", nargs="?", default="start", choices=["start", "stop", "status"], metavar="start|stop|status")
@argument("--delay", type=float, default=0.15, metavar="S", help="seconds between task stages")
def emulator(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Start/stop the local emulator in this kernel (synthetic outputs, no account)."""
    if args.action == "status":
        running = _running_emulator()
        print(f"The local emulator runs at {running.base_url}." if running else "The local emulator is not running.")
    elif args.action == "stop":
        _stop_emulator()
    else:
        _start_emulator(args.delay)


def _stop_emulator() -> None:
    from .._config import Settings
    from .._emulated import stop_emulator

    if _running_emulator() is None:
        print("The local emulator is not running.")
        return
    stop_emulator()
    previous = STATE.emulator_env or {}
    for name in _ENV_NAMES:
        value = previous.get(name)
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    STATE.emulator_env = None
    print(f"Stopped the local emulator; this session uses {Settings.resolve().api_url} again.")


def _start_emulator(delay: float) -> None:
    from IPython.display import display

    from .._emulated import use_emulator
    from .._render import escape, html_bundle

    if STATE.emulator_env is None:
        STATE.emulator_env = {name: os.environ.get(name) for name in _ENV_NAMES}
    running = use_emulator(stage_delay=delay, quiet=True)
    STATE.key_source = "%wiro emulator start"
    text = (
        f"Local Wiro emulator at {running.base_url}: models and outputs are SYNTHETIC (no account, no network, "
        "no cost). Remove %wiro emulator start (or run %wiro emulator stop) to use the real service."
    )
    notice = (
        '<div style="border-left:4px solid #e0a800;background-color:#fff8e1;color:#5d4200;padding:6px 10px">'
        f"&#9888; <b>Local Wiro emulator</b> at <code>{escape(running.base_url)}</code>: "
        "models and outputs are <b>synthetic</b> (no account, no network, no cost). "
        "Remove <code>%wiro emulator start</code> (or run <code>%wiro emulator stop</code>) "
        "to use the real service.</div>"
    )
    display(html_bundle(notice, text), raw=True, metadata=provenance(emulator=True))
