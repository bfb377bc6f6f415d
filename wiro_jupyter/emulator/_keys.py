"""The keys of an emulator: fresh random ones for each instance unless given, so no key is ever published."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


def _fresh(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(18)


@dataclass(frozen=True)
class Keys:
    api_key: str  # the key-only Wiro project
    signature_key: str  # the Wiro project that requires signatures
    signature_secret: str
    dify_chat_key: str  # the Dify apps: "chat", "agent-chat", "advanced-chat"
    dify_agent_key: str
    dify_chatflow_key: str

    @classmethod
    def generate(cls, *, api_key: str | None = None, signature_key: str | None = None,
                 signature_secret: str | None = None, dify_chat_key: str | None = None,
                 dify_agent_key: str | None = None, dify_chatflow_key: str | None = None) -> Keys:
        """The given keys, and a fresh random one with a recognisable prefix for each key not given."""
        keys = cls(
            api_key=api_key or _fresh("wiro-demo-"),
            signature_key=signature_key or _fresh("wiro-signed-"),
            signature_secret=signature_secret or _fresh("wiro-secret-"),
            dify_chat_key=dify_chat_key or _fresh("app-"),
            dify_agent_key=dify_agent_key or _fresh("app-"),
            dify_chatflow_key=dify_chatflow_key or _fresh("app-"),
        )
        if keys.api_key == keys.signature_key:
            raise ValueError("api_key and signature_key must differ")
        if len({keys.dify_chat_key, keys.dify_agent_key, keys.dify_chatflow_key}) != 3:
            raise ValueError("the three Dify app keys must differ")
        return keys
