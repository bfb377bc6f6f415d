"""The client: `AsyncWiro` (the one core) and `Wiro` (its blocking sibling).

`Wiro` holds an `AsyncWiro` that lives on the package's private event loop
(see `_loop.py` for why), and every method is a thin `run_sync` wrapper, so
the two can never drift apart.
"""

from __future__ import annotations

import asyncio
import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._config import Settings, mask
from ._exceptions import NotFoundError, ValidationError, WiroError
from ._http import HttpCore
from ._journal import Journal, JournalEntry, JournalList
from ._loop import run_sync, spawn
from ._models import Model, ModelList, TaskEvent, to_number
from ._params import prepare_run, read_file_input
from ._task import AsyncTask, Task, TaskFollower, TaskState

if TYPE_CHECKING:
    import httpx

    from ._socket import TaskSocket

EventCallback = Callable[[TaskEvent], None]


@dataclass
class UploadedFile:
    """A file stored in your Wiro account (File/Upload); pass `.url` as a model input."""

    id: str
    name: str
    url: str
    size: int | None = None
    content_type: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


def split_slug(slug: str) -> tuple[str, str]:
    parts = [p for p in str(slug).strip().strip("/").split("/") if p]
    if len(parts) != 2:
        raise ValidationError(
            f"{slug!r} is not a model slug.",
            hint="Write it as 'owner/model', e.g. 'wiro/text-to-image'; Wiro().models() lists them.",
        )
    return parts[0], parts[1]


