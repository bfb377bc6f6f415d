"""`EmulatorState`: all server-side state of one `Emulator`, its lifecycle hooks, and the app that serves it.

Everything runs on the uvicorn loop of `_server.Emulator` (one thread). The only things touched
from other threads are the `Faults` knobs (behind a lock), plain flags (`engine.paused`,
`Project.revoked`) and read-only inspection (`tasks`, `stats`).

The parts, each in its own module; they reach back into this state only through the small
`Protocol`s they declare, so no module of the emulator imports one that imports it:

    _keys          the keys of one emulator (random unless given)
    _route_names   route names and the path patterns of faults and stats
    _faults        `Faults`: the knobs of both services
    _stats         `Stats`: the counters of both services
    _gateway       counts requests and plays HTTP faults in front of both services
    _inspect       read-only `GET /_emulator/...` routes for a client in another process (benchmarks)
    wiro/          the Wiro API: REST, the task socket, files, tasks, the synthetic models
    dify/          the Dify-compatible chat API: apps, conversations, event streams

References like "Wiro §8" / "Dify §2.3" are sections of docs/protocol.md. This package must never
import the client side (`wiro_jupyter._*`): a shared wire-format mistake would otherwise cancel
out in the tests.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.types import ASGIApp

from ._faults import Faults
from ._gateway import Gateway
from ._inspect import Inspection
from ._keys import Keys
from ._stats import Stats
from .dify._routes import create_app as create_dify_app
from .dify._world import DifyWorld
from .wiro import _api
from .wiro._auth import Project
from .wiro._catalogue import Catalogue
from .wiro._envelope import BAD_URL, fail
from .wiro._files import MAX_UPLOAD_BYTES, FileStore
from .wiro._records import TERMINAL, TaskRecord
from .wiro._sockets import SocketHub
from .wiro._tasks import TaskEngine


class EmulatorState:
    """All server-side state, one per `Emulator`: its parts, the hooks `_server.Emulator` calls, the app.

    It is the host every part's `Protocol` describes (`wiro._api.ApiHost`, `wiro._tasks.EngineHost`,
    `wiro._sockets.SocketHost`).
    """

    def __init__(self, *, keys: Keys, stage_delay: float, output_ttl: float | None) -> None:
        self.faults = Faults()
        self.stats = Stats()
        self.catalogue = Catalogue()
        self.projects: dict[str, Project] = {
            keys.api_key: Project(keys.api_key, None, "699"),
            keys.signature_key: Project(keys.signature_key, keys.signature_secret, "700"),
        }
        self.files = FileStore()
        self.hub = SocketHub(self)
        self.engine = TaskEngine(self)
        self.folders: dict[str, dict[str, Any]] = {}
        self.stage_delay = stage_delay
        self.output_ttl = output_ttl
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.base_url = ""
        for spec in self.catalogue.models:
            self.files.add_cover(f"{spec.clean}.jpg", spec.title)
        for scene in ("beach", "forest", "city", "default"):
            self.files.add_cover(f"{scene}.jpg", scene)
        self.dify = DifyWorld(chat_key=keys.dify_chat_key, agent_key=keys.dify_agent_key,
                              chatflow_key=keys.dify_chatflow_key, faults=self.faults,
                              delta_delay=0.02 if stage_delay else 0.0)

    @property
    def tasks(self) -> dict[str, TaskRecord]:
        return self.engine.tasks

    # ---- lifecycle hooks called by _server.Emulator

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

    def create_app(self) -> ASGIApp:
        async def not_found(request: Request, exc: Exception) -> Response:
            return fail(0, BAD_URL, 404)

        routes = [*_api.routes(self), Mount("/dify/v1", app=create_dify_app(self.dify))]
        app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
        return Inspection(Gateway(app, self.faults, self.stats), self)
