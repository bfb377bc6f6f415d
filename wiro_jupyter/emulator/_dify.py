"""A Dify-compatible chat server (the Service API of chat apps), for tests and the demo.

A separate world from the client: nothing here imports `wiro_jupyter._*`, so a
wire-format mistake on either side shows up as a failing test instead of
cancelling out. The wire format follows Dify's source: `data: {json}\\n\\n`
frames with no `event:` line, a bare `event: ping\\n\\n` keep-alive, the
stream ends when the connection closes, errors are `{code, message, status}`.

Three apps, one API key each:

- `DIFY_CHAT_KEY`, mode "chat": echoes the query (verbatim, in Markdown) and
  remembers the conversation. Trigger words in the query: "moderate" →
  `message_replace`; "fail mid-stream" → deltas then an `error` event;
  "quirk" → an assistant file, then text deltas sent as `message_file`
  events (Dify's bug since PR #22988); "slow" → many deltas with delays, for
  stop(); "speak" → `tts_message` audio after `message_end`.
- `DIFY_AGENT_KEY`, mode "agent-chat": streaming only; an agent thought re-sent
  three times as it changes, a tool that draws a PNG (served at a relative,
  signed `/files/tools/<id>.png` URL), `agent_message` deltas.
- `DIFY_CHATFLOW_KEY`, mode "advanced-chat": workflow and node events around the
  answer, `workflow_finished` after `message_end`. Trigger words: "think" →
  `reasoning_chunk`; "iterate" / "loop" → iteration / loop events;
  "text_chunk" → deltas as `text_chunk`; "workflow fail" → a failed run.

Mounting: the app serves the API both at its root (mount it at `<prefix>/v1`)
and under `/v1` (mount it at `<prefix>`), and the signed file URLs under
`/files/...` either way, so relative URLs resolve against "base URL minus /v1".

Faults (bounded, consumed as requests arrive): `world.faults.http_error(429, times=1)`,
`http_error(502)` (an HTML page, like a proxy), `drop_stream()` (the connection
breaks mid-answer). The world is `app.state.dify` (and `state.dify` when an
emulator object is given); `state.dify_faults` is its fault list.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "DIFY_AGENT_KEY",
    "DIFY_CHATFLOW_KEY",
    "DIFY_CHAT_KEY",
    "DifyFaults",
    "DifyWorld",
    "create_app",
    "http_error",
]

DIFY_CHAT_KEY = "app-emuChat7d1f0c2b9a4e5f60"
DIFY_AGENT_KEY = "app-emuAgent3b8e5a61c0d2e4f"
DIFY_CHATFLOW_KEY = "app-emuFlow9c4d2e7f1a06b3c8"

PING = "event: ping\n\n"
_UPLOAD_LIMITS = {"image": 10 * 1024 * 1024, "audio": 50 * 1024 * 1024, "video": 100 * 1024 * 1024}
_DEFAULT_LIMIT = 15 * 1024 * 1024
_BLOCKED_EXTENSIONS = {"exe", "bat", "cmd", "com", "scr", "msi", "dll", "sh"}
_FILE_TYPES = {"image", "document", "audio", "video", "custom"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_DEFAULT_USER = "DEFAULT-USER"
_last_world: DifyWorld | None = None


def _sse(payload: dict[str, Any]) -> str:
    # Compact JSON with raw UTF-8, one line, like Dify's orjson framing.
    return "data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def _chunks(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


def _new_id() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- state


@dataclass
class _Message:
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
class _Conversation:
    id: str
    user: str
    name: str
    inputs: dict[str, Any]
    created_at: int
    updated_at: int
    messages: list[str] = field(default_factory=list)

    def as_item(self) -> dict[str, Any]:
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
class _App:
    key: str
    name: str
    mode: str
    description: str
    suggested: bool
    opening_statement: str
    conversations: dict[str, _Conversation] = field(default_factory=dict)
    messages: dict[str, _Message] = field(default_factory=dict)


@dataclass
class _Fault:
    kind: str  # "http" or "drop"
    status: int = 0
    times: int = 1
    path: str = "/chat-messages"
    retry_after: float | None = None


class DifyFaults:
    """Bounded faults for the next requests; each is consumed by the requests it hits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[_Fault] = []

    def http_error(
        self, status: int = 429, times: int = 1, *, path: str = "/chat-messages", retry_after: float | None = None
    ) -> None:
        """The next `times` requests to `path` get HTTP `status` (429/500 as Dify JSON, 502-504 as an HTML page)."""
        with self._lock:
            self._faults.append(_Fault("http", status=status, times=times, path=path, retry_after=retry_after))

    def drop_stream(self, times: int = 1) -> None:
        """The next `times` chat streams break after a few deltas (no message_end, connection cut)."""
        with self._lock:
            self._faults.append(_Fault("drop", times=times))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def take(self, kind: str, path: str = "/chat-messages") -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.kind == kind and fault.path == path and fault.times > 0:
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None


