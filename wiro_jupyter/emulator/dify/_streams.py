"""One chat turn and its event streams: the chat, agent and chatflow apps' SSE (Dify §2), and their answers.

The framing is `data: {json}\\n\\n` with no `event:` line, a bare `event: ping\\n\\n` keep-alive, and
the stream ends when the connection closes (Dify §2.1). References like "Dify §2.3" are sections
of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from ._world import App, Conversation, DifyWorld, Message, new_id

PING = "event: ping\n\n"
MODERATED = "Sorry, I can't talk about that. (This answer was replaced by content moderation.)"


def _sse(payload: dict[str, Any]) -> str:
    # Compact JSON with raw UTF-8, one line, like Dify's orjson framing (Dify §2.1).
    return "data: " + json.dumps(payload, ensure_ascii=False, separators=(",", ":")) + "\n\n"


def _chunks(text: str) -> list[str]:
    return re.findall(r"\S+\s*|\s+", text)


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


@dataclass
class Turn:
    world: DifyWorld
    app: App
    conversation: Conversation
    message: Message
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
        # In-stream errors carry no task_id (Dify §2.3).
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
            "related_id": new_id(),
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


def compose_answer(turn: Turn) -> str:
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


def flow_answer(turn: Turn) -> str:
    """The chatflow app's answer."""
    return f"Flow answer: {turn.query}"


RESOURCES = [
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


async def chat_stream(turn: Turn) -> AsyncIterator[str]:
    world, msg = turn.world, turn.message
    answer = compose_answer(turn)
    slow = turn.has("slow")
    delay = world.slow_delay if slow else world.delta_delay
    quirk = turn.has("quirk")
    files = list(turn.user_files)
    if quirk:
        spec = turn.tool_file(turn.query)
        turn.remember_file(spec, "assistant")
        files.append(spec)
        yield turn.event("message_file", id=spec["related_id"], type="image", belongs_to="assistant", url=spec["url"])
    drop = world.faults.take_drop_stream()
    for i, delta in enumerate(_chunks(answer)):
        if turn.stopped():
            break
        if turn.has("fail mid-stream") and i == 3:
            yield turn.error_event(
                400, "completion_request_error", "[emulator] Model invoke error: the provider closed the connection."
            )
            return
        if drop and i == 3:
            raise ConnectionAbortedError("emulated: the connection breaks mid-answer")
        msg.answer += delta
        name = "message_file" if quirk else "message"  # the quirk: text deltas as message_file (Dify §2.3)
        yield turn.event(name, id=msg.id, answer=delta, from_variable_selector=None)
        if i == 1:
            yield PING
        await turn.pause(delay)
    if turn.has("moderate") and not turn.stopped():
        msg.answer = MODERATED
        yield turn.event("message_replace", answer=msg.answer, reason="output_moderation")
    yield turn.end(files, RESOURCES)
    if turn.has("speak"):
        audio = b"ID3\x04\x00\x00\x00\x00\x00\x00" + hashlib.sha256(msg.answer.encode()).digest() * 8
        for start in range(0, len(audio), 100):
            yield turn.event("tts_message", audio=base64.b64encode(audio[start : start + 100]).decode())
        yield turn.event("tts_message_end", audio="")


async def agent_stream(turn: Turn) -> AsyncIterator[str]:
    msg = turn.message
    first, second = new_id(), new_id()
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
    # Older Dify re-sent a step with blank tool fields: clients must keep what they had (Dify §2.3).
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


async def chatflow_stream(turn: Turn) -> AsyncIterator[str]:
    msg, world = turn.message, turn.world
    run_id, workflow_id = new_id(), "7e1c2d3f-4444-4b5c-8d6e-9f0a1b2c3d4e"
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
            "id": new_id(),
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
            base = {"id": new_id(), "node_id": "1718000000009", "node_type": group, "title": group.title()}
            yield wf(f"{group}_started", **base, created_at=created, inputs={"items": [1, 2]})
            for index in (1, 2):
                yield wf(f"{group}_next", **base, index=index, created_at=created)
            yield wf(f"{group}_completed", **base, outputs={"count": 2}, status="succeeded", steps=2)
    answer = flow_answer(turn)
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
    # Newer Dify: message_end first, workflow_finished after it (Dify §2.4).
    yield turn.end(None)
    status = "stopped" if stopped else "succeeded"
    yield wf(
        "workflow_finished", id=run_id, workflow_id=workflow_id, status=status, outputs={"answer": msg.answer},
        error=None, elapsed_time=round(time.monotonic() - turn.started, 3), total_tokens=turn.usage()["total_tokens"],
        total_steps=3, created_at=created, finished_at=world.now(), exceptions_count=0, files=[],
    )  # fmt: skip


STREAMS: dict[str, Callable[[Turn], AsyncIterator[str]]] = {
    "chat": chat_stream, "agent-chat": agent_stream, "advanced-chat": chatflow_stream,
}