class AsyncWiro:
    """The Wiro API for `async` code.

    Credentials come from the arguments or WIRO_API_KEY / WIRO_API_SECRET (a
    secret switches on HMAC signatures); URLs from WIRO_API_URL / WIRO_SOCKET_URL.
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        api_url: str | None = None,
        socket_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_connections: int = 20,
        poll_interval: float = 2.0,
        socket_silence: float = 15.0,
        journal: Journal | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = Settings.resolve(api_key, api_secret, api_url, socket_url)
        self._http = HttpCore(
            self.settings, timeout=timeout, max_retries=max_retries, max_connections=max_connections, transport=transport
        )
        self.poll_interval = poll_interval
        self.socket_silence = socket_silence
        self.journal: Journal | None = Journal() if journal is True else (journal or None)
        self._socket: TaskSocket | None = None
        self._followers: dict[str, TaskFollower] = {}
        self._models: dict[str, Model] = {}

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} api_url={self.settings.api_url!r} auth={self.settings.auth_mode} "
            f"key={mask(self.settings.api_key)}>"
        )

    async def __aenter__(self) -> AsyncWiro:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._socket is not None:
            await self._socket.aclose()
            self._socket = None
        await self._http.aclose()

    # -- catalogue ---------------------------------------------------------------------
    async def models(
        self,
        search: str | None = None,
        *,
        categories: list[str] | str | None = None,
        start: int = 0,
        limit: int = 20,
        sort: str | None = None,
    ) -> ModelList:
        """Tool/List: a page of the catalogue (numbers go as strings, as the server expects)."""
        body: dict[str, Any] = {"start": str(start), "limit": str(min(max(limit, 1), 100)), "hideworkflows": True}
        if search:
            body["search"] = search
        if categories:
            body["categories"] = [categories] if isinstance(categories, str) else list(categories)
        if sort:
            body["sort"] = sort
        payload = await self._http.call("Tool/List", json=body)
        result = ModelList(Model.from_raw(item) for item in payload.get("tool") or [] if isinstance(item, dict))
        total = to_number(payload.get("total"))
        result.total = int(total) if total is not None else len(result)
        return result

    async def model(self, slug: str) -> Model:
        """Tool/Detail: a model with its typed, flattened parameters (cached per client)."""
        owner, project = split_slug(slug)
        key = f"{owner}/{project}".lower()
        if key not in self._models:
            try:
                payload = await self._http.call("Tool/Detail", json={"slugowner": owner, "slugproject": project})
            except NotFoundError as exc:
                raise NotFoundError(
                    f"There is no model {owner}/{project}.", hint=await self._slug_hint(owner, project), code=exc.code
                ) from None
            tools = payload.get("tool")
            item = tools[0] if isinstance(tools, list) and tools else tools
            if not isinstance(item, dict):
                raise NotFoundError(f"There is no model {owner}/{project}.", hint=await self._slug_hint(owner, project))
            model = Model.from_raw(item)
            if model.slug == "/":
                model.slug = f"{owner}/{project}"
            self._models[key] = model
        return self._models[key]

    async def _slug_hint(self, owner: str, project: str) -> str:
        try:
            found = await self.models(search=project.replace("-", " ")[:40], limit=50)
            if not found:
                found = await self.models(limit=100)
        except WiroError:
            return "Check the spelling; Wiro().models(search=...) lists the models."
        slugs = [m.slug for m in found]
        close = difflib.get_close_matches(f"{owner}/{project}", slugs, n=3, cutoff=0.4)
        if close:
            return "Did you mean " + " or ".join(repr(s) for s in close) + "?"
        return "Check the spelling; Wiro().models(search=...) lists the models."

    # -- running -----------------------------------------------------------------------
    async def run(
        self,
        slug: str,
        inputs: dict[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        callback_url: str | None = None,
        on_event: EventCallback | None = None,
        **params: Any,
    ) -> AsyncTask:
        """Run a model. Parameters are checked against its definition first (nothing is sent if
        one is wrong). With `wait=True` (default) returns the finished task; raises
        TaskFailedError if it failed. With `wait=False` returns at once, already followed live."""
        model = await self.model(slug)
        prepared = prepare_run(model, {**(inputs or {}), **params}, callback_url=callback_url)
        rowid = self.journal.begin(model.slug, prepared.summary, self.settings.api_url) if self.journal else 0
        try:
            payload = await self._http.call(
                f"Run/{model.owner}/{model.project}",
                json=prepared.json,
                data=prepared.data,
                files=prepared.files,
                idempotent=False,
            )
        except BaseException as exc:
            if self.journal:
                unknown = getattr(exc, "maybe_submitted", False) or isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError))
                self.journal.failed_to_submit(rowid, str(exc) or type(exc).__name__, maybe_submitted=unknown)
            raise
        token = str(payload.get("socketaccesstoken") or "")
        task_id = str(payload.get("taskid") or "")
        if not token:
            raise WiroError(f"The Run answer for {model.slug} had no task token: {str(payload)[:200]}")
        if self.journal:
            self.journal.submitted(rowid, task_id, token)
        state = TaskState(token=token, id=task_id, model=model.slug, parameters=prepared.summary)
        follower = self._follower(state)
        if on_event is not None:
            follower.add_listener(on_event, replay=True)
        task = AsyncTask(self, state)
        if wait:
            await task.wait(timeout)
        return task

    async def task(self, token_or_id: str) -> AsyncTask:
        """Task/Detail for a task by its socket token or its numeric id; unfinished tasks are followed."""
        key = str(token_or_id).strip()
        if key in self._followers:
            return AsyncTask(self, self._followers[key].state)
        item = await self._task_detail(**({"task_id": key} if key.isdigit() else {"token": key}))
        state = TaskState(token=str(item.get("socketaccesstoken") or ""), id=str(item.get("id") or key))
        state.apply_detail(item)
        if not state.done and state.token:
            self._follower(state)
        return AsyncTask(self, state)

    async def cancel(self, task: str | dict[str, str]) -> dict[str, Any]:
        """Task/Cancel (queued tasks only)."""
        return await self._http.call("Task/Cancel", json=self._task_handle(task))

    async def kill(self, task: str | dict[str, str]) -> dict[str, Any]:
        """Task/Kill (running tasks)."""
        handle = self._task_handle(task)
        if "tasktoken" in handle:
            handle["socketaccesstoken"] = handle["tasktoken"]
        return await self._http.call("Task/Kill", json=handle)

    @staticmethod
    def _task_handle(task: str | dict[str, str]) -> dict[str, str]:
        # The docs say `tasktoken`, the official clients send `taskid`: send what we know.
        if isinstance(task, dict):
            return {k: v for k, v in task.items() if v}
        key = str(task).strip()
        return {"taskid": key} if key.isdigit() else {"tasktoken": key}

    # -- files -------------------------------------------------------------------------
    async def create_folder(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        payload = await self._http.call("File/FolderCreate", json={"name": name, "parentid": parent_id}, idempotent=False)
        items = payload.get("list") or [{}]
        return dict(items[0])

    async def upload(self, file: Any, *, folder_id: str | None = None) -> UploadedFile:
        """File/Upload: store a file (path, bytes, file object or PIL image) and get its URL."""
        data = read_file_input(file, "file")
        form = [("folderid", folder_id)] if folder_id else []
        payload = await self._http.call(
            "File/Upload", data=form, files=[("file", (data.name, data.content, data.content_type))], idempotent=False
        )
        item = (payload.get("list") or [{}])[0]
        size = item.get("size")
        return UploadedFile(
            id=str(item.get("id") or ""),
            name=str(item.get("name") or data.name),
            url=str(item.get("url") or ""),
            size=int(size) if str(size or "").isdigit() else None,
            content_type=str(item.get("contenttype") or ""),
            raw=item,
        )

    # -- internals shared with AsyncTask -----------------------------------------------
    async def _task_detail(self, *, token: str | None = None, task_id: str | None = None) -> dict[str, Any]:
        body = {"tasktoken": token} if token else {"taskid": task_id or ""}
        payload = await self._http.call("Task/Detail", json=body)
        tasks = payload.get("tasklist") or []
        if not tasks or not isinstance(tasks[0], dict):
            raise NotFoundError(
                f"There is no task {token or task_id}.",
                hint="Check the id or token; wiro_jupyter.tasks() lists the tasks this machine started.",
            )
        return dict(tasks[0])

    def _task_socket(self) -> TaskSocket:
        from ._socket import TaskSocket

        if self._socket is None:
            self._socket = TaskSocket(self.settings.socket_url)
        return self._socket

    def _follower(self, state: TaskState) -> TaskFollower:
        """The one follower of a task (created on first need; must run on this client's loop)."""
        follower = self._followers.get(state.token)
        if follower is None:
            follower = TaskFollower(self, state)
            if state.done:
                # Nothing left to follow: listeners get the recorded history only.
                follower.finished.set()
                return follower
            self._followers[state.token] = follower
            if self.journal:
                follower.add_listener(self._journal_listener(state))
            follower.start()
            spawn(_forget_when_finished(self._followers, state.token, follower))
        return follower

    def _journal_listener(self, state: TaskState) -> EventCallback:
        last = {"status": state.status}
        journal = self.journal
        assert journal is not None

        def record(event: TaskEvent) -> None:
            if event.kind == "done" or state.status != last["status"]:
                last["status"] = state.status
                outputs = [{"name": o.name, "url": o.url, "content_type": o.content_type, "size": o.size} for o in state.outputs]
                journal.update(state.token, status=state.status, outputs=outputs if state.done else None, error=state.error)

        return record

    def _journal_saved(self, state: TaskState, paths: list[Path]) -> None:
        if self.journal:
            self.journal.saved(state.token, [str(p.resolve()) for p in paths])


async def _forget_when_finished(followers: dict[str, TaskFollower], token: str, follower: TaskFollower) -> None:
    await follower.finished.wait()
    if followers.get(token) is follower:
        del followers[token]


class Wiro:
    """The Wiro API for ordinary (blocking) code: scripts, threads and notebooks alike.

    >>> wiro = Wiro()                              # WIRO_API_KEY / WIRO_API_SECRET from the environment
    >>> task = wiro.run("wiro/text-to-image", prompt="a lighthouse at dawn")
    >>> task.images[0]
    """

    def __init__(
        self,
        api_key: str | None = None,
        api_secret: str | None = None,
        *,
        api_url: str | None = None,
        socket_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_connections: int = 20,
        poll_interval: float = 2.0,
        socket_silence: float = 15.0,
        journal: Journal | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._async = AsyncWiro(
            api_key,
            api_secret,
            api_url=api_url,
            socket_url=socket_url,
            timeout=timeout,
            max_retries=max_retries,
            max_connections=max_connections,
            poll_interval=poll_interval,
            socket_silence=socket_silence,
            journal=journal,
            transport=transport,
        )

    @property
    def settings(self) -> Settings:
        return self._async.settings

    @property
    def aio(self) -> AsyncWiro:
        """The async core (lives on the package's private loop)."""
        return self._async

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncWiro", "Wiro", 1)

    def __enter__(self) -> Wiro:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        run_sync(self._async.aclose())

    def models(
        self,
        search: str | None = None,
        *,
        categories: list[str] | str | None = None,
        start: int = 0,
        limit: int = 20,
        sort: str | None = None,
    ) -> ModelList:
        return run_sync(self._async.models(search, categories=categories, start=start, limit=limit, sort=sort))

    def model(self, slug: str) -> Model:
        return run_sync(self._async.model(slug))

    def run(
        self,
        slug: str,
        inputs: dict[str, Any] | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        callback_url: str | None = None,
        on_event: EventCallback | None = None,
        **params: Any,
    ) -> Task:
        """Run a model and (by default) wait for it. See `AsyncWiro.run`.

        `on_event` is called from the package's loop thread for every event.
        Ctrl-C / interrupting the kernel while waiting stops the task on the server.
        """
        atask = run_sync(self._async.run(slug, inputs, wait=False, callback_url=callback_url, on_event=on_event, **params))
        task = Task(atask)
        if wait:
            task.wait(timeout)
        return task

    def task(self, token_or_id: str) -> Task:
        return Task(run_sync(self._async.task(token_or_id)))

    def cancel(self, task: str) -> dict[str, Any]:
        return run_sync(self._async.cancel(task))

    def kill(self, task: str) -> dict[str, Any]:
        return run_sync(self._async.kill(task))

    def create_folder(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        return run_sync(self._async.create_folder(name, parent_id))

    def upload(self, file: Any, *, folder_id: str | None = None) -> UploadedFile:
        return run_sync(self._async.upload(file, folder_id=folder_id))


# -- module-level conveniences (journal and recovery) ----------------------------------
_default: dict[Settings, Wiro] = {}


def default_client() -> Wiro:
    """A `Wiro` for the current environment (recreated when WIRO_* variables change)."""
    settings = Settings.resolve()
    if settings not in _default:
        _default[settings] = Wiro()
    return _default[settings]


def tasks(limit: int = 20, *, model: str | None = None) -> JournalList:
    """The most recent tasks started from this machine (newest first), from the local journal."""
    return Journal().recent(limit, model=model)


def recover(id_or_token: str, *, client: Wiro | None = None) -> Task:
    """Rebuild a `Task` after a restart or crash: from the journal, then Task/Detail for its outputs."""
    entry: JournalEntry | None = Journal().find(str(id_or_token))
    if client is None:
        client = default_client()
        if entry is not None and entry.api_url != client.settings.api_url and not os.environ.get("WIRO_API_URL"):
            client = Wiro(api_url=entry.api_url)
    key = (entry.token or entry.task_id or str(id_or_token)) if entry else str(id_or_token)
    task = client.task(key)
    if entry is not None:
        task._state.parameters = entry.parameters
        task._state.model = task._state.model or entry.model
        for output in task._state.outputs:
            for saved in entry.saved:
                if Path(saved).name == Path(output.name).name and Path(saved).exists():
                    output.path = Path(saved)
    return task