class DifyWorld:
    """Everything the Dify emulator remembers: apps, conversations, uploads, tool files, stop flags, faults."""

    def __init__(self, delta_delay: float = 0.0) -> None:
        self.apps: dict[str, _App] = {
            DIFY_CHAT_KEY: _App(
                DIFY_CHAT_KEY,
                "Echo (emulated chat app)",
                "chat",
                "Repeats what you say and remembers the conversation.",
                suggested=True,
                opening_statement="Hi! I repeat what you say, and I remember the conversation.",
            ),
            DIFY_AGENT_KEY: _App(
                DIFY_AGENT_KEY,
                "Painter (emulated agent)",
                "agent-chat",
                "An agent with one tool that draws a picture.",
                suggested=False,
                opening_statement="Tell me what to draw.",
            ),
            DIFY_CHATFLOW_KEY: _App(
                DIFY_CHATFLOW_KEY,
                "Flow (emulated chatflow)",
                "advanced-chat",
                "A three-node chatflow: start, LLM, answer.",
                suggested=True,
                opening_statement="",
            ),
        }
        self.faults = DifyFaults()
        self.uploads: dict[str, dict[str, Any]] = {}
        self.tool_files: dict[str, bytes] = {}
        self.stopped: set[str] = set()
        self.delta_delay = delta_delay
        self.slow_delay = 0.02
        #: "asc" (current Dify: each page oldest first) or "desc" (older Dify: newest first).
        self.messages_order = "asc"
        self._secret = secrets.token_bytes(16)
        self._clock = 0
        self._lock = threading.Lock()

    def now(self) -> int:
        """Epoch seconds, strictly increasing, so that ordering by created_at is unambiguous."""
        with self._lock:
            self._clock = max(self._clock + 1, int(time.time()))
            return self._clock

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


def http_error(status: int = 429, times: int = 1, *, path: str = "/chat-messages", world: DifyWorld | None = None) -> None:
    """Module-level helper: queue an HTTP fault on `world` (default: the last app created)."""
    target = world or _last_world
    if target is None:
        raise RuntimeError("No Dify emulator app exists yet; call create_app() first.")
    target.faults.http_error(status, times, path=path)


# --------------------------------------------------------------------------- responses


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status, headers=headers)


