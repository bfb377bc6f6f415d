"""The client: `AsyncWiro` (the one core) and `Wiro` (its blocking sibling).

`Wiro` holds an `AsyncWiro` that lives on the package's private event loop
(see `_loop.py` for why), and every method is a thin `run_sync` wrapper, so
the two can never drift apart.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._api import WiroApi
from ._config import Settings, mask
from ._events import TaskEvent
from ._exceptions import NotFoundError, WiroError
from ._fields import object_list, to_number, to_text
from ._journal import Journal, JournalEntry, JournalList
from ._loop import run_sync
from ._models import Model, ModelList, split_slug
from ._params import prepare_run, read_file_input
from ._task import AsyncTask, Task
from ._tasks import Tasks, reuse_by_default
from ._transport import DEFAULT_MAX_BODY, HttpCore
from .batch._methods import AsyncBatchMethods, BatchMethods

if TYPE_CHECKING:
    import httpx
    from typing_extensions import TypedDict, Unpack

    class ClientOptions(TypedDict, total=False):
        """The keyword options of `AsyncWiro` (and so of `Wiro`)."""

        api_url: str | None
        socket_url: str | None
        timeout: float
        max_retries: int
        max_connections: int
        poll_interval: float
        socket_silence: float
        journal: Journal | bool
        transport: httpx.AsyncBaseTransport | None
        max_response_bytes: int

    from .voice import AsyncVoiceSession, VoiceSession

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


class AsyncWiro(AsyncBatchMethods):
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
        max_response_bytes: int = DEFAULT_MAX_BODY,
    ) -> None:
        self.settings = Settings.resolve(api_key, api_secret, api_url, socket_url)
        self.http = HttpCore(
            timeout=timeout,
            max_retries=max_retries,
            max_connections=max_connections,
            max_body=max_response_bytes,
            transport=transport,
        )
        self._api = WiroApi(self.settings, self.http)
        self.journal: Journal | None = Journal() if journal is True else (journal or None)
        #: The tasks service: the shared socket, the followers and the journal.
        self.tasks = Tasks(self._api, poll_interval=poll_interval, socket_silence=socket_silence, journal=self.journal)
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
        await self.tasks.aclose()
        await self.http.aclose()

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
        payload = await self._api.call("Tool/List", json=body)
        result = ModelList(Model.from_raw(item) for item in object_list(payload, "tool", "Tool/List"))
        total = to_number(payload.get("total"))
        result.total = int(total) if total is not None else len(result)
        return result

    async def model(self, slug: str) -> Model:
        """Tool/Detail: a model with its typed, flattened parameters (cached per client)."""
        owner, project = split_slug(slug)
        key = f"{owner}/{project}".lower()
        if key not in self._models:
            try:
                payload = await self._api.call("Tool/Detail", json={"slugowner": owner, "slugproject": project})
            except NotFoundError as exc:
                raise NotFoundError(
                    f"There is no model {owner}/{project}.", hint=await self._slug_hint(owner, project), code=exc.code
                ) from None
            tools = object_list(payload, "tool", "Tool/Detail", one_object=True)
            if not tools:
                raise NotFoundError(f"There is no model {owner}/{project}.", hint=await self._slug_hint(owner, project))
            model = Model.from_raw(tools[0])
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
        reuse: bool | None = None,
        **params: Any,
    ) -> AsyncTask:
        """Run a model. Parameters are checked against its definition first (nothing is sent if
        one is wrong). With `wait=True` (default) returns the finished task; raises
        TaskFailedError if it failed. With `wait=False` returns at once, already followed live.

        `reuse=True`: when the journal has a task of an identical request (same model, parameters
        and input files by content) that finished successfully, return that task instead of
        paying again, and say so on stderr ("reused task N from <time>") and as a `reused` event.
        `None` (default) follows WIRO_REUSE=1 (`%wiro config reuse=on`), else off."""
        model = await self.model(slug)
        prepared = prepare_run(model, {**(inputs or {}), **params}, callback_url=callback_url)
        if reuse or (reuse is None and reuse_by_default()):
            reused = await self.tasks.reuse(model, prepared, on_event=on_event)
            if reused is not None:
                return reused
        task = await self.tasks.submit(model, prepared, on_event=on_event)
        if wait:
            await task.wait(timeout)
        return task

    async def task(self, token_or_id: str) -> AsyncTask:
        """Task/Detail for a task by its socket token or its numeric id; unfinished tasks are followed."""
        return await self.tasks.get(token_or_id)

    def voice(self, slug: str, **params: Any) -> AsyncVoiceSession:
        """A realtime voice session with a model: `async with client.voice("openai/gpt-realtime") as session:`."""
        from .voice import AsyncVoiceSession

        return AsyncVoiceSession(self, slug, params)

    async def cancel(self, task: str | dict[str, str]) -> dict[str, Any]:
        """Task/Cancel (queued tasks only)."""
        return await self.tasks.cancel(task)

    async def kill(self, task: str | dict[str, str]) -> dict[str, Any]:
        """Task/Kill (running tasks)."""
        return await self.tasks.kill(task)

    # -- files -------------------------------------------------------------------------
    async def create_folder(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        payload = await self._api.call("File/FolderCreate", json={"name": name, "parentid": parent_id}, idempotent=False)
        items = object_list(payload, "list", "File/FolderCreate")
        return dict(items[0]) if items else {}

    async def upload(self, file: Any, *, folder_id: str | None = None) -> UploadedFile:
        """File/Upload: store a file (path, bytes, file object or PIL image) and get its URL.

        A file given by path is streamed from disk (memory stays flat whatever its size)."""
        data = read_file_input(file, "file")
        form = [("folderid", folder_id)] if folder_id else []
        payload = await self._api.call(
            "File/Upload", data=form, files=[("file", (data.name, data.body(), data.content_type))], idempotent=False
        )
        items = object_list(payload, "list", "File/Upload")
        item = items[0] if items else {}
        url = to_text(item.get("url"))
        if not url:
            raise WiroError(
                f"The Wiro API stored {data.name!r} but its answer had no URL for it.",
                hint="Look for the file in your Wiro dashboard, or upload it again.",
            )
        size = to_number(item.get("size"))
        return UploadedFile(
            id=to_text(item.get("id")),
            name=to_text(item.get("name")) or data.name,
            url=url,
            size=int(size) if size is not None else None,
            content_type=to_text(item.get("contenttype")),
            raw=item,
        )


class Wiro(BatchMethods):
    """The Wiro API for ordinary (blocking) code: scripts, threads and notebooks alike.

    >>> wiro = Wiro()                              # WIRO_API_KEY / WIRO_API_SECRET from the environment
    >>> task = wiro.run("wiro/text-to-image", prompt="a lighthouse at dawn")
    >>> task.images[0]
    """

    def __init__(self, api_key: str | None = None, api_secret: str | None = None, **options: Unpack[ClientOptions]) -> None:
        """The options are `AsyncWiro`'s (api_url, socket_url, timeout, max_retries, …), with the same defaults."""
        self._async = AsyncWiro(api_key, api_secret, **options)

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
        reuse: bool | None = None,
        **params: Any,
    ) -> Task:
        """Run a model and (by default) wait for it. See `AsyncWiro.run` (also for `reuse`).

        `on_event` is called from the package's loop thread for every event.
        Ctrl-C / interrupting the kernel while waiting stops the task on the server.
        """
        atask = run_sync(
            self._async.run(slug, inputs, wait=False, callback_url=callback_url, on_event=on_event, reuse=reuse, **params)
        )
        task = Task(atask)
        if wait:
            task.wait(timeout)
        return task

    def task(self, token_or_id: str) -> Task:
        return Task(run_sync(self._async.task(token_or_id)))

    def voice(self, slug: str, **params: Any) -> VoiceSession:
        """A realtime voice session with a model: `with wiro.voice("openai/gpt-realtime") as session:`."""
        from .voice import VoiceSession

        return VoiceSession(self, slug, params)

    def cancel(self, task: str) -> dict[str, Any]:
        return run_sync(self._async.cancel(task))

    def kill(self, task: str) -> dict[str, Any]:
        return run_sync(self._async.kill(task))

    def create_folder(self, name: str, parent_id: str | None = None) -> dict[str, Any]:
        return run_sync(self._async.create_folder(name, parent_id))

    def upload(self, file: Any, *, folder_id: str | None = None) -> UploadedFile:
        return run_sync(self._async.upload(file, folder_id=folder_id))


