"""The Dify Service API routes (Dify §1, §3, §4): each handler a function of the world and the request.

Mounting: the app serves the API both at its root (mount it at `<prefix>/v1`) and under `/v1`
(mount it at `<prefix>`), and the signed file URLs under `/files/...` either way, so relative
URLs resolve against "base URL minus /v1" (Dify §0). References like "Dify §4" are sections of
docs/protocol.md.
"""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from ._errors import error
from ._streams import MODERATED, RESOURCES, STREAMS, Turn, compose_answer, flow_answer
from ._world import DEFAULT_USER, App, Conversation, DifyWorld, Message, new_id

_UPLOAD_LIMITS = {"image": 10 * 1024 * 1024, "audio": 50 * 1024 * 1024, "video": 100 * 1024 * 1024}
_DEFAULT_LIMIT = 15 * 1024 * 1024
_BLOCKED_EXTENSIONS = {"exe", "bat", "cmd", "com", "scr", "msi", "dll", "sh"}
_FILE_TYPES = {"image", "document", "audio", "video", "custom"}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


def create_app(world: DifyWorld) -> Starlette:
    """The Dify-compatible app over `world`."""

    def bound(handler: Any) -> Any:
        return partial(handler, world)

    def for_app(handler: Any) -> Any:
        """A handler of an app's API: called with the app the bearer key names (or answered 401 here)."""

        async def endpoint(request: Request) -> Response:
            app = world.app_for(request)
            return app if isinstance(app, Response) else await handler(world, app, request)

        return endpoint

    api = Router(
        routes=[
            Route("/chat-messages", for_app(chat_messages), methods=["POST"]),
            Route("/chat-messages/{task_id}/stop", for_app(stop), methods=["POST"]),
            Route("/messages", for_app(list_messages), methods=["GET"]),
            Route("/messages/{message_id}/feedbacks", for_app(feedback), methods=["POST"]),
            Route("/messages/{message_id}/suggested", for_app(suggested), methods=["GET"]),
            Route("/conversations", for_app(list_conversations), methods=["GET"]),
            Route("/conversations/{cid}", for_app(delete_conversation), methods=["DELETE"]),
            Route("/conversations/{cid}/name", for_app(rename), methods=["POST"]),
            Route("/files/upload", for_app(upload), methods=["POST"]),
            Route("/parameters", for_app(parameters), methods=["GET"]),
            Route("/info", for_app(info), methods=["GET"]),
            Route("/meta", for_app(meta), methods=["GET"]),
        ],
        default=_not_found,
    )
    return Starlette(
        routes=[
            Route("/files/tools/{name}", bound(tool_file), methods=["GET"]),
            Route("/files/{file_id}/file-preview", bound(file_preview), methods=["GET"]),
            # Mounted at <prefix>: the API is under /v1 and file URLs are /files/... (real Dify).
            Mount("/v1", app=_FilesPrefix(api, "")),
            # Mounted at <prefix>/v1: file URLs become /v1/files/..., still "base URL minus /v1" + url.
            Mount("", app=_FilesPrefix(api, "/v1")),
        ]
    )


class _FilesPrefix:
    """Tell handlers how file URLs must be written for the way the app was reached."""

    def __init__(self, app: ASGIApp, prefix: str) -> None:
        self.app, self.prefix = app, prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["dify.files_prefix"] = self.prefix
        await self.app(scope, receive, send)


async def _json_body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return error(400, "invalid_param", "Invalid JSON payload received or JSON payload is empty.")
    return body


