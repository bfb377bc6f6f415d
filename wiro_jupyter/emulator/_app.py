"""The emulator's wire behaviour: REST routes, the task socket, the task engine and the fault knobs.

Everything here runs on the uvicorn loop of `_server.Emulator` (one thread). The
only things touched from other threads are the `Faults` knobs (behind a lock),
plain flags (`paused`, `revoked`) and read-only inspection (`tasks`, `stats`).

Section references (§n) point into /work/shared/research/wiro-protocol.md.
This module must never import the client side (`wiro_jupyter._*`): a shared
wire-format mistake would otherwise cancel out in the tests.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import mimetypes
import re
import secrets
import string
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from . import _media
from ._models import FILE_TYPES, NUMERIC_TYPES, SELECT_TYPES, Catalogue, InputFile, ModelFailure, ModelSpec

# Error texts of DOCS error-reference.md (§1, §2).
NOT_FOUNDED = "Project authorization is not founded."
NOT_VALID = "Project authorization is not valid."
SIGNATURE_REQUIRED = "Project requires signature authentication. x-signature and x-nonce headers are required."
BAD_URL = "Error parsing url."
INVALID = "Request parameters are invalid."
NO_TASK = "There is no task yet."

MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # File/Upload limit (§7)
TERMINAL = ("task_postprocess_end", "task_cancel")
PRE_RUN = ("task_accept", "task_assign", "task_preprocess_start", "task_preprocess_end", "task_start")
STATUS_TIMES = {
    "task_queue": "createtime", "task_accept": "accepttime", "task_assign": "assigntime",
    "task_preprocess_start": "preprocessstarttime", "task_preprocess_end": "preprocessendtime",
    "task_start": "starttime", "task_end": "endtime", "task_postprocess_start": "postprocessstarttime",
    "task_postprocess_end": "postprocessendtime", "task_cancel": "canceltime",
}
_ALNUM = string.ascii_letters + string.digits


def random_token(length: int = 30) -> str:
    """Socket access tokens and access keys: 30 alphanumerics (§5, §10)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def hex_id() -> str:
    return secrets.token_hex(16)  # file/folder ids: 32 hex (§6)


def cdn_folder() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(8))  # cdn1.wiro.ai/<8 dash-joined 8-hex groups>/ (§6)


def unix_now() -> str:
    return str(int(time.time()))


def wire_string(value: Any) -> Any:
    """Coerce an input to the strings the server echoes in `parameters` (§6: `maxImages` → "1")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [wire_string(v) for v in value]
    return json.dumps(value, separators=(",", ":"))


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    return None


def _to_int(value: Any, default: int) -> int:
    number = _to_number(value)
    return int(number) if number is not None else default


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return all(_missing(v) for v in value)
    return False


def _url_list(value: Any) -> list[str]:
    """URLs from a JSON array, a repeated multipart field, or a comma-separated companion (§4.1)."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


def ok(status: int = 200, **payload: Any) -> JSONResponse:
    # Flat envelope, no `data` wrapper (§2).
    return JSONResponse({"result": True, "errors": [], **payload}, status_code=status)


def fail(code: int, message: str, status: int = 200) -> JSONResponse:
    # Business errors are HTTP 200 + result:false; only auth (401) and bad routes (404) differ (§2).
    return JSONResponse({"result": False, "errors": [{"code": code, "message": message}]}, status_code=status)


def route_of(path: str) -> str:
    """`/v1/Task/Detail` → `Task/Detail`; `/files/x/y` → `files/x/y` (the name faults and stats use)."""
    path = path.strip("/")
    return path[3:] if path.startswith("v1/") else path


def route_matches(route: str, pattern: str | None) -> bool:
    """A knob's `path` matches the route itself, its tail (`Task/Detail`) or its head (`Run`)."""
    pattern = (pattern or "").strip("/")
    if not pattern:
        return True
    low, pat = route.lower(), pattern.lower()
    return low == pat or low.endswith("/" + pat) or low.startswith(pat + "/")


# --- accounts, knobs, counters -------------------------------------------------------------------


@dataclass
class Project:
    key: str
    secret: str | None  # None: key-only project; else signatures are required (§1)
    id: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    revoked: bool = False
    nonces: set[str] = field(default_factory=set)
    root_folder: str = field(default_factory=hex_id)


@dataclass
class _HttpFault:
    path: str
    status: int
    times: int
    retry_after: float | None
    body: str | None

    def response(self) -> Response:
        headers = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
        if self.body is not None:
            return PlainTextResponse(self.body, self.status, headers=headers)
        if self.status == 429:
            return JSONResponse({"result": False, "errors": [{"code": 0, "message": "Too many requests"}]},
                                self.status, headers=headers)
        if self.status >= 502:
            # What a proxy in front of the API sends: HTML, not the JSON envelope.
            title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
                     504: "504 Gateway Time-out"}.get(self.status, f"{self.status} Error")
            html = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>"
                    "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
            return HTMLResponse(html, self.status, headers=headers)
        if self.status >= 500:
            return PlainTextResponse("Internal Server Error", self.status, headers=headers)
        return JSONResponse({"result": False, "errors": [{"code": 0, "message": f"HTTP {self.status}"}]},
                            self.status, headers=headers)


@dataclass
class _BusinessFault:
    path: str
    code: int
    message: str
    times: int


