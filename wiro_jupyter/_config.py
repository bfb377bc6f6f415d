"""Where credentials and URLs come from: arguments first, then the environment.

`Settings` never shows its secrets: its repr masks them, and they are
registered with the redactor so that no exception message can carry them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ._exceptions import register_secret

DEFAULT_API_URL = "https://api.wiro.ai/v1"
DEFAULT_SOCKET_URL = "wss://socket.wiro.ai/v1"


def mask(value: str | None) -> str:
    """`abcd…wxyz`-style mask that is safe to print: never more than 4 characters."""
    if not value:
        return "(not set)"
    if len(value) <= 8:
        return "****"
    return f"{value[:2]}…{value[-2:]}"


@dataclass(frozen=True)
class Settings:
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    socket_url: str = DEFAULT_SOCKET_URL

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        api_secret: str | None = None,
        api_url: str | None = None,
        socket_url: str | None = None,
    ) -> Settings:
        if api_key is None and not os.environ.get("WIRO_API_KEY"):
            from ._credentials import load_credentials

            saved, _ = load_credentials()  # a saved `%wiro login`, if any
            api_key = saved.get("api_key")
            api_secret = api_secret if api_secret is not None else saved.get("api_secret")
        settings = cls(
            api_key=api_key if api_key is not None else os.environ.get("WIRO_API_KEY") or None,
            api_secret=api_secret if api_secret is not None else os.environ.get("WIRO_API_SECRET") or None,
            api_url=(api_url or os.environ.get("WIRO_API_URL") or DEFAULT_API_URL).rstrip("/"),
            socket_url=(socket_url or os.environ.get("WIRO_SOCKET_URL") or DEFAULT_SOCKET_URL).rstrip("/"),
        )
        register_secret(settings.api_key)
        register_secret(settings.api_secret)
        return settings

    @property
    def auth_mode(self) -> str:
        return "signature" if self.api_secret else "api-key"

    def __repr__(self) -> str:
        return (
            f"Settings(api_key={mask(self.api_key)}, api_secret={mask(self.api_secret)}, "
            f"api_url={self.api_url!r}, socket_url={self.socket_url!r})"
        )