def _unauthorized(message: str = "Access token is invalid") -> JSONResponse:
    return _error(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="api"'})


def _fault_response(fault: _Fault) -> Response:
    headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else None
    if fault.status == 429:
        return _error(
            429,
            "too_many_requests",
            "Too many requests. Please try again later. The current maximum concurrent requests allowed is 1.",
            headers,
        )
    if fault.status in (502, 503, 504):
        reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[fault.status]
        page = (
            f"<html>\r\n<head><title>{fault.status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{fault.status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return HTMLResponse(page, status_code=fault.status, headers=headers)
    if fault.status >= 500:
        return _error(
            fault.status,
            "internal_server_error",
            "The server encountered an internal error and was unable to complete your request. "
            "Either the server is overloaded or there is an error in the application.",
            headers,
        )
    return _error(fault.status, "bad_request", "Injected fault.", headers)


def _usage(prompt: int, completion: int, latency: float) -> dict[str, Any]:
    prompt_price, completion_price = prompt * 0.000001, completion * 0.000002
    return {
        "prompt_tokens": prompt,
        "prompt_unit_price": "0.001",
        "prompt_price_unit": "0.001",
        "prompt_price": f"{prompt_price:.7f}",
        "completion_tokens": completion,
        "completion_unit_price": "0.002",
        "completion_price_unit": "0.001",
        "completion_price": f"{completion_price:.7f}",
        "total_tokens": prompt + completion,
        "total_price": f"{prompt_price + completion_price:.7f}",
        "currency": "USD",
        "latency": round(latency, 3),
    }


def _png(seed: str) -> bytes:
    from PIL import Image, ImageDraw  # only when a tool draws

    h = hashlib.sha256(seed.encode()).digest()
    image = Image.new("RGB", (96, 96), (h[0], h[1], h[2]))
    ImageDraw.Draw(image).ellipse((20, 20, 76, 76), fill=(h[3], h[4], h[5]))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------- one turn


@dataclass
class _Turn:
    world: DifyWorld
    app: _App
    conversation: _Conversation
    message: _Message
    task_id: str
    user: str
    files_prefix: str
    user_files: list[dict[str, Any]]
    started: float = field(default_factory=time.monotonic)

    @property
    def envelope(self) -> dict[str, Any]:
        return {
            "conversation_id": self.conversation.id,
            "message_id": self.message.id,
            "created_at": self.message.created_at,
            "task_id": self.task_id,
        }

    @property
    def query(self) -> str:
        return self.message.query

    def has(self, word: str) -> bool:
        return word in self.query.lower()

    def stopped(self) -> bool:
        return self.task_id in self.world.stopped

    def event(self, name: str, **fields: Any) -> str:
        return _sse({"event": name, **self.envelope, **fields})

    def error_event(self, status: int, code: str, message: str) -> str:
        # In-stream errors carry no task_id.
        env = {k: v for k, v in self.envelope.items() if k != "task_id"}
        self.message.status, self.message.error = "error", message
        return _sse({"event": "error", **env, "status": status, "code": code, "message": message})

    def tool_file(self, prompt: str) -> dict[str, Any]:
        """Draw a PNG, keep it, and describe it the way Dify's message_end `files` does."""
        file_id = uuid.uuid4().hex
        data = _png(prompt)
        self.world.tool_files[file_id] = data
        url = f"{self.files_prefix}/files/tools/{file_id}.png?{self.world.signed_query(file_id)}"
        return {
            "related_id": _new_id(),
            "extension": ".png",
            "filename": f"{file_id}.png",
            "size": len(data),
            "mime_type": "image/png",
            "transfer_method": "tool_file",
            "type": "image",
            "url": url,
            "upload_file_id": None,
            "remote_url": "",
        }

    def remember_file(self, spec: dict[str, Any], belongs_to: str) -> None:
        self.message.message_files.append(
            {
                "id": spec["related_id"],
                "filename": spec["filename"],
                "type": spec["type"],
                "url": spec["url"],
                "mime_type": spec["mime_type"],
                "size": spec["size"],
                "transfer_method": spec["transfer_method"],
                "belongs_to": belongs_to,
                "upload_file_id": spec.get("upload_file_id"),
            }
        )

    def usage(self) -> dict[str, Any]:
        return _usage(12 + len(self.query.split()) * 2, len(self.message.answer.split()), time.monotonic() - self.started)

    def end(self, files: list[dict[str, Any]] | None, resources: list[dict[str, Any]] | None = None) -> str:
        self.message.retriever_resources = list(resources or [])
        self.conversation.updated_at = self.world.now()
        return self.event(
            "message_end",
            id=self.message.id,
            metadata={"annotation_reply": None, "retriever_resources": resources or [], "usage": self.usage()},
            files=files or None,
        )

    async def pause(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


def _compose_answer(turn: _Turn) -> str:
    """The chat app's deterministic Markdown answer."""
    conversation, query = turn.conversation, turn.query
    if turn.has("slow"):
        return "Counting slowly: " + " ".join(str(i) for i in range(1, 151)) + "."
    previous = [turn.app.messages[mid] for mid in conversation.messages if mid != turn.message.id]
    lines = [f"**Echo:** {query}", ""]
    if not previous:
        lines.append("This is the first turn of a new conversation.")
    else:
        lines.append(f'This is turn {len(previous) + 1} of this conversation; your previous message was: "{previous[-1].query}".')
    name = (turn.message.inputs or {}).get("name")
    if name:
        lines += ["", f"Hello, {name}!"]
    if turn.user_files:
        described = []
        for f in turn.user_files:
            if f["transfer_method"] == "remote_url":
                described.append(f"{f['type']} via remote_url ({f['url']})")
            else:
                described.append(f"{f['type']} via local_file ({f['filename']}, {f['size']} bytes)")
        lines += ["", "Files received: " + "; ".join(described) + "."]
    return "\n".join(lines)


_RESOURCES = [
    {
        "position": 1,
        "dataset_id": "5f0b3c1e-1111-4c3a-9d5e-0a1b2c3d4e5f",
        "dataset_name": "Emulator handbook",
        "document_id": "9a8b7c6d-2222-4e5f-8a9b-0c1d2e3f4a5b",
        "document_name": "echo.md",
        "segment_id": "1c2d3e4f-3333-4a5b-9c6d-7e8f9a0b1c2d",
        "score": 0.87,
        "content": "The emulated chat app repeats what you send and remembers the conversation.",
    }
]


async def _chat_stream(turn: _Turn) -> AsyncIterator[str]:
    world, msg = turn.world, turn.message
    answer = _compose_answer(turn)
    slow = turn.has("slow")
    delay = world.slow_delay if slow else world.delta_delay
    quirk = turn.has("quirk")
    files = list(turn.user_files)
    if quirk:
        spec = turn.tool_file(turn.query)
        turn.remember_file(spec, "assistant")
        files.append(spec)
        yield turn.event("message_file", id=spec["related_id"], type="image", belongs_to="assistant", url=spec["url"])
    drop = world.faults.take("drop")
    for i, delta in enumerate(_chunks(answer)):
        if turn.stopped():
            break
        if turn.has("fail mid-stream") and i == 3:
            yield turn.error_event(
                400, "completion_request_error", "[emulator] Model invoke error: the provider closed the connection."
            )
            return
        if drop is not None and i == 3:
            raise ConnectionAbortedError("emulated: the connection breaks mid-answer")
        msg.answer += delta
        name = "message_file" if quirk else "message"
        yield turn.event(name, id=msg.id, answer=delta, from_variable_selector=None)
        if i == 1:
            yield PING
        await turn.pause(delay)
    if turn.has("moderate") and not turn.stopped():
        msg.answer = "Sorry, I can't talk about that. (This answer was replaced by content moderation.)"
        yield turn.event("message_replace", answer=msg.answer, reason="output_moderation")
    yield turn.end(files, _RESOURCES)
    if turn.has("speak"):
        audio = b"ID3\x04\x00\x00\x00\x00\x00\x00" + hashlib.sha256(msg.answer.encode()).digest() * 8
        for start in range(0, len(audio), 100):
            yield turn.event("tts_message", audio=base64.b64encode(audio[start : start + 100]).decode())
        yield turn.event("tts_message_end", audio="")


async def _agent_stream(turn: _Turn) -> AsyncIterator[str]:
    msg = turn.message
    first, second = _new_id(), _new_id()
    tool_input = json.dumps({"draw_image": {"prompt": turn.query}})
    labels = {"draw_image": {"en_US": "Draw image", "zh_Hans": "画图"}}

    def thought(tid: str, position: int, **fields: Any) -> str:
        body = {"thought": "", "observation": "", "tool": "", "tool_labels": {}, "tool_input": "", "message_files": []}
        body.update(fields)
        return turn.event("agent_thought", id=tid, position=position, **body)

    yield thought(first, 1)
    yield turn.event("agent_message", id=msg.id, answer="")
    yield thought(first, 1, thought="I will draw it with the draw_image tool.", tool="draw_image",
                  tool_labels=labels, tool_input=tool_input)  # fmt: skip
    yield PING
    spec = turn.tool_file(turn.query)
    turn.remember_file(spec, "assistant")
    yield turn.event("message_file", id=spec["related_id"], type="image", belongs_to="assistant", url=spec["url"])
    observation = json.dumps(
        {"draw_image": "image has been created and sent to user already, you should tell user to check it now."}
    )
    # Older Dify re-sent a step with blank tool fields: clients must keep what they had.
    yield thought(first, 1, observation=observation, message_files=[spec["related_id"]])
    yield thought(second, 2)
    turns = len(turn.conversation.messages)
    answer = f"Here is your picture of: {turn.query}" + (f" (request {turns} in this chat)." if turns > 1 else ".")
    for delta in _chunks(answer):
        if turn.stopped():
            break
        msg.answer += delta
        yield turn.event("agent_message", id=msg.id, answer=delta)
        await turn.pause(turn.world.delta_delay)
    yield thought(second, 2, thought=msg.answer)
    created = msg.created_at
    msg.agent_thoughts = [
        {
            "id": first,
            "message_id": msg.id,
            "position": 1,
            "thought": "I will draw it with the draw_image tool.",
            "tool": "draw_image",
            "tool_labels": labels,
            "tool_input": tool_input,
            "observation": observation,
            "files": [spec["related_id"]],
            "created_at": created,
            "conversation_id": turn.conversation.id,
        },
        {
            "id": second,
            "message_id": msg.id,
            "position": 2,
            "thought": msg.answer,
            "tool": "",
            "tool_labels": {},
            "tool_input": "",
            "observation": "",
            "files": [],
            "created_at": created,
            "conversation_id": turn.conversation.id,
        },
    ]
    yield turn.end([*turn.user_files, spec])


async def _chatflow_stream(turn: _Turn) -> AsyncIterator[str]:
    msg, world = turn.message, turn.world
    run_id, workflow_id = _new_id(), "7e1c2d3f-4444-4b5c-8d6e-9f0a1b2c3d4e"
    created = msg.created_at
    nodes = {
        "start": ("1718000000001", "start", "Start"),
        "llm": ("1718000000002", "llm", "LLM"),
        "answer": ("1718000000003", "answer", "Answer"),
    }

    def wf(name: str, **data: Any) -> str:
        return turn.event(name, workflow_run_id=run_id, data=data)

    def node(name: str, key: str, index: int, previous: str | None, **extra: Any) -> str:
        node_id, node_type, title = nodes[key]
        data = {
            "id": _new_id(),
            "node_id": node_id,
            "node_type": node_type,
            "title": title,
            "index": index,
            "predecessor_node_id": previous,
            "inputs": {"sys.query": turn.query} if key == "start" else None,
            "created_at": created,
            "extras": {},
            "iteration_id": None,
            "loop_id": None,
            **extra,
        }
        return wf(name, **data)

    def finished(status: str, **extra: Any) -> dict[str, Any]:
        return {
            "status": status,
            "outputs": {"answer": msg.answer} if status == "succeeded" else None,
            "error": None,
            "elapsed_time": round(time.monotonic() - turn.started, 3),
            "execution_metadata": {},
            "finished_at": world.now(),
            "files": [],
            **extra,
        }

    yield wf("workflow_started", id=run_id, workflow_id=workflow_id, inputs=msg.inputs, created_at=created)
    yield node("node_started", "start", 1, None)
    yield node("node_finished", "start", 1, None, **finished("succeeded"))
    yield node("node_started", "llm", 2, nodes["start"][0])
    if turn.has("workflow fail"):
        error = "[emulator] LLM node failed: the model provider is unreachable."
        yield node("node_finished", "llm", 2, nodes["start"][0], **finished("failed", error=error))
        yield wf(
            "workflow_finished", id=run_id, workflow_id=workflow_id, status="failed", outputs=None, error=error,
            elapsed_time=0.01, total_tokens=0, total_steps=2, created_at=created, finished_at=world.now(),
            exceptions_count=0, files=[],
        )  # fmt: skip
        yield turn.error_event(400, "invalid_param", f"Run failed: {error}")
        return
    if turn.has("think"):
        for piece in ["The user wants an echo. ", "I will repeat the message."]:
            yield turn.event(
                "reasoning_chunk",
                data={"message_id": msg.id, "reasoning": piece, "node_id": nodes["llm"][0], "is_final": False},
            )
    for group in ("iteration", "loop"):
        if turn.has("iterate" if group == "iteration" else "loop"):
            base = {"id": _new_id(), "node_id": "1718000000009", "node_type": group, "title": group.title()}
            yield wf(f"{group}_started", **base, created_at=created, inputs={"items": [1, 2]})
            for index in (1, 2):
                yield wf(f"{group}_next", **base, index=index, created_at=created)
            yield wf(f"{group}_completed", **base, outputs={"count": 2}, status="succeeded", steps=2)
    answer = f"Flow answer: {turn.query}"
    text_chunk = turn.has("text_chunk")
    stopped = False
    for delta in _chunks(answer):
        if turn.stopped():
            stopped = True
            break
        msg.answer += delta
        if text_chunk:
            yield turn.event("text_chunk", data={"text": delta, "from_variable_selector": [nodes["llm"][0], "text"]})
        else:
            yield turn.event("message", id=msg.id, answer=delta, from_variable_selector=[nodes["llm"][0], "text"])
        await turn.pause(world.delta_delay)
    yield node("node_finished", "llm", 2, nodes["start"][0], **finished("succeeded"))
    yield node("node_started", "answer", 3, nodes["llm"][0])
    yield node("node_finished", "answer", 3, nodes["llm"][0], **finished("succeeded"))
    # Newer Dify: message_end first, workflow_finished after it.
    yield turn.end(None)
    status = "stopped" if stopped else "succeeded"
    yield wf(
        "workflow_finished", id=run_id, workflow_id=workflow_id, status=status, outputs={"answer": msg.answer},
        error=None, elapsed_time=round(time.monotonic() - turn.started, 3), total_tokens=turn.usage()["total_tokens"],
        total_steps=3, created_at=created, finished_at=world.now(), exceptions_count=0, files=[],
    )  # fmt: skip


_STREAMS = {"chat": _chat_stream, "agent-chat": _agent_stream, "advanced-chat": _chatflow_stream}


# --------------------------------------------------------------------------- the app


class _FilesPrefix:
    """Tell handlers how file URLs must be written for the way the app was reached."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["dify.files_prefix"] = self.prefix
        await self.app(scope, receive, send)


def create_app(state: Any = None) -> Starlette:
    """The Dify-compatible Starlette app. `state` is the Emulator object (or None: defaults)."""
    global _last_world
    delay = 0.02 if getattr(state, "stage_delay", 0) else 0.0
    world = DifyWorld(delta_delay=float(getattr(state, "dify_delta_delay", delay)))
    _last_world = world

    def authorized(request: Request) -> _App | Response:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            return _unauthorized("Authorization header must be provided and start with 'Bearer'")
        app = world.apps.get(header[7:].strip())
        return app if app is not None else _unauthorized()

    async def json_body(request: Request) -> dict[str, Any] | Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "invalid_param", "Invalid JSON payload received or JSON payload is empty.")
        return body

    def owned_conversation(app: _App, cid: str, user: str) -> _Conversation | None:
        conversation = app.conversations.get(cid)
        return conversation if conversation is not None and conversation.user == user else None

    def user_files(app: _App, user: str, files: Any, prefix: str) -> list[dict[str, Any]] | Response:
        if files is None:
            return []
        if not isinstance(files, list):
            return _error(400, "invalid_param", "files must be a list.")
        specs = []
        for item in files:
            if not isinstance(item, dict) or item.get("type") not in _FILE_TYPES:
                return _error(400, "invalid_param", "Invalid file type: use image, document, audio, video or custom.")
            method = item.get("transfer_method")
            if method == "remote_url":
                url = item.get("url")
                if not isinstance(url, str) or not re.match(r"^https?://", url):
                    return _error(400, "invalid_param", "Invalid file url")
                name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
                specs.append(
                    {
                        "related_id": _new_id(), "extension": "." + name.rsplit(".", 1)[-1] if "." in name else "",
                        "filename": name, "size": -1, "mime_type": "", "transfer_method": "remote_url",
                        "type": item["type"], "url": url, "upload_file_id": None, "remote_url": url,
                    }
                )  # fmt: skip
            elif method == "local_file":
                upload = world.uploads.get(str(item.get("upload_file_id")))
                if upload is None or upload["created_by"] != user or upload["app"] != app.key:
                    return _error(400, "invalid_param", "Invalid upload file id.")
                url = f"{prefix}/files/{upload['id']}/file-preview?{world.signed_query(upload['id'])}"
                specs.append(
                    {
                        "related_id": _new_id(), "extension": "." + upload["extension"], "filename": upload["name"],
                        "size": upload["size"], "mime_type": upload["mime_type"], "transfer_method": "local_file",
                        "type": item["type"], "url": url, "upload_file_id": upload["id"], "remote_url": "",
                    }
                )  # fmt: skip
            else:
                return _error(400, "invalid_param", "transfer_method must be remote_url or local_file.")
        return specs

    async def chat_messages(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        fault = world.faults.take("http", "/chat-messages")
        if fault is not None:
            return _fault_response(fault)
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        user = body.get("user")
        if not isinstance(user, str) or not user.strip():
            return _error(400, "invalid_param", "Arg user must be provided.")
        if not isinstance(body.get("inputs"), dict):
            return _error(400, "invalid_param", "1 validation error for ChatRequestPayload\ninputs\n  Field required")
        query = body.get("query")
        if not isinstance(query, str):
            return _error(400, "invalid_param", "1 validation error for ChatRequestPayload\nquery\n  Field required")
        if app.mode == "agent-chat" and not query.strip():
            return _error(400, "invalid_param", "query is required")
        streaming = body.get("response_mode") == "streaming"
        if app.mode == "agent-chat" and not streaming:
            return _error(400, "invalid_param", "Agent Chat App does not support blocking mode")
        cid = body.get("conversation_id") or ""
        conversation: _Conversation | None = None
        if cid:
            if not isinstance(cid, str) or not _UUID.match(cid):
                return _error(400, "invalid_param", f"{cid} is not a valid uuid.")
            conversation = owned_conversation(app, cid, user)
            if conversation is None:
                return _error(404, "not_found", "Conversation Not Exists.")
        prefix = request.scope.get("dify.files_prefix", "")
        files = user_files(app, user, body.get("files"), prefix)
        if isinstance(files, Response):
            return files
        now = world.now()
        if conversation is None:
            auto_name = body.get("auto_generate_name", True) is not False
            conversation = _Conversation(
                id=_new_id(),
                user=user,
                name=(query.strip()[:40] or "New conversation") if auto_name else "New conversation",
                inputs=dict(body["inputs"]),
                created_at=now,
                updated_at=now,
            )
            app.conversations[conversation.id] = conversation
        previous = conversation.messages[-1] if conversation.messages else None
        message = _Message(
            id=_new_id(),
            conversation_id=conversation.id,
            query=query,
            inputs=dict(conversation.inputs or body["inputs"]),
            created_at=now,
            parent_message_id=previous,
        )
        app.messages[message.id] = message
        conversation.messages.append(message.id)
        turn = _Turn(world, app, conversation, message, _new_id(), user, prefix, files)
        for spec in files:
            turn.remember_file(spec, "user")
        if streaming:
            return StreamingResponse(
                _STREAMS[app.mode](turn),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
            )
        # Blocking mode (chat and chatflow): the whole answer at once; generation errors are HTTP errors.
        if turn.has("fail mid-stream") or turn.has("workflow fail"):
            message.status, message.error = "error", "Model invoke error"
            return _error(400, "completion_request_error", "[emulator] Model invoke error: the provider failed.")
        message.answer = _compose_answer(turn) if app.mode == "chat" else f"Flow answer: {query}"
        if turn.has("moderate") and app.mode == "chat":
            message.answer = "Sorry, I can't talk about that. (This answer was replaced by content moderation.)"
        resources = _RESOURCES if app.mode == "chat" else []
        message.retriever_resources = list(resources)
        conversation.updated_at = world.now()
        return JSONResponse(
            {
                "event": "message",
                "task_id": turn.task_id,
                "id": message.id,
                "message_id": message.id,
                "conversation_id": conversation.id,
                "mode": app.mode,
                "answer": message.answer,
                "metadata": {"annotation_reply": None, "retriever_resources": resources, "usage": turn.usage()},
                "created_at": message.created_at,
            }
        )

    async def stop(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        if not isinstance(body.get("user"), str) or not body["user"].strip():
            return _error(400, "invalid_param", "Arg user must be provided.")
        world.stopped.add(request.path_params["task_id"])  # Dify ignores a user mismatch silently
        return JSONResponse({"result": "success"})

    def query_user(request: Request) -> str:
        return request.query_params.get("user") or _DEFAULT_USER

    def limit_of(request: Request) -> int | Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return _error(400, "invalid_param", "limit must be an integer between 1 and 100.")
        return limit

    async def list_messages(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        limit = limit_of(request)
        if isinstance(limit, Response):
            return limit
        cid = request.query_params.get("conversation_id", "")
        if not cid:
            return _error(400, "invalid_param", "conversation_id is required.")
        conversation = owned_conversation(app, cid, query_user(request))
        if conversation is None:
            return _error(404, "not_found", "Conversation Not Exists.")
        ids = list(conversation.messages)
        first_id = request.query_params.get("first_id")
        if first_id:
            if first_id not in ids:
                return _error(404, "not_found", "First Message Not Exists.")
            ids = ids[: ids.index(first_id)]
        page = ids[-limit:]
        items = [app.messages[mid].as_item() for mid in page]
        if world.messages_order == "desc":
            items.reverse()
        return JSONResponse({"limit": limit, "has_more": len(ids) > limit, "data": items})

    async def list_conversations(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        limit = limit_of(request)
        if isinstance(limit, Response):
            return limit
        sort_by = request.query_params.get("sort_by", "-updated_at")
        if sort_by not in ("created_at", "-created_at", "updated_at", "-updated_at"):
            return _error(400, "invalid_param", "sort_by must be created_at, -created_at, updated_at or -updated_at.")
        user = query_user(request)
        field_name = sort_by.lstrip("-")
        items = sorted(
            (c for c in app.conversations.values() if c.user == user),
            key=lambda c: getattr(c, field_name),
            reverse=sort_by.startswith("-"),
        )
        last_id = request.query_params.get("last_id")
        if last_id:
            positions = [i for i, c in enumerate(items) if c.id == last_id]
            if not positions:
                return _error(404, "not_found", "Last Conversation Not Exists.")
            items = items[positions[0] + 1 :]
        return JSONResponse({"limit": limit, "has_more": len(items) > limit, "data": [c.as_item() for c in items[:limit]]})

    async def body_user(request: Request) -> str:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {}
        user = body.get("user") if isinstance(body, dict) else None
        return user if isinstance(user, str) and user else query_user(request)

    async def delete_conversation(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        conversation = owned_conversation(app, request.path_params["cid"], await body_user(request))
        if conversation is None:
            return _error(404, "not_found", "Conversation Not Exists.")
        del app.conversations[conversation.id]
        for mid in conversation.messages:
            app.messages.pop(mid, None)
        return Response(status_code=204)

    async def rename(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        user = str(body.get("user") or _DEFAULT_USER)
        conversation = owned_conversation(app, request.path_params["cid"], user)
        if conversation is None:
            return _error(404, "not_found", "Conversation Not Exists.")
        if body.get("auto_generate"):
            first = app.messages[conversation.messages[0]].query if conversation.messages else ""
            conversation.name = ("About: " + first.strip())[:40] if first.strip() else "New conversation"
        else:
            name = body.get("name")
            if not isinstance(name, str) or not name.strip():
                return _error(400, "invalid_param", "name is required when auto_generate is false")
            conversation.name = name.strip()
        conversation.updated_at = world.now()
        return JSONResponse(conversation.as_item())

    def owned_message(app: _App, mid: str, user: str) -> _Message | None:
        message = app.messages.get(mid)
        if message is None:
            return None
        conversation = app.conversations.get(message.conversation_id)
        return message if conversation is not None and conversation.user == user else None

    async def feedback(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        body = await json_body(request)
        if isinstance(body, Response):
            return body
        user = str(body.get("user") or _DEFAULT_USER)
        rating = body.get("rating")
        if rating not in ("like", "dislike", None):
            return _error(400, "invalid_param", "rating must be like, dislike or null.")
        message = owned_message(app, request.path_params["message_id"], user)
        if message is None:
            return _error(404, "not_found", "Message Not Exists.")
        message.feedback = {"rating": rating} if rating else None
        return JSONResponse({"result": "success"})

    async def suggested(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        message = owned_message(app, request.path_params["message_id"], query_user(request))
        if message is None:
            return _error(404, "not_found", "Message Not Exists.")
        if not app.suggested:
            return _error(400, "bad_request", "Suggested Questions Is Disabled.")
        topic = message.query.strip()[:30] or "this"
        return JSONResponse(
            {
                "result": "success",
                "data": [f"Tell me more about {topic}", f"Why does {topic} matter?", "Can you summarise our chat?"],
            }
        )

    async def upload(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        form = await request.form()
        user = form.get("user")
        if not isinstance(user, str) or not user.strip():
            return _error(400, "invalid_param", "Arg user must be provided.")
        parts = form.getlist("file")
        if not parts or isinstance(parts[0], str):
            return _error(400, "no_file_uploaded", "Please upload your file.")
        if len(parts) > 1:
            return _error(400, "too_many_files", "Only one file is allowed.")
        part = parts[0]
        assert not isinstance(part, str)
        if not part.filename:
            return _error(400, "filename_not_exists_error", "The specified filename does not exist.")
        content = await part.read()
        extension = part.filename.rsplit(".", 1)[-1].lower() if "." in part.filename else ""
        if extension in _BLOCKED_EXTENSIONS:
            return _error(415, "unsupported_file_type", "File type not allowed.")
        mime = part.content_type or "application/octet-stream"
        limit = _UPLOAD_LIMITS.get(mime.split("/", 1)[0], _DEFAULT_LIMIT)
        if len(content) > limit:
            return _error(413, "file_too_large", f"File size exceeded. {len(content)} > {limit}")
        file_id = _new_id()
        record = {
            "id": file_id,
            "name": part.filename,
            "size": len(content),
            "extension": extension,
            "mime_type": mime,
            "created_by": user,
            "created_at": world.now(),
            "preview_url": None,
            "source_url": f"{request.scope.get('dify.files_prefix', '')}/files/{file_id}/file-preview?"
            + world.signed_query(file_id),
        }
        world.uploads[file_id] = {**record, "app": app.key, "content": content}
        return JSONResponse(record, status_code=201)

    async def parameters(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        return JSONResponse(
            {
                "opening_statement": app.opening_statement,
                "suggested_questions": ["What can you do?", "Say something in Markdown"] if app.mode == "chat" else [],
                "suggested_questions_after_answer": {"enabled": app.suggested},
                "speech_to_text": {"enabled": False},
                "text_to_speech": {"enabled": app.mode == "chat", "voice": "alloy", "language": "en-US", "autoPlay": "disabled"},
                "retriever_resource": {"enabled": app.mode == "chat"},
                "annotation_reply": {"enabled": False},
                "more_like_this": {"enabled": False},
                "user_input_form": [
                    {"text-input": {"label": "Your name", "variable": "name", "required": False, "max_length": 48, "default": ""}}
                ],
                "sensitive_word_avoidance": {"enabled": app.mode == "chat", "type": "", "configs": []},
                "file_upload": {
                    "image": {
                        "enabled": True,
                        "number_limits": 3,
                        "detail": "high",
                        "transfer_methods": ["remote_url", "local_file"],
                    },
                    "enabled": True,
                    "allowed_file_types": ["image", "document"],
                    "allowed_file_extensions": [],
                    "allowed_file_upload_methods": ["remote_url", "local_file"],
                    "number_limits": 3,
                },
                "system_parameters": {
                    "file_size_limit": 15,
                    "image_file_size_limit": 10,
                    "audio_file_size_limit": 50,
                    "video_file_size_limit": 100,
                    "workflow_file_upload_limit": 10,
                },
            }
        )  # fmt: skip

    async def info(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        return JSONResponse(
            {
                "name": app.name,
                "description": app.description,
                "tags": ["emulator"],
                "mode": app.mode,
                "author_name": "wiro-jupyter emulator",
            }
        )

    async def meta(request: Request) -> Response:
        app = authorized(request)
        if isinstance(app, Response):
            return app
        icons = {"draw_image": {"background": "#FFEAD5", "content": "🎨"}} if app.mode == "agent-chat" else {}
        return JSONResponse({"tool_icons": icons})

    async def tool_file(request: Request) -> Response:
        name = request.path_params["name"]
        file_id = name.rsplit(".", 1)[0]
        if not world.check_signature(request, file_id):
            return _error(403, "forbidden", "Invalid request.")
        data = world.tool_files.get(file_id)
        if data is None:
            return _error(404, "not_found", "File not found.")
        return Response(data, media_type="image/png")

    async def file_preview(request: Request) -> Response:
        file_id = request.path_params["file_id"]
        if not world.check_signature(request, file_id):
            return _error(403, "forbidden", "Invalid request.")
        upload_record = world.uploads.get(file_id)
        if upload_record is None:
            return _error(404, "not_found", "File not found.")
        return Response(upload_record["content"], media_type=upload_record["mime_type"])

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        response = _error(404, "not_found", "The requested URL was not found on the server.")
        await response(scope, receive, send)

    api = Router(
        routes=[
            Route("/chat-messages", chat_messages, methods=["POST"]),
            Route("/chat-messages/{task_id}/stop", stop, methods=["POST"]),
            Route("/messages", list_messages, methods=["GET"]),
            Route("/messages/{message_id}/feedbacks", feedback, methods=["POST"]),
            Route("/messages/{message_id}/suggested", suggested, methods=["GET"]),
            Route("/conversations", list_conversations, methods=["GET"]),
            Route("/conversations/{cid}", delete_conversation, methods=["DELETE"]),
            Route("/conversations/{cid}/name", rename, methods=["POST"]),
            Route("/files/upload", upload, methods=["POST"]),
            Route("/parameters", parameters, methods=["GET"]),
            Route("/info", info, methods=["GET"]),
            Route("/meta", meta, methods=["GET"]),
        ],
        default=not_found,
    )
    app = Starlette(
        routes=[
            Route("/files/tools/{name}", tool_file, methods=["GET"]),
            Route("/files/{file_id}/file-preview", file_preview, methods=["GET"]),
            # Mounted at <prefix>: the API is under /v1 and file URLs are /files/... (real Dify).
            Mount("/v1", app=_FilesPrefix(api, "")),
            # Mounted at <prefix>/v1: file URLs become /v1/files/..., still "base URL minus /v1" + url.
            Mount("", app=_FilesPrefix(api, "/v1")),
        ]
    )
    app.state.dify = world
    if state is not None:
        for name, value in (
            ("dify", world),
            ("dify_faults", world.faults),
            ("dify_chat_key", DIFY_CHAT_KEY),
            ("dify_agent_key", DIFY_AGENT_KEY),
            ("dify_chatflow_key", DIFY_CHATFLOW_KEY),
        ):
            with contextlib.suppress(AttributeError):  # a state object with __slots__ or read-only properties
                setattr(state, name, value)
    return app