def _user_files(world: DifyWorld, app: App, user: str, files: Any, prefix: str) -> list[dict[str, Any]] | Response:
    if files is None:
        return []
    if not isinstance(files, list):
        return error(400, "invalid_param", "files must be a list.")
    specs = []
    for item in files:
        if not isinstance(item, dict) or item.get("type") not in _FILE_TYPES:
            return error(400, "invalid_param", "Invalid file type: use image, document, audio, video or custom.")
        method = item.get("transfer_method")
        if method == "remote_url":
            url = item.get("url")
            if not isinstance(url, str) or not re.match(r"^https?://", url):
                return error(400, "invalid_param", "Invalid file url")
            name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            specs.append(
                {
                    "related_id": new_id(), "extension": "." + name.rsplit(".", 1)[-1] if "." in name else "",
                    "filename": name, "size": -1, "mime_type": "", "transfer_method": "remote_url",
                    "type": item["type"], "url": url, "upload_file_id": None, "remote_url": url,
                }
            )  # fmt: skip
        elif method == "local_file":
            upload = world.uploads.get(str(item.get("upload_file_id")))
            if upload is None or upload["created_by"] != user or upload["app"] != app.key:
                return error(400, "invalid_param", "Invalid upload file id.")
            url = f"{prefix}/files/{upload['id']}/file-preview?{world.signed_query(upload['id'])}"
            specs.append(
                {
                    "related_id": new_id(), "extension": "." + upload["extension"], "filename": upload["name"],
                    "size": upload["size"], "mime_type": upload["mime_type"], "transfer_method": "local_file",
                    "type": item["type"], "url": url, "upload_file_id": upload["id"], "remote_url": "",
                }
            )  # fmt: skip
        else:
            return error(400, "invalid_param", "transfer_method must be remote_url or local_file.")
    return specs


