"""The emulator's assembly: `EmulatorState` (one per `Emulator`), its Starlette app and the REST routing.

Everything runs on the uvicorn loop of `_server.Emulator` (one thread). The only things
touched from other threads are the `Faults` knobs (behind a lock), plain flags
(`engine.paused`, `Project.revoked`) and read-only inspection (`tasks`, `stats`).

The parts, each in its own module:
    _envelope    the JSON envelope (§2), error texts, reading a request body
    _ids         tokens, ids and timestamps
    _auth        projects and their key/signature check (§1)
    _faults      fault knobs, route matching, the fault middleware
    _stats       request/socket counters
    _files       stored and served files, File/* routes
    _parameters  value coercion and Run validation (§4.1)
    _tasks       task records, their progression, Task/* routes
    _runs        the Run route and the context a model run gets
    _sockets     the task WebSocket hub (§8, §9)
    _tools       the Tool/* routes (§3, §4)

Section references (§n) point into /work/shared/research/wiro-protocol.md.
This package must never import the client side (`wiro_jupyter._*`): a shared
wire-format mistake would otherwise cancel out in the tests.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp

from . import _files, _tasks, _tools
from ._auth import Project, authenticate
from ._envelope import (
    BAD_URL,
    INVALID,
    NO_TASK,
    NOT_FOUNDED,
    NOT_VALID,
    SIGNATURE_REQUIRED,
    close_uploads,
    fail,
    ok,
    read_body,
)
from ._faults import FaultMiddleware, Faults, route_matches, route_of
from ._files import MAX_UPLOAD_BYTES, FileStore, StoredFile, safe_name
from ._ids import cdn_folder, hex_id, random_token, unix_now
from ._models import Catalogue
from ._parameters import wire_string
from ._runs import run
from ._sockets import SocketHub
from ._stats import Stats
from ._tasks import PRE_RUN, STATUS_TIMES, TERMINAL, TaskEngine, TaskRecord

__all__ = [  # what this module has always offered (the old single-module emulator)
    "BAD_URL", "INVALID", "MAX_UPLOAD_BYTES", "NOT_FOUNDED", "NOT_VALID", "NO_TASK", "PRE_RUN", "SIGNATURE_REQUIRED",
    "STATUS_TIMES", "TERMINAL", "EmulatorState", "Faults", "FileStore", "Project", "SocketHub", "Stats",
    "StoredFile", "TaskRecord", "cdn_folder", "fail", "hex_id", "ok", "random_token", "route_matches", "route_of",
    "safe_name", "unix_now", "wire_string",
]

BodyHandler = Callable[["EmulatorState", Project, dict[str, Any]], Awaitable[Response]]

# POST routes (lower-cased) answered from the parsed body; Run/<owner>/<slug> and File/Upload read the request.
_BODY_ROUTES: dict[str, BodyHandler] = {
    "tool/list": _tools.tool_list, "tool/detail": _tools.tool_detail, "tool/explore": _tools.tool_explore,
    "task/detail": _tasks.task_detail, "task/list": _tasks.task_list, "task/cancel": _tasks.task_cancel,
    "task/kill": _tasks.task_kill, "task/inputoutputdelete": _tasks.task_io_delete,
    "file/foldercreate": _files.folder_create,
}
_UPLOAD_ROUTE = "file/upload"


class EmulatorState:
    """All server-side state, one per `Emulator`: its parts, the hooks `_server.Emulator` calls, the app."""

    def __init__(self, *, api_key: str, signature_key: str, signature_secret: str, stage_delay: float,
                 output_ttl: float | None) -> None:
        self.catalogue = Catalogue()
        self.projects: dict[str, Project] = {
            api_key: Project(api_key, None, "699"),
            signature_key: Project(signature_key, signature_secret, "700"),
        }
        self.faults = Faults()
        self.stats = Stats()
        self.hub = SocketHub(self)
        self.files = FileStore()
        self.engine = TaskEngine(self)
        self.tasks: dict[str, TaskRecord] = self.engine.tasks  # by id (the engine's own dict)
        self.sessions: dict[str, list[str]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.taskstats: dict[str, Counter[str]] = {spec.id: Counter() for spec in self.catalogue.models}
        self.stage_delay = stage_delay
        self.output_ttl = output_ttl
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.base_url = ""
        for spec in self.catalogue.models:
            self.files.add_cover(f"{spec.clean}.jpg", spec.title)
        for scene in ("beach", "forest", "city", "default"):
            self.files.add_cover(f"{scene}.jpg", scene)

    # lifecycle hooks called by _server.Emulator

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the server thread before serving."""
        self.engine.on_loop(loop)

    def attach(self, base_url: str) -> None:
        """Called once the real port is known; output and cover URLs are built from it."""
        self.base_url = base_url

    async def shutdown(self) -> None:
        await self.engine.shutdown()

    def revoke(self, key: str) -> None:
        if key in self.projects:
            self.projects[key].revoked = True

    def pause_queue(self) -> None:
        self.engine.pause_queue()

    def resume_queue(self) -> None:
        self.engine.resume_queue()

    def wait_task(self, ident: str, timeout: float = 10.0, statuses: tuple[str, ...] = TERMINAL) -> TaskRecord:
        """Block (another thread) until the task with this id or token reaches one of `statuses`."""
        return self.engine.wait_task(ident, timeout, statuses)

    def wait_registered(self, token: str, timeout: float = 5.0) -> bool:
        return self.hub.wait_registered(token, timeout)

    # ---- the app

    def create_app(self, dify_app: ASGIApp) -> ASGIApp:
        routes = [
            WebSocketRoute("/v1", self.hub.endpoint),
            Route("/v1/File/{folder}/{name}", self.files.serve, methods=["GET", "HEAD"]),
            Route("/files/{folder}/{name}", self.files.serve, methods=["GET", "HEAD"]),
            Route("/v1/{path:path}", self.api, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            Mount("/dify/v1", app=dify_app),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            return fail(0, BAD_URL, 404)

        app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
        return FaultMiddleware(app, self)

    # ---- REST

    async def api(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        parts = path.split("/")
        route = path.lower()
        is_run = len(parts) == 3 and parts[0].lower() == "run"
        if request.method != "POST" or not (is_run or route == _UPLOAD_ROUTE or route in _BODY_ROUTES):
            return fail(0, BAD_URL, 404)
        project = self.authenticate(request)
        if isinstance(project, Response):
            return project
        fault = self.faults.take_business(path)
        if fault is not None:
            return fail(fault.code, fault.message)
        if is_run:
            return await run(self, request, project, parts[1], parts[2])
        if route == _UPLOAD_ROUTE:
            return await _files.file_upload(self, request, project)
        body, files, error = await read_body(request)
        await close_uploads(files)  # only Run and File/Upload take files
        if error is not None:
            return error
        return await _BODY_ROUTES[route](self, project, body)

    def authenticate(self, request: Request) -> Project | Response:
        return authenticate(self.projects, request)