class Faults:
    """Bounded, resettable fault knobs (`emu.faults`). Set from any thread, consumed on the server loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._http: list[_HttpFault] = []
        self._business: list[_BusinessFault] = []
        self._drop_after: int | None = None
        self._drop_times = 0
        self._frames_seen = 0
        self._silent = False
        self._refuse = 0

    def reset(self) -> None:
        with self._lock:
            self._http.clear()
            self._business.clear()
            self._drop_after, self._drop_times, self._frames_seen = None, 0, 0
            self._silent = False
            self._refuse = 0

    def http_error(self, path: str = "", status: int = 500, times: int = 1, retry_after: float | None = None,
                   body: str | None = None) -> None:
        """The next `times` HTTP requests whose route matches `path` get `status` instead of an answer."""
        if not 400 <= int(status) <= 599:
            raise ValueError("status must be 4xx or 5xx")
        with self._lock:
            self._http.append(_HttpFault(path, int(status), _bounded(times), retry_after, body))

    def business_error(self, path: str = "Run", code: int = 96,
                       message: str = "You have reached your concurrent task limit.", times: int = 1) -> None:
        """The next `times` API calls matching `path` answer HTTP 200 `result:false` with this error."""
        with self._lock:
            self._business.append(_BusinessFault(path, int(code), message, _bounded(times)))

    def drop_socket(self, after_frames: int = 3, times: int = 1) -> None:
        """After `after_frames` task frames (counted across connections) every open socket is cut abruptly."""
        with self._lock:
            self._drop_after, self._drop_times, self._frames_seen = max(0, int(after_frames)), _bounded(times), 0

    def silent_socket(self, enabled: bool = True) -> None:
        """Sockets still accept and send `connected`, but no task frames (tasks progress regardless)."""
        with self._lock:
            self._silent = bool(enabled)

    def refuse_socket(self, times: int = 1) -> None:
        """The next `times` WebSocket handshakes are rejected (HTTP 403)."""
        with self._lock:
            self._refuse = _bounded(times)

    # consumers (server loop)

    def take_http(self, route: str) -> _HttpFault | None:
        return self._take(self._http, route)

    def take_business(self, route: str) -> _BusinessFault | None:
        return self._take(self._business, route)

    def _take(self, knobs: list[Any], route: str) -> Any:
        with self._lock:
            for knob in knobs:
                if route_matches(route, knob.path):
                    knob.times -= 1
                    if knob.times <= 0:
                        knobs.remove(knob)
                    return knob
        return None

    def take_refuse(self) -> bool:
        with self._lock:
            if self._refuse > 0:
                self._refuse -= 1
                return True
            return False

    @property
    def silent(self) -> bool:
        return self._silent

    def count_task_frame(self) -> bool:
        """Count one sent task frame; True when the sockets must be dropped now."""
        with self._lock:
            if self._drop_after is None:
                return False
            self._frames_seen += 1
            if self._frames_seen < self._drop_after:
                return False
            self._frames_seen = 0
            self._drop_times -= 1
            if self._drop_times <= 0:
                self._drop_after = None
            return True


def _bounded(times: int) -> int:
    return max(1, min(int(times), 10_000))


class Stats:
    """Counters for assertions (`emu.stats`)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests: Counter[str] = Counter()  # by route, e.g. "Task/Detail", "Run/wiro/slow", "files/…"
        self.socket_connections = 0  # accepted WebSocket connections
        self.sockets_refused = 0
        self.socket_frames = 0  # task frames sent
        self.callbacks: list[tuple[str, int | str]] = []  # (callbackUrl, HTTP status or error name)

    def count(self, path: str = "") -> int:
        """Requests whose route matches `path` (same matching rule as the fault knobs)."""
        return sum(n for route, n in list(self.requests.items()) if route_matches(route, path))


# --- files ---------------------------------------------------------------------------------------


@dataclass
class StoredFile:
    name: str
    content_type: str
    size: int
    data: bytes | None = None
    blob_seed: str | None = None  # streamed from a generator, never held in memory
    render: Callable[[], bytes] | None = None  # rendered on first GET (catalogue covers)
    expires_at: float | None = None