async def chat_messages(world: DifyWorld, app: App, request: Request) -> Response:
    """POST /chat-messages (Dify §1): validate, record the message, answer as a stream (Dify §2) or at once."""
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    user = body.get("user")
    if not isinstance(user, str) or not user.strip():
        return error(400, "invalid_param", "Arg user must be provided.")
    if not isinstance(body.get("inputs"), dict):
        return error(400, "invalid_param", "1 validation error for ChatRequestPayload\ninputs\n  Field required")
    query = body.get("query")
    if not isinstance(query, str):
        return error(400, "invalid_param", "1 validation error for ChatRequestPayload\nquery\n  Field required")
    if app.mode == "agent-chat" and not query.strip():
        return error(400, "invalid_param", "query is required")
    streaming = body.get("response_mode") == "streaming"
    if app.mode == "agent-chat" and not streaming:
        return error(400, "invalid_param", "Agent Chat App does not support blocking mode")
    cid = body.get("conversation_id") or ""
    conversation: Conversation | None = None
    if cid:
        if not isinstance(cid, str) or not _UUID.match(cid):
            return error(400, "invalid_param", f"{cid} is not a valid uuid.")
        conversation = app.conversation_of(cid, user)
        if conversation is None:
            return error(404, "not_found", "Conversation Not Exists.")
    prefix = request.scope.get("dify.files_prefix", "")
    files = _user_files(world, app, user, body.get("files"), prefix)
    if isinstance(files, Response):
        return files
    now = world.now()
    if conversation is None:
        auto_name = body.get("auto_generate_name", True) is not False
        conversation = Conversation(
            id=new_id(),
            user=user,
            name=(query.strip()[:40] or "New conversation") if auto_name else "New conversation",
            inputs=dict(body["inputs"]),
            created_at=now,
            updated_at=now,
        )
        app.conversations[conversation.id] = conversation
    previous = conversation.messages[-1] if conversation.messages else None
    message = Message(
        id=new_id(),
        conversation_id=conversation.id,
        query=query,
        inputs=dict(conversation.inputs or body["inputs"]),
        created_at=now,
        parent_message_id=previous,
    )
    app.messages[message.id] = message
    conversation.messages.append(message.id)
    turn = Turn(world, app, conversation, message, new_id(), user, prefix, files)
    for spec in files:
        turn.remember_file(spec, "user")
    if streaming:
        return StreamingResponse(
            STREAMS[app.mode](turn),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    return _blocking_answer(turn)


def _blocking_answer(turn: Turn) -> Response:
    """Blocking mode (chat and chatflow): the whole answer at once; generation errors are HTTP errors (Dify §3)."""
    app, conversation, message, world = turn.app, turn.conversation, turn.message, turn.world
    if turn.has("fail mid-stream") or turn.has("workflow fail"):
        message.status, message.error = "error", "Model invoke error"
        return error(400, "completion_request_error", "[emulator] Model invoke error: the provider failed.")
    message.answer = compose_answer(turn) if app.mode == "chat" else flow_answer(turn)
    if turn.has("moderate") and app.mode == "chat":
        message.answer = MODERATED
    resources = RESOURCES if app.mode == "chat" else []
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


async def stop(world: DifyWorld, app: App, request: Request) -> Response:
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    if not isinstance(body.get("user"), str) or not body["user"].strip():
        return error(400, "invalid_param", "Arg user must be provided.")
    world.stopped.add(request.path_params["task_id"])  # Dify ignores a user mismatch silently
    return JSONResponse({"result": "success"})


def _query_user(request: Request) -> str:
    return request.query_params.get("user") or DEFAULT_USER


def _limit_of(request: Request) -> int | Response:
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        return error(400, "invalid_param", "limit must be an integer between 1 and 100.")
    return limit


async def list_messages(world: DifyWorld, app: App, request: Request) -> Response:
    limit = _limit_of(request)
    if isinstance(limit, Response):
        return limit
    cid = request.query_params.get("conversation_id", "")
    if not cid:
        return error(400, "invalid_param", "conversation_id is required.")
    conversation = app.conversation_of(cid, _query_user(request))
    if conversation is None:
        return error(404, "not_found", "Conversation Not Exists.")
    ids = list(conversation.messages)
    first_id = request.query_params.get("first_id")
    if first_id:
        if first_id not in ids:
            return error(404, "not_found", "First Message Not Exists.")
        ids = ids[: ids.index(first_id)]
    page = ids[-limit:]
    items = [app.messages[mid].as_item() for mid in page]
    if world.messages_order == "desc":
        items.reverse()
    return JSONResponse({"limit": limit, "has_more": len(ids) > limit, "data": items})


async def list_conversations(world: DifyWorld, app: App, request: Request) -> Response:
    limit = _limit_of(request)
    if isinstance(limit, Response):
        return limit
    sort_by = request.query_params.get("sort_by", "-updated_at")
    if sort_by not in ("created_at", "-created_at", "updated_at", "-updated_at"):
        return error(400, "invalid_param", "sort_by must be created_at, -created_at, updated_at or -updated_at.")
    user = _query_user(request)
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
            return error(404, "not_found", "Last Conversation Not Exists.")
        items = items[positions[0] + 1 :]
    return JSONResponse({"limit": limit, "has_more": len(items) > limit, "data": [c.as_item() for c in items[:limit]]})


async def _body_user(request: Request) -> str:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    user = body.get("user") if isinstance(body, dict) else None
    return user if isinstance(user, str) and user else _query_user(request)


async def delete_conversation(world: DifyWorld, app: App, request: Request) -> Response:
    conversation = app.conversation_of(request.path_params["cid"], await _body_user(request))
    if conversation is None:
        return error(404, "not_found", "Conversation Not Exists.")
    del app.conversations[conversation.id]
    for mid in conversation.messages:
        app.messages.pop(mid, None)
    return Response(status_code=204)


async def rename(world: DifyWorld, app: App, request: Request) -> Response:
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    user = str(body.get("user") or DEFAULT_USER)
    conversation = app.conversation_of(request.path_params["cid"], user)
    if conversation is None:
        return error(404, "not_found", "Conversation Not Exists.")
    if body.get("auto_generate"):
        first = app.messages[conversation.messages[0]].query if conversation.messages else ""
        conversation.name = ("About: " + first.strip())[:40] if first.strip() else "New conversation"
    else:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            return error(400, "invalid_param", "name is required when auto_generate is false")
        conversation.name = name.strip()
    conversation.updated_at = world.now()
    return JSONResponse(conversation.as_item())


async def feedback(world: DifyWorld, app: App, request: Request) -> Response:
    body = await _json_body(request)
    if isinstance(body, Response):
        return body
    user = str(body.get("user") or DEFAULT_USER)
    rating = body.get("rating")
    if rating not in ("like", "dislike", None):
        return error(400, "invalid_param", "rating must be like, dislike or null.")
    message = app.message_of(request.path_params["message_id"], user)
    if message is None:
        return error(404, "not_found", "Message Not Exists.")
    message.feedback = {"rating": rating} if rating else None
    return JSONResponse({"result": "success"})


async def suggested(world: DifyWorld, app: App, request: Request) -> Response:
    message = app.message_of(request.path_params["message_id"], _query_user(request))
    if message is None:
        return error(404, "not_found", "Message Not Exists.")
    if not app.suggested:
        return error(400, "bad_request", "Suggested Questions Is Disabled.")
    topic = message.query.strip()[:30] or "this"
    return JSONResponse(
        {
            "result": "success",
            "data": [f"Tell me more about {topic}", f"Why does {topic} matter?", "Can you summarise our chat?"],
        }
    )


async def upload(world: DifyWorld, app: App, request: Request) -> Response:
    form = await request.form()
    user = form.get("user")
    if not isinstance(user, str) or not user.strip():
        return error(400, "invalid_param", "Arg user must be provided.")
    parts = form.getlist("file")
    if not parts or isinstance(parts[0], str):
        return error(400, "no_file_uploaded", "Please upload your file.")
    if len(parts) > 1:
        return error(400, "too_many_files", "Only one file is allowed.")
    part = parts[0]
    assert not isinstance(part, str)
    if not part.filename:
        return error(400, "filename_not_exists_error", "The specified filename does not exist.")
    content = await part.read()
    extension = part.filename.rsplit(".", 1)[-1].lower() if "." in part.filename else ""
    if extension in _BLOCKED_EXTENSIONS:
        return error(415, "unsupported_file_type", "File type not allowed.")
    mime = part.content_type or "application/octet-stream"
    limit = _UPLOAD_LIMITS.get(mime.split("/", 1)[0], _DEFAULT_LIMIT)
    if len(content) > limit:
        return error(413, "file_too_large", f"File size exceeded. {len(content)} > {limit}")
    file_id = new_id()
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


async def parameters(world: DifyWorld, app: App, request: Request) -> Response:
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


async def info(world: DifyWorld, app: App, request: Request) -> Response:
    return JSONResponse(
        {
            "name": app.name,
            "description": app.description,
            "tags": ["emulator"],
            "mode": app.mode,
            "author_name": "wiro-jupyter emulator",
        }
    )


async def meta(world: DifyWorld, app: App, request: Request) -> Response:
    icons = {"draw_image": {"background": "#FFEAD5", "content": "🎨"}} if app.mode == "agent-chat" else {}
    return JSONResponse({"tool_icons": icons})


async def tool_file(world: DifyWorld, request: Request) -> Response:
    name = request.path_params["name"]
    file_id = name.rsplit(".", 1)[0]
    if not world.check_signature(request, file_id):
        return error(403, "forbidden", "Invalid request.")
    data = world.tool_files.get(file_id)
    if data is None:
        return error(404, "not_found", "File not found.")
    return Response(data, media_type="image/png")


async def file_preview(world: DifyWorld, request: Request) -> Response:
    file_id = request.path_params["file_id"]
    if not world.check_signature(request, file_id):
        return error(403, "forbidden", "Invalid request.")
    upload_record = world.uploads.get(file_id)
    if upload_record is None:
        return error(404, "not_found", "File not found.")
    return Response(upload_record["content"], media_type=upload_record["mime_type"])


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    response = error(404, "not_found", "The requested URL was not found on the server.")
    await response(scope, receive, send)
