"""The Wiro API's routes: the REST dispatch under /v1, the Run route, file serving and the task socket.

References like "Wiro §5" are sections of docs/protocol.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from .._faults import CONCURRENCY_LIMIT, Faults
from . import _files, _tasks, _tools
from ._auth import Project, authenticate
from ._envelope import BAD_URL, close_uploads, fail, ok, read_body
from ._parameters import prepare
from ._sockets import SocketHub


class ApiHost(_files.FileHost, _tasks.TaskRoutesHost, _tools.ToolHost, Protocol):
    """What the Wiro API needs from the emulator's state."""

    @property
    def projects(self) -> dict[str, Project]: ...
    @property
    def faults(self) -> Faults: ...
    @property
    def hub(self) -> SocketHub: ...


BodyHandler = Callable[[ApiHost, Project, dict[str, Any]], Awaitable[Response]]

# POST routes (lower-cased) answered from the parsed body; Run/<owner>/<slug> and File/Upload read the request.
_BODY_ROUTES: dict[str, BodyHandler] = {
    "tool/list": _tools.tool_list, "tool/detail": _tools.tool_detail, "tool/explore": _tools.tool_explore,
    "task/detail": _tasks.task_detail, "task/list": _tasks.task_list, "task/cancel": _tasks.task_cancel,
    "task/kill": _tasks.task_kill, "task/inputoutputdelete": _tasks.task_io_delete,
    "file/foldercreate": _files.folder_create,
}
_UPLOAD_ROUTE = "file/upload"


def routes(host: ApiHost) -> list[BaseRoute]:
    return [
        WebSocketRoute("/v1", host.hub.endpoint),
        Route("/v1/File/{folder}/{name}", host.files.serve, methods=["GET", "HEAD"]),
        Route("/files/{folder}/{name}", host.files.serve, methods=["GET", "HEAD"]),
        Route("/v1/{path:path}", partial(api, host), methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
    ]


async def api(host: ApiHost, request: Request) -> Response:
    path = request.path_params["path"].strip("/")
    parts = path.split("/")
    route = path.lower()
    is_run = len(parts) == 3 and parts[0].lower() == "run"
    if request.method != "POST" or not (is_run or route == _UPLOAD_ROUTE or route in _BODY_ROUTES):
        return fail(0, BAD_URL, 404)
    project = authenticate(host.projects, request)
    if isinstance(project, Response):
        return project
    fault = host.faults.take_business(path)
    if fault is not None:
        return fail(fault.code, fault.message)
    if is_run:
        return await run(host, request, project, parts[1], parts[2])
    if route == _UPLOAD_ROUTE:
        return await _files.file_upload(host, request, project)
    body, files, error = await read_body(request)
    await close_uploads(files)  # only Run and File/Upload take files
    if error is not None:
        return error
    return await _BODY_ROUTES[route](host, project, body)


async def run(host: ApiHost, request: Request, project: Project, owner: str, slug: str) -> Response:
    """Run/<owner>/<slug>: validate the body, record the task and start it (Wiro §5)."""
    spec = host.catalogue.find(owner, slug)
    if spec is None:
        return fail(1, "slug-owner-project-not-exist")
    body, files, error = await read_body(request)
    if error is not None:
        return error
    try:
        prepared = await prepare(spec, body, files, host.files, host.base_url)
    finally:
        await close_uploads(files)
    if isinstance(prepared, str):
        return fail(0, prepared)
    # Checked with no await before `start`, so concurrent Runs cannot both slip under the limit (Wiro §10).
    limit = host.faults.concurrency
    if limit is not None and host.engine.active_count(project) >= limit:
        return fail(96, CONCURRENCY_LIMIT)
    parameters, values, inputs = prepared
    task = host.engine.start(project, spec, parameters, values, inputs, str(body.get("callbackUrl") or ""))
    return ok(taskid=task.id, socketaccesstoken=task.token)  # taskid: numeric string (Wiro §5)