class FileStore:
    """Inputs, uploads and outputs, served at /files/<folder>/<name> and /v1/File/<token>/<name>."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], StoredFile] = {}

    def put(self, folder: str, stored: StoredFile) -> None:
        self._files[(folder, stored.name)] = stored

    def get(self, folder: str, name: str) -> StoredFile | None:
        stored = self._files.get((folder, name))
        if stored is not None and stored.expires_at is not None and time.time() > stored.expires_at:
            return None
        return stored

    def remove(self, folder: str, name: str) -> None:
        self._files.pop((folder, name), None)


def safe_name(name: str, fallback: str = "file") -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return name[:120] or fallback


# --- tasks ---------------------------------------------------------------------------------------


@dataclass(eq=False)
class TaskRecord:
    """One task as the emulator knows it. `detail()` is its Task/Detail wire form (§6); `record["status"]` works too."""

    id: str
    token: str
    project: Project
    spec: ModelSpec
    parameters: dict[str, Any]  # echoed, string-coerced
    values: dict[str, Any]  # effective typed values for the model run
    inputs: dict[str, list[InputFile]]
    callback_url: str = ""
    status: str = "task_queue"
    pexit: str | None = None
    times: dict[str, str] = field(default_factory=lambda: dict.fromkeys(STATUS_TIMES.values(), "0"))
    outputs: list[dict[str, Any]] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    debugoutput: str = ""
    debugerror: str = ""
    totalcost: str = "0"
    started_at: float | None = None
    ended_at: float | None = None
    turns: int = 0
    progress_frames: int = 0
    llm: dict[str, Any] | None = None
    folder_id: str = field(default_factory=hex_id)
    cdn: str = field(default_factory=cdn_folder)
    runner: asyncio.Task[None] | None = None
    listener: asyncio.Event = field(default_factory=asyncio.Event)
    audio: asyncio.Queue[bytes | str | None] = field(default_factory=asyncio.Queue)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def realtime(self) -> bool:
        return self.spec.price_method == "cp-realtimeturn"

    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.ended_at or time.time()) - self.started_at)

    def detail(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "id": self.id, "uuid": self.project.uuid, "name": "", "description": "",
            "socketaccesstoken": self.token, "parameters": dict(self.parameters),
            "debugoutput": self.debugoutput, "debugerror": self.debugerror,
            "status": self.status, "pexit": self.pexit,  # null while running (§6)
            **self.times,
            "elapsedseconds": f"{self.elapsed():.4f}", "cps": spec.cps, "totalcost": self.totalcost,
            "guestid": None, "projectid": self.project.id, "modelid": spec.id, "runtype": "model",
            "callbackurl": self.callback_url, "marketplaceid": None,
            "categories": json.dumps(list(spec.categories)),  # a JSON string (§6 [?], ALTU)
            "dynamicprice": spec.dynamicprice, "modeldescription": spec.description,
            "modelslugowner": spec.owner, "modelslugproject": spec.clean,
            "size": str(sum(int(o.get("size", 0)) for o in self.outputs if "size" in o)),
            "outputs": [dict(o) for o in self.outputs],
        }

    def __getitem__(self, key: str) -> Any:
        return self.detail()[key]


class _TaskRun:
    """The `RunContext` a model run gets (see `_models.RunContext`)."""

    def __init__(self, state: EmulatorState, task: TaskRecord) -> None:
        self.state, self.task = state, task
        self.task_id = task.id
        self.parameters = task.parameters

    def value(self, name: str) -> Any:
        return self.task.values.get(name)

    def files(self, name: str) -> list[InputFile]:
        return list(self.task.inputs.get(name, []))

    async def tick(self, factor: float = 1.0) -> None:
        await self.state.delay(factor)

    async def output_line(self, text: str) -> None:
        self.task.stdout.append(text)
        self.state.emit(self.task, "task_output", text)

    async def progress(self, message: dict[str, str]) -> None:
        # Quirk (§8, Dart CHANGELOG): `message` is sometimes the progress object
        # JSON-encoded as a string, sometimes the object itself. Alternate.
        n = self.task.progress_frames
        self.task.progress_frames += 1
        self.state.emit(self.task, "task_output", json.dumps(message) if n % 2 == 0 else message)

    async def error_line(self, text: str) -> None:
        self.task.stderr.append(text)
        self.state.emit(self.task, "task_error", text)

    async def llm_snapshot(self, snapshot: dict[str, Any]) -> None:
        self.state.emit(self.task, "task_output", snapshot)

    def llm_result(self, prompt: str, raw: str, thinking: list[str], answer: list[str]) -> None:
        self.task.llm = {"prompt": prompt, "raw": raw, "thinking": list(thinking), "answer": list(answer)}

    def add_output(self, name: str, content_type: str, data: bytes) -> None:
        self.state.add_output(self.task, StoredFile(name, content_type, len(data), data=data))

    def add_blob_output(self, name: str, content_type: str, size: int, seed: str) -> None:
        self.state.add_output(self.task, StoredFile(name, content_type, size, blob_seed=seed))

    async def render(self, func: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(func, *args)  # Pillow work off the loop

    def session(self, session_id: str) -> list[str]:
        return self.state.sessions.setdefault(session_id, [])

    async def send_event(self, type_: str, **extra: Any) -> None:
        frame: dict[str, Any] = {"type": type_, "id": self.task.id, "tasktoken": self.task.token, "result": True}
        self.state.hub.broadcast(self.task.token, {**frame, **extra})  # realtime frames have no `message` (§8)

    async def send_audio(self, pcm: bytes) -> None:
        self.state.hub.send_binary(self.task.token, self.task.token.encode("ascii") + b"|" + pcm)

    async def wait_for_listener(self) -> None:
        await self.task.listener.wait()

    async def next_audio(self) -> bytes | str | None:
        return await self.task.audio.get()

    def add_turn(self) -> None:
        self.task.turns += 1


# --- sockets -------------------------------------------------------------------------------------


class _Connection:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.tokens: set[str] = set()
        self.outbox: asyncio.Queue[tuple[str | bytes, bool] | None] = asyncio.Queue()
        self.dropped = False

    def push(self, payload: str | bytes, task_frame: bool = True) -> None:
        self.outbox.put_nowait((payload, task_frame))

    def drop(self) -> None:
        self.dropped = True
        self.outbox.put_nowait(None)


class SocketHub:
    """Connections and which task tokens each listens to (many per connection, §8)."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self.connections: set[_Connection] = set()
        self.listeners: dict[str, set[_Connection]] = {}

    def register(self, conn: _Connection, token: str) -> None:
        if token in conn.tokens:
            return  # duplicates ignored (§8)
        conn.tokens.add(token)
        self.listeners.setdefault(token, set()).add(conn)

    def remove(self, conn: _Connection) -> None:
        self.connections.discard(conn)
        for token in conn.tokens:
            listeners = self.listeners.get(token)
            if listeners is None:
                continue
            listeners.discard(conn)
            if not listeners:
                del self.listeners[token]
                self.state.on_last_listener_gone(token)

    def broadcast(self, token: str, frame: dict[str, Any]) -> None:
        if self.state.faults.silent:
            return
        text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
        for conn in self.listeners.get(token, ()):
            conn.push(text)

    def send_binary(self, token: str, data: bytes) -> None:
        if self.state.faults.silent:
            return
        for conn in self.listeners.get(token, ()):
            conn.push(data)

    def drop_all(self) -> None:
        for conn in list(self.connections):
            conn.drop()


# --- the state and its routes ----------------------------------------------------------------------


