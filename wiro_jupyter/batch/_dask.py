"""A batch over a Dask DataFrame: each partition runs on the cluster's workers, under one limit for all.

`wiro.batch(slug, ddf)` returns a lazy Dask DataFrame with the columns of `BatchResult.to_pandas()`;
nothing is sent until it is computed. Each partition is a batch of its own on the worker that computes
it (named `<batch>/<partition>`, so a recomputation resumes from that worker's journal rather than
paying again), and every partition takes a lease of one `distributed.Semaphore` per Run in flight, so
the whole cluster never has more than `concurrency` tasks in flight. Without a `distributed` client
(Dask's threaded scheduler) the partitions share one in-process limit instead. A budget is split evenly
between the partitions, so that together they stay within it.

Workers reach the API with the caller's URLs and credentials, passed in the task graph (never read
from a worker's environment); they show as `****` in any repr of the graph.

Dask is optional: `pip install wiro-jupyter[dask]`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ._limits import Gate, LocalGate

if TYPE_CHECKING:
    import pandas

    from .._config import Settings


class DaskFrame(Protocol):
    """What a batch needs of a Dask DataFrame (so the API is typed without importing Dask)."""

    @property
    def npartitions(self) -> int: ...

    def map_partitions(self, func: Any, *args: Any, **kwargs: Any) -> Any: ...


_local_gates: weakref.WeakValueDictionary[str, LocalGate] = weakref.WeakValueDictionary()


def is_dask_frame(value: Any) -> bool:
    """A Dask DataFrame (checked without importing Dask)."""
    return type(value).__module__.split(".")[0] == "dask" and hasattr(value, "map_partitions") and hasattr(value, "_meta")


class _Secret:
    """A credential in the task graph: it travels to the workers and never prints."""

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "****" if self.value else "None"

    def __dask_tokenize__(self) -> str:  # task keys must not depend on (or hash) the secret
        return "wiro-credential"


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs to run its partition."""

    slug: str
    name: str
    concurrency: int
    max_cost: float | None  # this partition's share
    retry_failed: bool
    common: dict[str, Any]
    api_url: str
    socket_url: str
    api_key: _Secret
    api_secret: _Secret
    client_type: Callable[..., Any]  # the caller's `AsyncWiro` class (pickled by reference)
    semaphore: Any = None  # a distributed.Semaphore, or None: one in-process limit


def dask_batch(
    settings: Settings,
    slug: str,
    frame: Any,
    *,
    concurrency: int,
    max_cost: float | None,
    name: str | None,
    retry_failed: bool,
    common: dict[str, Any],
    client_type: Callable[..., Any],
) -> Any:
    """The lazy Dask DataFrame of a batch over `frame` (see the module docstring); `client_type` makes
    each worker's client (`AsyncWiro`)."""
    import dask.base

    from .._exceptions import ValidationError
    from ._result import result_frame

    if int(concurrency) < 1:
        raise ValidationError(f"concurrency must be 1 or more; got {concurrency!r}.", hint="Nothing was sent.")
    name = name or f"{slug}#dask-{dask.base.tokenize(frame, slug.lower(), sorted(common.items()))[:12]}"
    spec = _Spec(
        slug=slug,
        name=name,
        concurrency=int(concurrency),
        max_cost=None if max_cost is None else float(max_cost) / max(1, frame.npartitions),
        retry_failed=retry_failed,
        common=dict(common),
        api_url=settings.api_url,
        socket_url=settings.socket_url,
        api_key=_Secret(settings.api_key),
        api_secret=_Secret(settings.api_secret),
        client_type=client_type,
        semaphore=_cluster_semaphore(name, int(concurrency)),
    )
    meta = result_frame(frame._meta, [])
    return frame.map_partitions(run_partition, spec, meta=meta)


def _cluster_semaphore(name: str, leases: int) -> Any:
    try:
        from distributed import Semaphore, get_client
    except ImportError:
        return None
    try:
        get_client()
    except ValueError:  # no distributed client: the threaded scheduler runs every partition here
        return None
    return Semaphore(max_leases=leases, name=f"wiro-batch:{name}")


class DistributedGate:
    """A `Gate` over a `distributed.Semaphore`, whose calls block: they run on two threads of this gate's
    own (one may wait for a lease while the other gives one back), never on the loop's shared executor,
    which waiting partitions could fill."""

    def __init__(self, semaphore: Any) -> None:
        self._semaphore = semaphore
        self._threads = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="wiro-dask-lease")

    async def acquire(self) -> None:
        await asyncio.wrap_future(self._threads.submit(self._semaphore.acquire))

    async def release(self) -> None:
        await asyncio.wrap_future(self._threads.submit(self._semaphore.release))

    def close(self) -> None:
        self._threads.shutdown(wait=False)


def run_partition(part: pandas.DataFrame, spec: _Spec, partition_info: dict[str, Any] | None = None) -> pandas.DataFrame:
    """One partition, on a worker: a batch of its rows, as `to_pandas()` rows."""
    from .._loop import run_sync
    from ._result import result_frame
    from ._start import start_batch

    if part.empty:
        return result_frame(part, [])
    number = partition_info["number"] if partition_info else 0
    gate: Gate
    if spec.semaphore is not None:
        spec.semaphore.scheduler  # noqa: B018 - binds it to this worker now, while the worker's context is current
        gate = DistributedGate(spec.semaphore)
    else:
        gate = _local_gates.setdefault(spec.name, LocalGate(spec.concurrency))
    client = spec.client_type(spec.api_key.value, spec.api_secret.value, api_url=spec.api_url, socket_url=spec.socket_url)
    try:
        run = run_sync(
            start_batch(
                client,
                spec.slug,
                part,
                concurrency=spec.concurrency,
                max_cost=spec.max_cost,
                name=f"{spec.name}/{number}",
                retry_failed=spec.retry_failed,
                common=spec.common,
                gate=gate,
            )
        )
        return run.wait().to_pandas()
    finally:
        run_sync(client.aclose())
        if isinstance(gate, DistributedGate):
            gate.close()
