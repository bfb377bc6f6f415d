"""The batch calls of the clients, `batch()`, `start_batch()` and `compare()`: mixed into `AsyncWiro`
(`AsyncBatchMethods`, the core) and `Wiro` (`BatchMethods`: the same on the package's private loop), in
a module of their own so the client stays short. `Wiro` waits in the caller's thread (not through
`run_sync`), so a progress display and Ctrl-C are handled where the caller is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from .._loop import run_sync
from .._task import Task
from ._compare import Comparison, start_compare, wait_all, wait_all_sync
from ._dask import DaskFrame, dask_batch, is_dask_frame
from ._plan import BatchInputs
from ._result import BatchResult
from ._runner import BatchRun
from ._start import start_batch

if TYPE_CHECKING:
    from .._config import Settings
    from .._models import Model
    from .._tasks import Tasks


class AsyncBatchMethods:
    """`AsyncWiro.batch()`, `.start_batch()`, `.compare()`."""

    if TYPE_CHECKING:  # what AsyncWiro provides
        settings: Settings
        tasks: Tasks

        async def model(self, slug: str) -> Model: ...

    @overload
    async def batch(
        self,
        slug: str,
        inputs: DaskFrame,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        progress: bool = True,
        **common: Any,
    ) -> DaskFrame: ...

    @overload
    async def batch(
        self,
        slug: str,
        inputs: BatchInputs,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        progress: bool = True,
        **common: Any,
    ) -> BatchResult: ...

    async def batch(
        self,
        slug: str,
        inputs: BatchInputs | DaskFrame,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        progress: bool = True,
        **common: Any,
    ) -> BatchResult | DaskFrame:
        """Run one model over many inputs; see `Wiro.batch`. Cancelling the awaiting coroutine stops the batch."""
        if is_dask_frame(inputs):
            return dask_batch(
                self.settings,
                slug,
                inputs,
                concurrency=concurrency,
                max_cost=max_cost,
                name=name,
                retry_failed=retry_failed,
                common=common,
                client_type=type(self),
            )
        run = await self.start_batch(
            slug, inputs, concurrency=concurrency, max_cost=max_cost, name=name, retry_failed=retry_failed, **common
        )
        return await run.wait_async(progress=progress)

    async def start_batch(
        self,
        slug: str,
        inputs: BatchInputs,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        **common: Any,
    ) -> BatchRun:
        """Start a batch and return at once: a `BatchRun` (live counts, `stop()`, `await run.wait_async()`)."""
        return await start_batch(
            self, slug, inputs, concurrency=concurrency, max_cost=max_cost, name=name, retry_failed=retry_failed, common=common
        )

    async def compare(
        self,
        models: Sequence[str],
        inputs: BatchInputs | None = None,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        progress: bool = True,
        **params: Any,
    ) -> Comparison:
        """The same inputs (or just `params`) on several models, side by side; see `Wiro.compare`."""
        runs = await start_compare(self, models, inputs, concurrency=concurrency, max_cost=max_cost, common=params)
        return await wait_all(runs, progress=progress)


class BatchMethods:
    """`Wiro.batch()`, `.start_batch()`, `.compare()`: the async core's, waited for in the caller's thread."""

    if TYPE_CHECKING:  # what Wiro provides

        @property
        def aio(self) -> AsyncBatchMethods: ...

        @property
        def settings(self) -> Settings: ...

    @overload
    def batch(
        self,
        slug: str,
        inputs: DaskFrame,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        progress: bool = True,
        **common: Any,
    ) -> DaskFrame: ...

    @overload
    def batch(
        self,
        slug: str,
        inputs: BatchInputs,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        progress: bool = True,
        **common: Any,
    ) -> BatchResult: ...

    def batch(
        self,
        slug: str,
        inputs: BatchInputs | DaskFrame,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        progress: bool = True,
        **common: Any,
    ) -> BatchResult | DaskFrame:
        """Run one model over many inputs and wait for all of them; returns a `BatchResult` (items in
        input order, `ok` / `failed` / `skipped`, `spent`, `to_pandas()`, `save(dir)`).

        `inputs`: prompts (the model's main text parameter), dicts of parameters, or a pandas DataFrame
        (a row an item, columns are parameters); `common` parameters apply to every item (an item's own
        win). Every item is checked first: an invalid one fails alone and is never sent.
        At most `concurrency` tasks are in flight; over the account's limit the batch waits and slows
        down instead of failing. `max_cost` (dollars): no item starts that could take the spend past it
        (the rest are skipped). Every Run is journaled before it is sent, so calling the same batch again
        (same model, inputs and parameters, or the same `name`) after a crash or a restart collects what
        finished, follows what runs and sends only what never started; failed items are sent again only
        with `retry_failed=True`. `progress`: a live widget in a notebook (with Stop), a text bar elsewhere.
        A Dask DataFrame runs on the cluster's workers and comes back as a lazy Dask DataFrame (see
        `wiro_jupyter.batch._dask`). Ctrl-C / interrupting the kernel stops the batch.

        In a notebook the cell blocks while it waits, so the widget's Stop button is handled only after
        it; `await wiro.start_batch(...).wait_async(progress=True)` (or `%%wiro batch`) keeps the kernel
        free and Stop working.
        """
        if is_dask_frame(inputs):
            return dask_batch(
                self.settings,
                slug,
                inputs,
                concurrency=concurrency,
                max_cost=max_cost,
                name=name,
                retry_failed=retry_failed,
                common=common,
                client_type=type(self.aio),
            )
        run = self.start_batch(
            slug, inputs, concurrency=concurrency, max_cost=max_cost, name=name, retry_failed=retry_failed, **common
        )
        return run.wait(progress=progress)

    def start_batch(
        self,
        slug: str,
        inputs: BatchInputs,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        name: str | None = None,
        retry_failed: bool = False,
        **common: Any,
    ) -> BatchRun:
        """Start a batch and return at once: a `BatchRun` whose items hold `Task`s. `run.wait()`, or in a
        notebook `await run.wait_async(progress=True)`: the live widget, whose Stop works while the cell
        awaits (displaying `run` shows the widget too)."""
        return run_sync(
            start_batch(
                self.aio,
                slug,
                inputs,
                concurrency=concurrency,
                max_cost=max_cost,
                name=name,
                retry_failed=retry_failed,
                common=common,
                wrap=Task,
            )
        )

    def compare(
        self,
        models: Sequence[str],
        inputs: BatchInputs | None = None,
        *,
        concurrency: int = 8,
        max_cost: float | None = None,
        progress: bool = True,
        **params: Any,
    ) -> Comparison:
        """The same inputs across several models, shown side by side: a batch per model, sharing one
        concurrency limit and one budget. Without `inputs`, `params` are the one input.

        >>> wiro.compare(["wiro/text-to-image", "owner/other-model"], prompt="a lighthouse at dawn")
        """
        runs = run_sync(
            start_compare(self.aio, models, inputs, concurrency=concurrency, max_cost=max_cost, common=params, wrap=Task)
        )
        return wait_all_sync(runs, progress=progress)