class EmulatorState:
    """All server-side state plus the route handlers; one per `Emulator`."""

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
        self.tasks: dict[str, TaskRecord] = {}
        self._by_token: dict[str, TaskRecord] = {}
        self.sessions: dict[str, list[str]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.taskstats: dict[str, Counter[str]] = {spec.id: Counter() for spec in self.catalogue.models}
        self.stage_delay = stage_delay
        self.output_ttl = output_ttl
        self.max_upload_bytes = MAX_UPLOAD_BYTES
        self.base_url = ""
        self.loop: asyncio.AbstractEventLoop | None = None
        self.paused = False
        self._queue_event: asyncio.Event | None = None
        self._next_task_id = 2221
        self._next_input = 6060136
        self._background: set[asyncio.Task[Any]] = set()
        self._registered = threading.Condition()
        self._registrations: Counter[str] = Counter()
        self._status_changed = threading.Condition()
        for spec in self.catalogue.models:
            self._add_cover(f"{spec.clean}.jpg", spec.title)
        for scene in ("beach", "forest", "city", "default"):
            self._add_cover(f"{scene}.jpg", scene)

    def _add_cover(self, name: str, title: str) -> None:
        self.files.put("covers", StoredFile(name, "image/jpeg", 0, render=lambda: _media.cover_image(title)))

    # lifecycle hooks called by _server.Emulator

    def on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called on the server thread before serving."""
        self.loop = loop
        self._queue_event = asyncio.Event()

    def attach(self, base_url: str) -> None:
        """Called once the real port is known; output and cover URLs are built from it."""
        self.base_url = base_url

    async def shutdown(self) -> None:
        pending = [t.runner for t in self.tasks.values() if t.runner is not None and not t.runner.done()]
        pending += list(self._background)
        for job in pending:
            job.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    def revoke(self, key: str) -> None:
        if key in self.projects:
            self.projects[key].revoked = True

    def pause_queue(self) -> None:
        self.paused = True

    def resume_queue(self) -> None:
        self.paused = False
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._wake_queue)

    def _wake_queue(self) -> None:
        event, self._queue_event = self._queue_event, asyncio.Event()
        if event is not None:
            event.set()

    def wait_task(self, ident: str, timeout: float = 10.0, statuses: tuple[str, ...] = TERMINAL) -> TaskRecord:
        """Block (another thread) until the task with this id or token reaches one of `statuses`."""

        ident = str(ident)

        def reached() -> bool:
            task = self.tasks.get(ident) or self._by_token.get(ident)
            return task is not None and task.status in statuses

        with self._status_changed:
            if not self._status_changed.wait_for(reached, timeout):
                raise TimeoutError(f"task {ident} did not reach {statuses} within {timeout} s")
        return self.tasks.get(ident) or self._by_token[ident]

    def wait_registered(self, token: str, timeout: float = 5.0) -> bool:
        with self._registered:
            return self._registered.wait_for(lambda: self._registrations[token] > 0, timeout)

    async def delay(self, factor: float = 1.0) -> None:
        seconds = self.stage_delay * factor
        await asyncio.sleep(seconds if seconds > 0 else 0)  # 0 still yields to the loop between frames

    def _spawn(self, coro: Any) -> None:
        job = asyncio.get_running_loop().create_task(coro)
        self._background.add(job)
        job.add_done_callback(self._background.discard)

    # ---- the app

    def create_app(self, dify_app: ASGIApp) -> ASGIApp:
        routes = [
            WebSocketRoute("/v1", self.socket_endpoint),
            Route("/v1/File/{folder}/{name}", self.serve_file, methods=["GET", "HEAD"]),
            Route("/files/{folder}/{name}", self.serve_file, methods=["GET", "HEAD"]),
            Route("/v1/{path:path}", self.api, methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]),
            Mount("/dify/v1", app=dify_app),
        ]

        async def not_found(request: Request, exc: Exception) -> Response:
            return fail(0, BAD_URL, 404)

        app = Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found})
        return _FaultMiddleware(app, self)

    # ---- REST

    async def api(self, request: Request) -> Response:
        path = request.path_params["path"].strip("/")
        parts = path.split("/")
        handler: Callable[..., Any] | None = None
        if request.method == "POST":
            is_run = len(parts) == 3 and parts[0].lower() == "run"
            handler = self.run if is_run else self._handlers().get(path.lower())
        if handler is None:
            return fail(0, BAD_URL, 404)
        project = self.authenticate(request)
        if isinstance(project, Response):
            return project
        fault = self.faults.take_business(path)
        if fault is not None:
            return fail(fault.code, fault.message)
        if handler == self.run:
            return await self.run(request, project, parts[1], parts[2])
        if handler == self.file_upload:
            return await self.file_upload(request, project)
        body, files, error = await self.read_body(request)
        for uploads in files.values():  # only Run and File/Upload take files
            for upload in uploads:
                await upload.close()
        if error is not None:
            return error
        response: Response = await handler(project, body)
        return response

    def _handlers(self) -> dict[str, Callable[..., Any]]:
        return {
            "tool/list": self.tool_list, "tool/detail": self.tool_detail, "tool/explore": self.tool_explore,
            "task/detail": self.task_detail, "task/list": self.task_list, "task/cancel": self.task_cancel,
            "task/kill": self.task_kill, "task/inputoutputdelete": self.task_io_delete,
            "file/foldercreate": self.folder_create, "file/upload": self.file_upload,
        }

    def authenticate(self, request: Request) -> Project | Response:
        key = request.headers.get("x-api-key", "")
        project = self.projects.get(key)
        if project is None or project.revoked:
            return fail(0, NOT_FOUNDED, 401)
        if project.secret is None:
            return project  # key-only project; extra signature headers are ignored (§1 [?])
        nonce, signature = request.headers.get("x-nonce"), request.headers.get("x-signature")
        if not nonce or not signature:
            return fail(0, SIGNATURE_REQUIRED, 401)
        # hex HMAC-SHA256, key = API key, message = secret + nonce (§1)
        expected = hmac.new(key.encode(), (project.secret + nonce).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature) or nonce in project.nonces:
            return fail(0, NOT_VALID, 401)  # wrong signature, or a replayed nonce
        project.nonces.add(nonce)
        return project

    async def read_body(self, request: Request) -> tuple[dict[str, Any], dict[str, list[UploadFile]], Response | None]:
        content_type = request.headers.get("content-type", "").lower()
        fields: dict[str, list[Any]] = {}
        files: dict[str, list[UploadFile]] = {}
        if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            try:
                form = await request.form(max_files=100, max_fields=1000, max_part_size=16 * 1024 * 1024)
            except HTTPException:
                return {}, {}, fail(0, INVALID)
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files.setdefault(key, []).append(value)
                else:
                    fields.setdefault(key, []).append(value)
            return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}, files, None
        raw = await request.body()
        if not raw.strip():
            return {}, {}, None
        try:
            body = json.loads(raw)
        except ValueError:
            return {}, {}, fail(0, INVALID)
        if not isinstance(body, dict):
            return {}, {}, fail(0, INVALID)
        return body, {}, None

    # Tool/*

    def tool_item(self, spec: ModelSpec) -> dict[str, Any]:
        stat = self.taskstats[spec.id]
        return {
            "id": spec.id, "title": spec.title, "slugowner": spec.owner, "slugproject": spec.project,
            "cleanslugowner": spec.owner, "cleanslugproject": spec.clean, "description": spec.description,
            "seodescription": spec.description, "image": f"{self.base_url}/files/covers/{spec.clean}.jpg",
            "computingtime": spec.computingtime, "categories": list(spec.categories), "tags": [],
            "marketplace": 1, "onlymembers": "0", "averagepoint": "5.00", "commentcount": "0",
            "dynamicprice": spec.dynamicprice, "cps": spec.cps,
            "approximatelycost": (f"{spec.price:.4f}".rstrip("0").rstrip(".") or "0"),
            # strings except runcount (§3)
            "taskstat": {"runcount": stat["run"], "successcount": str(stat["success"]),
                         "errorcount": str(stat["error"]), "lastruntime": str(stat["last"])},
        }

    async def tool_list(self, project: Project, body: dict[str, Any]) -> Response:
        start = max(0, _to_int(body.get("start"), 0))
        limit = _to_int(body.get("limit"), 20)
        limit = 20 if limit <= 0 else min(limit, 1000)
        search = str(body.get("search") or "").strip().lower()
        categories = body.get("categories") or []
        if isinstance(categories, str):
            categories = [c for c in categories.split(",") if c]
        wanted = {str(c).strip().lower() for c in categories if str(c).strip()}
        owner = str(body.get("slugowner") or "").strip().lower()
        models = [
            spec for spec in self.catalogue.models
            if (not search or any(search in text.lower()
                                  for text in (spec.title, spec.project, spec.clean, spec.description)))
            and (not wanted or wanted & set(spec.categories))
            and (not owner or owner == spec.owner)
        ]
        sort, order = str(body.get("sort") or "").lower(), str(body.get("order") or "").upper()
        if sort in ("id", "time"):
            models.sort(key=lambda s: int(s.id), reverse=order != "ASC")
        elif sort == "title":
            models.sort(key=lambda s: s.title.lower(), reverse=order == "DESC")
        page = models[start: start + limit]
        return ok(total=len(models), tool=[self.tool_item(s) for s in page])  # `total` is a number here (§3)

    def _parameters(self, spec: ModelSpec) -> list[dict[str, Any]]:
        groups = json.loads(json.dumps(spec.groups))
        for item in (i for g in groups for i in g["items"]):
            for option in item.get("options", []):
                if str(option.get("cover", "")).startswith("/"):
                    option["cover"] = self.base_url + option["cover"]
        return groups

    async def tool_detail(self, project: Project, body: dict[str, Any]) -> Response:
        spec = self.catalogue.find(str(body.get("slugowner") or ""), str(body.get("slugproject") or ""))
        if spec is None:
            return fail(1, "slug-owner-project-not-exist")
        item = self.tool_item(spec)
        item.update(readme=spec.readme, parameters=self._parameters(spec), inspire=list(spec.inspire), samples=[],
                    ratedusercount="0", seotitle=spec.title)
        return ok(tool=[item])  # an array with one element (§4)

    async def tool_explore(self, project: Project, body: dict[str, Any]) -> Response:
        tools = [{"id": s.id, "cleanslugowner": s.owner, "cleanslugproject": s.clean,
                  "image": f"{self.base_url}/files/covers/{s.clean}.jpg", "description": s.description,
                  "categories": list(s.categories), "commentcount": "0", "ratedusercount": "0",
                  "averagepoint": "5.00", "discount": None} for s in self.catalogue.models]
        return ok(explore=[{"id": "1", "title": "Featured", "url": "", "total": len(tools), "tools": tools}])

    # Run

    async def run(self, request: Request, project: Project, owner: str, slug: str) -> Response:
        spec = self.catalogue.find(owner, slug)
        if spec is None:
            return fail(1, "slug-owner-project-not-exist")
        body, files, error = await self.read_body(request)
        if error is not None:
            return error
        try:
            prepared = await self._prepare(spec, body, files)
        finally:
            for uploads in files.values():
                for upload in uploads:
                    await upload.close()
        if isinstance(prepared, str):
            return fail(0, prepared)
        parameters, values, inputs = prepared
        task = TaskRecord(str(self._next_task_id), random_token(), project, spec, parameters, values, inputs,
                          callback_url=str(body.get("callbackUrl") or ""))
        self._next_task_id += 1
        self.tasks[task.id] = task
        self._by_token[task.token] = task
        stat = self.taskstats[spec.id]
        stat["run"] += 1
        stat["last"] = int(time.time())
        self._advance(task, "task_queue")
        task.runner = asyncio.get_running_loop().create_task(self._lifecycle(task))
        return ok(taskid=task.id, socketaccesstoken=task.token)  # taskid: numeric string (§5)

    async def _prepare(self, spec: ModelSpec, body: dict[str, Any], files: dict[str, list[UploadFile]]
                       ) -> str | tuple[dict[str, Any], dict[str, Any], dict[str, list[InputFile]]]:
        """Validate like the real server (first error wins, §2 texts) and build the task's inputs."""
        parameters: dict[str, Any] = {k: wire_string(v) for k, v in body.items()}
        values: dict[str, Any] = {}
        inputs: dict[str, list[InputFile]] = {}
        folder = random_token()  # /v1/File/<token>/… for this run's uploads (§5)
        declared = {item["id"] for item in spec.items}
        for item in spec.items:
            pid, kind = item["id"], item["type"]
            if kind in FILE_TYPES:
                entries = [await self._store_input(folder, pid, up) for up in files.get(pid, [])]
                entries += [self._input_from_url(url) for url in _url_list(body.get(pid))]
                if entries:
                    urls = [e.url for e in entries]
                    parameters[pid] = urls[0] if kind == "fileinput" and len(urls) == 1 else urls
                companion = pid + "Url"  # its own declared `text` parameter (§4.1)
                if companion in declared or companion in body:
                    entries += [self._input_from_url(url) for url in _url_list(body.get(companion))]
                if not entries and item["required"]:
                    return f"Request files [{pid}] required"
                limit = item.get("maxinputlenght") or (1 if kind == "fileinput" else 0)
                if limit and len(entries) > limit:
                    return INVALID
                inputs[pid] = entries
                continue
            value = body.get(pid)
            # An empty-string option is a real choice ("match input", research §4.1), not a missing value.
            chosen_empty = value == "" and kind in SELECT_TYPES and "" in {o["value"] for o in item.get("options", [])}
            if _missing(value) and not chosen_empty:
                if item["required"]:
                    return f"Request parameter [{pid}] required"
                value = item.get("defaultvalue")
                checked = False
            else:
                checked = True
            converted = self._convert(item, value, checked)
            if isinstance(converted, _Invalid):
                return converted.message
            values[pid] = converted
        for pid, uploads in files.items():  # undeclared file fields: stored and echoed anyway
            if pid in declared:
                continue
            urls = [(await self._store_input(folder, pid, up)).url for up in uploads]
            parameters[pid] = urls[0] if len(urls) == 1 else urls
        return parameters, values, inputs

    def _convert(self, item: dict[str, Any], value: Any, checked: bool) -> Any:
        pid, kind = item["id"], item["type"]
        if kind in NUMERIC_TYPES:
            number = _to_number(value)
            if number is None:
                return _Invalid(f"Request parameter [{pid}] must be integer or float") if checked else 0
            low, high = item.get("minvalue", ""), item.get("maxvalue", "")
            if checked and low != "" and high != "" and not float(low) <= number <= float(high):
                return _Invalid(f"Request parameter [{pid}] must be between {low} and {high}")
            return int(number) if number.is_integer() else number
        if kind in SELECT_TYPES:
            text = wire_string(value)
            if checked and text not in {str(o["value"]) for o in item.get("options", [])}:
                return _Invalid(INVALID)
            return text
        if kind == "checkbox":
            flag = _to_bool(value)
            if flag is None:
                return _Invalid(INVALID) if checked else False
            return flag
        return value if isinstance(value, str) else wire_string(value)

    async def _store_input(self, folder: str, pid: str, upload: UploadFile) -> InputFile:
        data = await upload.read()
        content_type = upload.content_type or mimetypes.guess_type(upload.filename or "")[0] or ""
        ext = (safe_name(upload.filename or "").rpartition(".")[2] if "." in (upload.filename or "") else "")
        ext = ext or (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")
        name = f"{pid}-{self._next_input}.{ext.lower()}"  # like …/v1/File/<token>/inputImage-6060136.png (§5)
        self._next_input += 1
        self.files.put(folder, StoredFile(name, content_type or "application/octet-stream", len(data), data=data))
        return InputFile(f"{self.base_url}/v1/File/{folder}/{name}", name, data)

    def _input_from_url(self, url: str) -> InputFile:
        """URLs into the emulator are read locally; any other URL is only recorded (no network)."""
        parsed = urllib.parse.urlsplit(url)
        name = safe_name(parsed.path, "input")
        ours = urllib.parse.urlsplit(self.base_url)
        if parsed.port == ours.port and (parsed.hostname or "") in ("127.0.0.1", "localhost", ours.hostname):
            parts = parsed.path.strip("/").split("/")
            if (len(parts) == 3 and parts[0] == "files") or (len(parts) == 4 and parts[:2] == ["v1", "File"]):
                stored = self.files.get(parts[-2], urllib.parse.unquote(parts[-1]))
                if stored is not None and stored.data is not None:
                    return InputFile(url, name, stored.data)
        return InputFile(url, name, None)

    # Task/*

    def _find_task(self, project: Project, body: dict[str, Any]) -> TaskRecord | str | None:
        token = body.get("tasktoken") or body.get("socketaccesstoken")
        task_id = body.get("taskid")
        if _missing(token) and _missing(task_id):
            return "taskid or socketaccesstoken is required"
        task = self._by_token.get(str(token)) if not _missing(token) else self.tasks.get(str(task_id).strip())
        if task is None or task.project is not project:
            return None
        return task

    def _task_response(self, tasks: list[TaskRecord], total: int | None = None) -> Response:
        # `total` is a STRING in Task/* answers (§6).
        return ok(total=str(len(tasks) if total is None else total), tasklist=[t.detail() for t in tasks])

    async def task_detail(self, project: Project, body: dict[str, Any]) -> Response:
        task = self._find_task(project, body)
        if isinstance(task, str):
            return fail(0, task)
        if task is None:
            return fail(1, NO_TASK)
        return self._task_response([task])

    async def task_list(self, project: Project, body: dict[str, Any]) -> Response:
        tasks = [t for t in self.tasks.values() if t.project is project]
        model = str(body.get("modelName") or "").strip().lower()
        if model:
            tasks = [t for t in tasks if f"{t.spec.owner}/{t.spec.clean}" == model]
        tasks.sort(key=lambda t: int(t.id), reverse=str(body.get("order") or "DESC").upper() != "ASC")
        start, limit = max(0, _to_int(body.get("start"), 0)), _to_int(body.get("limit"), 20) or 20
        return self._task_response(tasks[start: start + limit], total=len(tasks))

    async def task_cancel(self, project: Project, body: dict[str, Any]) -> Response:
        task = self._find_task(project, body)
        if isinstance(task, str):
            return fail(0, task)
        if task is None:
            return fail(1, NO_TASK)
        if task.status != "task_queue":
            # Cancel is for queued tasks only; running ones need Task/Kill (§7).
            return fail(1, "Task is not cancellable. Only queued tasks can be cancelled; use Task/Kill for "
                           "running tasks.")
        self._end_cancelled(task, killed=False)
        return self._task_response([task])

    async def task_kill(self, project: Project, body: dict[str, Any]) -> Response:
        task = self._find_task(project, body)
        if isinstance(task, str):
            return fail(0, task)
        if task is None:
            return fail(1, NO_TASK)
        if task.status == "task_queue" or task.terminal:
            return fail(1, "Task is not killable. Only running tasks can be killed; use Task/Cancel for "
                           "queued tasks.")
        self._end_cancelled(task, killed=True)
        return self._task_response([task])

    async def task_io_delete(self, project: Project, body: dict[str, Any]) -> Response:
        task = self._find_task(project, body)
        if not isinstance(task, TaskRecord):
            return fail(1, "task-not-exist")
        if not task.terminal:
            return fail(1, "Task must be completed or cancelled before deleting files")
        for output in task.outputs:
            if "name" in output:
                self.files.remove(task.cdn, output["name"])
        for entries in task.inputs.values():
            for entry in entries:
                parts = urllib.parse.urlsplit(entry.url).path.strip("/").split("/")
                if len(parts) == 4 and parts[:2] == ["v1", "File"]:
                    self.files.remove(parts[2], parts[3])
        return ok()

    # File/*

    async def folder_create(self, project: Project, body: dict[str, Any]) -> Response:
        name = str(body.get("name") or "").strip()
        if not name:
            return fail(0, "Request parameter [name] required")
        parent = body.get("parentid", body.get("parentId")) or project.root_folder
        folder = {"id": hex_id(), "name": name, "parentid": str(parent), "size": "0", "contenttype": "",
                  "addedtime": unix_now()}
        self.folders[folder["id"]] = folder
        return ok(list=[dict(folder)])

    async def file_upload(self, request: Request, project: Project) -> Response:
        body, files, error = await self.read_body(request)
        if error is not None:
            return error
        uploads = files.get("file") or []
        try:
            if not uploads:
                return fail(0, "Request files [file] required")
            upload = uploads[0]
            if (upload.size or 0) > self.max_upload_bytes:
                return fail(0, f"File size exceeds the limit of {self.max_upload_bytes // (1024 * 1024)} MB.")
            data = await upload.read()
        finally:
            for items in files.values():
                for item in items:
                    await item.close()
        name = safe_name(upload.filename or "", "upload.bin")
        content_type = upload.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        folder = cdn_folder()
        self.files.put(folder, StoredFile(name, content_type, len(data), data=data))
        parent = body.get("folderid", body.get("folderId")) or project.root_folder
        return ok(list=[{"id": hex_id(), "name": name, "contenttype": content_type, "size": str(len(data)),
                         "parentid": str(parent), "url": f"{self.base_url}/files/{folder}/{name}",
                         "addedtime": unix_now(), "accesskey": random_token()}])

    # ---- served files

    async def serve_file(self, request: Request) -> Response:
        folder, name = request.path_params["folder"], request.path_params["name"]
        stored = self.files.get(folder, name)
        if stored is None:
            return PlainTextResponse("Not Found", 404)
        if stored.data is None and stored.render is not None:
            stored.data = await asyncio.to_thread(stored.render)
            stored.size = len(stored.data)
        total = stored.size
        start, end, status = 0, total, 200
        headers = {"content-type": stored.content_type, "accept-ranges": "bytes"}
        wanted = request.headers.get("range", "")
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", wanted) if wanted else None
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(total, int(match.group(2)) + 1) if match.group(2) else total
            else:
                start = max(0, total - int(match.group(2)))
            if start >= total or start >= end:
                return Response(b"", 416, headers={"content-range": f"bytes */{total}"})
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{total}"
        headers["content-length"] = str(end - start)
        if request.method == "HEAD":
            return Response(b"", status, headers=headers)
        if stored.data is not None:
            return Response(stored.data[start:end], status, headers=headers)
        assert stored.blob_seed is not None
        # Big outputs stream from a generator: constant memory whatever the size.
        return StreamingResponse(_media.blob_byte_range(stored.blob_seed, start, end), status, headers=headers)

    # ---- the task engine

    def emit(self, task: TaskRecord, type_: str, message: Any = None) -> None:
        # Frame envelope (§8).
        self.hub.broadcast(task.token, {"type": type_, "id": task.id, "tasktoken": task.token, "message": message,
                                        "result": True})

    def _advance(self, task: TaskRecord, status: str, message: Any = None) -> None:
        task.status = status
        task.times[STATUS_TIMES[status]] = unix_now()
        self.emit(task, status, message)
        with self._status_changed:
            self._status_changed.notify_all()

    def add_output(self, task: TaskRecord, stored: StoredFile) -> None:
        if self.output_ttl is not None:
            stored.expires_at = time.time() + self.output_ttl
        self.files.put(task.cdn, stored)
        now = unix_now()
        task.outputs.append({
            "id": hex_id(), "name": stored.name, "contenttype": stored.content_type, "parentid": task.folder_id,
            "uuid": task.project.uuid, "size": str(stored.size), "addedtime": now, "modifiedtime": now,
            "accesskey": random_token(), "foldercount": "0", "filecount": "0", "ispublic": 0,
            "expiretime": None if stored.expires_at is None else str(int(stored.expires_at)),
            "url": f"{self.base_url}/files/{task.cdn}/{stored.name}",
        })

    async def _lifecycle(self, task: TaskRecord) -> None:
        try:
            await self._progress(task)
        finally:
            if task.terminal and task.callback_url:
                self._spawn(self._callback(task))

    async def _progress(self, task: TaskRecord) -> None:
        await self.delay()
        while self.paused:  # pause_queue(): stay in task_queue (cancel-while-queued tests)
            assert self._queue_event is not None
            await self._queue_event.wait()
        for status in PRE_RUN:
            self._advance(task, status)
            await self.delay()
        task.started_at = time.time()
        failure: str | None = None
        try:
            await task.spec.run(_TaskRun(self, task))
        except ModelFailure as exc:
            failure = str(exc)
        except Exception as exc:  # a crashing model ends its task the same way a failing one does
            failure = f"{type(exc).__name__}: {exc}"
        task.ended_at = time.time()
        if task.llm is not None:
            # LLM: the answer lives in debugoutput and a raw output item (§6, llm-chat-streaming.md).
            task.debugoutput = "".join(task.llm["answer"])
            self.emit(task, "task_output_full", {k: task.llm[k] for k in ("raw", "thinking", "answer")})
        elif task.stdout:
            task.debugoutput = "\n".join(task.stdout)
            self.emit(task, "task_output_full", {"raw": task.debugoutput})
        if failure is not None:
            task.debugerror = failure
            self.emit(task, "task_error_full", {"raw": failure})
        await self.delay()
        self._advance(task, "task_end")
        await self.delay()
        self._advance(task, "task_postprocess_start")
        await self.delay()
        stat = self.taskstats[task.spec.id]
        if failure is not None:
            task.pexit, task.outputs, task.totalcost = "1", [], "0"
            stat["error"] += 1
        else:
            if task.llm is not None:
                task.outputs = [{"contenttype": "raw", "content": dict(task.llm)}]
            task.pexit, task.totalcost = "0", f"{self._cost(task):.12f}"
            stat["success"] += 1
        self._advance(task, "task_postprocess_end", [dict(o) for o in task.outputs])

    def _cost(self, task: TaskRecord) -> float:
        price, method = task.spec.price, task.spec.price_method
        if method == "cpo":
            return price * len(task.outputs)
        if method == "cps":
            return price * task.elapsed()
        if method == "cp-realtimeturn":
            return price * task.turns
        return price

    def _end_cancelled(self, task: TaskRecord, killed: bool) -> None:
        if killed:
            task.pexit, task.debugerror = "-1", (task.debugerror + "\nkilled").strip()
            task.ended_at = time.time()
        task.outputs, task.totalcost = [], "0"
        self._advance(task, "task_cancel")  # terminal (§8)
        if task.runner is not None and task.runner is not asyncio.current_task():
            task.runner.cancel()
        if task.callback_url and (task.runner is None or task.runner.done()):
            self._spawn(self._callback(task))

    async def _callback(self, task: TaskRecord) -> None:
        """Best effort POST of the final Task/Detail to `callbackUrl`; loopback only (no network)."""
        url = task.callback_url
        host = urllib.parse.urlsplit(url).hostname or ""
        if host not in ("127.0.0.1", "localhost", "::1"):
            self.stats.callbacks.append((url, "skipped"))
            return
        payload = json.dumps({"result": True, "errors": [], "total": "1", "tasklist": [task.detail()]}).encode()

        def post() -> int:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            request = urllib.request.Request(url, data=payload, method="POST",
                                             headers={"content-type": "application/json"})
            with opener.open(request, timeout=5) as response:
                return int(response.status)

        try:
            status: int | str = await asyncio.to_thread(post)
        except Exception as exc:
            status = type(exc).__name__
        self.stats.callbacks.append((url, status))

    # ---- the socket

    async def socket_endpoint(self, ws: WebSocket) -> None:
        if self.faults.take_refuse():
            self.stats.sockets_refused += 1
            await ws.close(code=1008)  # before accept: uvicorn answers the handshake with HTTP 403
            return
        await ws.accept()
        self.stats.socket_connections += 1
        conn = _Connection(ws)
        self.hub.connections.add(conn)
        conn.push(json.dumps({"type": "connected", "version": "1.0"}), task_frame=False)  # welcome frame (§8)
        reader = asyncio.get_running_loop().create_task(self._read_socket(conn))
        writer = asyncio.get_running_loop().create_task(self._write_socket(conn))
        try:
            await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in (reader, writer):
                job.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self.hub.remove(conn)
        # Returning without a close frame makes uvicorn drop the TCP connection: that is
        # the abrupt cut of `faults.drop_socket`; for a closed client there is nothing left to do.

    async def _write_socket(self, conn: _Connection) -> None:
        while True:
            item = await conn.outbox.get()
            if item is None or conn.dropped:
                return
            payload, task_frame = item
            try:
                if isinstance(payload, bytes):
                    await conn.ws.send_bytes(payload)
                else:
                    await conn.ws.send_text(payload)
            except Exception:  # the client went away
                return
            if task_frame:
                self.stats.socket_frames += 1
                if self.faults.count_task_frame():
                    self.hub.drop_all()

    async def _read_socket(self, conn: _Connection) -> None:
        while True:
            message = await conn.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("bytes") is not None:
                self._on_binary(message["bytes"])
            elif message.get("text") is not None:
                self._on_text(conn, message["text"])

    def _on_text(self, conn: _Connection, text: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        kind, token = frame.get("type"), str(frame.get("tasktoken") or "")
        task = self._by_token.get(token)
        if task is None:
            return  # unknown tokens are ignored (§8)
        if kind == "task_info":
            # No ack and no replay of past frames: late listeners sync with Task/Detail (§8).
            self.hub.register(conn, token)
            task.listener.set()
            with self._registered:
                self._registrations[token] += 1
                self._registered.notify_all()
        elif kind == "task_session_end" and task.realtime and not task.terminal:
            task.audio.put_nowait(None)
        elif kind == "task_session_interrupt" and task.realtime and not task.terminal:
            task.audio.put_nowait("interrupt")

    def _on_binary(self, data: bytes) -> None:
        # Realtime audio: ASCII token, "|", raw PCM16 (§9).
        head, sep, pcm = data.partition(b"|")
        if not sep:
            return
        task = self._by_token.get(head.decode("ascii", errors="replace"))
        if task is not None and task.realtime and task.status == "task_start":
            task.audio.put_nowait(pcm)

    def on_last_listener_gone(self, token: str) -> None:
        # A realtime session whose client disconnects without task_session_end is ended by the server (§9).
        task = self._by_token.get(token)
        if task is not None and task.realtime and task.status == "task_start" and task.listener.is_set():
            task.audio.put_nowait(None)


class _Invalid:
    def __init__(self, message: str) -> None:
        self.message = message


class _FaultMiddleware:
    """Counts every HTTP request and plays `faults.http_error` in front of the app, like a proxy would."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            route = route_of(scope["path"])
            self.state.stats.requests[route] += 1
            fault = self.state.faults.take_http(route)
            if fault is not None:
                await fault.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