# -- module-level conveniences (journal and recovery) ----------------------------------
def _is_loopback(url: str) -> bool:
    from urllib.parse import urlsplit

    return (urlsplit(url).hostname or "") in ("127.0.0.1", "localhost", "::1")


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
    """Rebuild a `Task` after a restart or crash: from the journal, then Task/Detail for its outputs.

    The task is asked for at the client's own API URL only: credentials never go to a
    URL read from the journal. A task the journal says ran elsewhere (a local emulator,
    another account's server) is an error that says where, and how to point at it.
    """
    entry: JournalEntry | None = Journal().find(str(id_or_token))
    client = client or default_client()
    if entry is not None and entry.api_url.rstrip("/") != client.settings.api_url:
        raise WiroError(
            f"Task {entry.task_id or id_or_token} ({entry.model}) was started against {entry.api_url}, "
            f"but this client talks to {client.settings.api_url}; recovering it here would send your credentials "
            "to the wrong server.",
            hint=f"Point at that server with its own key: recover({str(id_or_token)!r}, "
            f"client=Wiro(api_url={entry.api_url!r}, api_key=...)), or set WIRO_API_URL (and its key) first"
            + (". A local emulator keeps its tasks only while it runs." if _is_loopback(entry.api_url) else "."),
        )
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
