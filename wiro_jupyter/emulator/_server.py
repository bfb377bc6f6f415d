"""`Emulator`: the local Wiro API (REST + task socket) and Dify-compatible chat API on uvicorn, in a daemon thread.

The server runs on its own event loop in its own thread, so it works the same
from scripts, tests and notebooks (whose kernel loop it never touches). Only
stdlib is imported at module level: starlette, uvicorn and Pillow load in
`__init__`/`start()` so `import wiro_jupyter.emulator` stays cheap.
"""

from __future__ import annotations

import contextlib
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ._keys import Keys

if TYPE_CHECKING:
    import asyncio

    from ._faults import Faults
    from ._state import EmulatorState
    from ._stats import Stats
    from .dify._world import DifyWorld
    from .wiro._records import TaskRecord

START_TIMEOUT = 15.0


class Emulator:
    """A local stand-in for api.wiro.ai + socket.wiro.ai (+ a Dify-compatible chat API).

    Every emulator has its own random keys unless they are given; read them from its properties:

    >>> with Emulator(stage_delay=0) as emu:   # doctest: +SKIP
    ...     emu.api_url, emu.socket_url, emu.api_key, emu.dify_url, emu.dify_chat_key
    """

    def __init__(self, port: int = 0, host: str = "127.0.0.1", stage_delay: float = 0.15,
                 api_key: str | None = None, output_ttl: float | None = None,
                 signature_key: str | None = None, signature_secret: str | None = None, *,
                 dify_chat_key: str | None = None, dify_agent_key: str | None = None,
                 dify_chatflow_key: str | None = None) -> None:
        from ._state import EmulatorState

        self.host = host
        keys = Keys.generate(api_key=api_key, signature_key=signature_key, signature_secret=signature_secret,
                             dify_chat_key=dify_chat_key, dify_agent_key=dify_agent_key,
                             dify_chatflow_key=dify_chatflow_key)
        # The keys (random unless given): the key-only Wiro project, the one that requires signatures
        # (with its secret), and the Dify apps in the modes "chat" (an echo that remembers the conversation),
        # "agent-chat" (a tool that draws a picture) and "advanced-chat" (a chatflow with workflow events).
        self.api_key: str = keys.api_key
        self.signature_key: str = keys.signature_key
        self.signature_secret: str = keys.signature_secret
        self.dify_chat_key: str = keys.dify_chat_key
        self.dify_agent_key: str = keys.dify_agent_key
        self.dify_chatflow_key: str = keys.dify_chatflow_key
        #: The server-side state (for white-box tests), and the parts tests use most:
        self.state: EmulatorState = EmulatorState(keys=keys, stage_delay=max(0.0, float(stage_delay)),
                                                  output_ttl=output_ttl)
        self.faults: Faults = self.state.faults  # the knobs of both services (see `Faults` for the path rule)
        self.stats: Stats = self.state.stats  # request, socket and task counters of both services
        self.tasks: dict[str, TaskRecord] = self.state.tasks  # records by task id: `emu.tasks[id].status`
        self.dify: DifyWorld = self.state.dify  # the Dify half: apps, conversations, stop flags, `messages_order`
        self._requested_port = port
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._port: int | None = None

    # ---- addresses

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/v1"

    @property
    def socket_url(self) -> str:
        return f"ws://{self.host}:{self.port}/v1"

    @property
    def dify_url(self) -> str:
        return f"{self.base_url}/dify/v1"

    # ---- knobs and inspection

    @property
    def stage_delay(self) -> float:
        return self.state.stage_delay

    @stage_delay.setter
    def stage_delay(self, seconds: float) -> None:
        self.state.stage_delay = max(0.0, float(seconds))

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def revoke(self, key: str) -> None:
        """From now on `key` gets HTTP 401 "Project authorization is not founded."."""
        self.state.revoke(key)

    def pause_queue(self) -> None:
        """New tasks stay in `task_queue` until `resume_queue()` (to test Task/Cancel)."""
        self.state.pause_queue()

    def resume_queue(self) -> None:
        self.state.resume_queue()

    def wait_task(self, task: str, timeout: float = 10.0, statuses: tuple[str, ...] | None = None) -> TaskRecord:
        """Block until the task (id or socket token) is terminal, or reaches one of `statuses`."""
        if statuses is None:
            return self.state.wait_task(task, timeout)
        return self.state.wait_task(task, timeout, statuses)

    def wait_registered(self, token: str, timeout: float = 5.0) -> bool:
        """Block until a socket has sent `task_info` for `token` (there is no ack on the wire)."""
        return self.state.wait_registered(token, timeout)

    # ---- lifecycle

    def start(self) -> Emulator:
        if self.running:
            return self
        import asyncio

        import uvicorn

        state = self.state
        app = state.create_app()
        # websockets-sansio, not the legacy "websockets" implementation, which warns on import
        # (UvicornDeprecationWarning is a UserWarning: it would show in notebooks).
        config = uvicorn.Config(app, host=self.host, port=self._requested_port, log_level="warning",
                                ws="websockets-sansio", lifespan="off", timeout_graceful_shutdown=2,
                                ws_max_size=64 * 1024 * 1024)
        ready = threading.Event()
        failure: list[BaseException] = []

        class _Server(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                ready.set()

        server = _Server(config)
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                state.on_loop(loop)
                loop.run_until_complete(server.serve())
            except BaseException as exc:  # startup failure (port in use: uvicorn calls sys.exit)
                failure.append(exc)
            finally:
                ready.set()
                try:
                    loop.run_until_complete(state.shutdown())
                    loop.run_until_complete(loop.shutdown_asyncgens())
                finally:
                    loop.close()

        thread = threading.Thread(target=run, name="wiro-emulator", daemon=True)
        thread.start()
        if not ready.wait(START_TIMEOUT) or failure or not server.started:
            server.should_exit = True
            thread.join(5)
            raise RuntimeError(f"the Wiro emulator could not start on {self.host}:{self._requested_port}"
                               + (f": {failure[0]!r}" if failure else ""))
        self._port = int(server.servers[0].sockets[0].getsockname()[1])
        self._server, self._thread, self._loop = server, thread, loop
        state.attach(self.base_url)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        import asyncio

        server, thread, loop = self._server, self._thread, self._loop
        if server is None or thread is None:
            return
        if loop is not None and not loop.is_closed():
            # If the loop is already going down, the thread's `finally` runs the same shutdown.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self._quiesce(server), loop).result(timeout)
        server.should_exit = True
        thread.join(timeout)
        self._server = self._thread = self._loop = None

    async def _quiesce(self, server: Any) -> None:
        """End task runs, then cut HTTP connections: a download still streaming would otherwise hold
        uvicorn's graceful shutdown for its full timeout and end in a logged cancellation."""
        await self.state.shutdown()
        for connection in list(server.server_state.connections):
            transport = getattr(connection, "transport", None)
            if hasattr(connection, "cycle") and transport is not None:  # HTTP, not WebSocket, protocols
                transport.abort()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.api_url if self._port is not None and self.running else "stopped"
        return f"<Emulator {where}>"
