"""What the Dify emulator remembers: its three apps, their conversations and messages, uploads, tool files.

References like "Dify §4" are sections of docs/protocol.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from .._faults import Faults
from ._errors import unauthorized

DEFAULT_USER = "DEFAULT-USER"  # whom a request without `user` acts for


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Message:
    id: str
    conversation_id: str
    query: str
    inputs: dict[str, Any]
    created_at: int
    answer: str = ""
    status: str = "normal"
    error: str | None = None
    feedback: dict[str, Any] | None = None
    message_files: list[dict[str, Any]] = field(default_factory=list)
    agent_thoughts: list[dict[str, Any]] = field(default_factory=list)
    retriever_resources: list[dict[str, Any]] = field(default_factory=list)
    parent_message_id: str | None = None

    def as_item(self) -> dict[str, Any]:
        """An item of GET /messages (Dify §4)."""
        return {
            "id": self.id,
            "conversation_id": self.conversation_id,
            "parent_message_id": self.parent_message_id,
            "inputs": self.inputs,
            "query": self.query,
            "answer": self.answer,
            "status": self.status,
            "error": self.error,
            "message_files": self.message_files,
            "feedback": self.feedback,
            "retriever_resources": self.retriever_resources,
            "agent_thoughts": self.agent_thoughts,
            "created_at": self.created_at,
        }


@dataclass
class Conversation:
    id: str
    user: str
    name: str
    inputs: dict[str, Any]
    created_at: int
    updated_at: int
    messages: list[str] = field(default_factory=list)

    def as_item(self) -> dict[str, Any]:
        """An item of GET /conversations (Dify §4)."""
        return {
            "id": self.id,
            "name": self.name,
            "inputs": self.inputs,
            "status": "normal",
            "introduction": "",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass
class App:
    key: str
    name: str
    mode: str  # "chat", "agent-chat" or "advanced-chat" (chatflow)
    description: str
    suggested: bool
    opening_statement: str
    conversations: dict[str, Conversation] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)

    def conversation_of(self, cid: str, user: str) -> Conversation | None:
        """The conversation, if it exists and belongs to `user` (anyone else gets "not found")."""
        conversation = self.conversations.get(cid)
        return conversation if conversation is not None and conversation.user == user else None

    def message_of(self, mid: str, user: str) -> Message | None:
        message = self.messages.get(mid)
        if message is None:
            return None
        return message if self.conversation_of(message.conversation_id, user) is not None else None


class DifyWorld:
    """Everything the Dify emulator remembers: apps (by key), uploads, tool files, stop flags."""

    def __init__(self, *, chat_key: str, agent_key: str, chatflow_key: str, faults: Faults,
                 delta_delay: float = 0.0) -> None:
        apps = [
            App(chat_key, "Echo (emulated chat app)", "chat", "Repeats what you say and remembers the conversation.",
                suggested=True, opening_statement="Hi! I repeat what you say, and I remember the conversation."),
            App(agent_key, "Painter (emulated agent)", "agent-chat", "An agent with one tool that draws a picture.",
                suggested=False, opening_statement="Tell me what to draw."),
            App(chatflow_key, "Flow (emulated chatflow)", "advanced-chat", "A three-node chatflow: start, LLM, answer.",
                suggested=True, opening_statement=""),
        ]
        self.apps: dict[str, App] = {app.key: app for app in apps}
        self.faults = faults  # the emulator's one set of knobs; streams take `drop_stream` from it
        self.uploads: dict[str, dict[str, Any]] = {}
        self.tool_files: dict[str, bytes] = {}
        self.stopped: set[str] = set()  # task ids a client asked to stop
        self.delta_delay = delta_delay
        self.slow_delay = 0.02
        #: "asc" (current Dify: each page oldest first) or "desc" (older Dify: newest first).
        self.messages_order = "asc"
        self._secret = secrets.token_bytes(16)
        self._clock = 0
        self._lock = threading.Lock()

    def app_for(self, request: Request) -> App | Response:
        """The app whose key the request's bearer token is, or the 401 answer."""
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return unauthorized("Authorization header must be provided and start with 'Bearer'")
        app = self.apps.get(header[7:].strip())
        return app if app is not None else unauthorized()

    def now(self) -> int:
        """Epoch seconds, strictly increasing, so that ordering by created_at is unambiguous."""
        with self._lock:
            self._clock = max(self._clock + 1, int(time.time()))
            return self._clock

    # Signed file URLs, like Dify's file-preview links (Dify §4).

    def sign(self, file_id: str, timestamp: str, nonce: str) -> str:
        digest = hmac.new(self._secret, f"file-preview|{file_id}|{timestamp}|{nonce}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")

    def signed_query(self, file_id: str) -> str:
        timestamp, nonce = str(int(time.time())), secrets.token_hex(8)
        return f"timestamp={timestamp}&nonce={nonce}&sign={self.sign(file_id, timestamp, nonce)}"

    def check_signature(self, request: Request, file_id: str) -> bool:
        q = request.query_params
        expected = self.sign(file_id, q.get("timestamp", ""), q.get("nonce", ""))
        return hmac.compare_digest(expected, q.get("sign", ""))
