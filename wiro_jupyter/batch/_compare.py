"""`compare()`: the same inputs across several models, side by side (a batch per model under the hood).

The batches run at the same time and share one concurrency limit and one budget, so comparing three
models costs no more in flight, or in dollars, than the caller asked for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import _render
from .._exceptions import ValidationError
from ._limits import Budget, LocalGate
from ._plan import is_dataframe
from ._progress import show_progress
from ._result import BatchResult, _excerpt
from ._runner import BatchClient, BatchRun
from ._start import start_batch

if TYPE_CHECKING:
    import pandas

    from .._task import AsyncTask


async def start_compare(
    client: BatchClient,
    models: Sequence[str],
    inputs: Any,
    *,
    concurrency: int,
    max_cost: float | None,
    common: dict[str, Any],
    wrap: Callable[[AsyncTask], Any] | None = None,
) -> list[BatchRun]:
    """One running batch per model, sharing a concurrency limit and a budget."""
    slugs = [models] if isinstance(models, str) else list(models)
    if not slugs:
        raise ValidationError("compare() needs at least one model.", hint="Give a list of slugs: ['owner/a', 'owner/b'].")
    if inputs is None:  # just the parameters: one input, shown as itself
        inputs, common = [dict(common)], {}
    if int(concurrency) < 1:
        raise ValidationError(f"concurrency must be 1 or more; got {concurrency!r}.", hint="Nothing was sent.")
    gate, budget = LocalGate(int(concurrency)), Budget(max_cost)
    rows = inputs if is_dataframe(inputs) else list(inputs)  # every model gets the same inputs, even from a generator
    return [
        await start_batch(
            client, slug, rows, concurrency=concurrency, max_cost=max_cost, common=common, wrap=wrap, gate=gate, budget=budget
        )
        for slug in slugs
    ]


async def wait_all(runs: Sequence[BatchRun], *, progress: bool) -> Comparison:
    """Await every model's batch (showing their progress when asked); cancelling stops them all."""
    finishes = [show_progress(run) for run in runs] if progress else []
    try:
        return Comparison([await run.wait_async() for run in runs])
    except asyncio.CancelledError:
        for run in runs:
            run.stop()
        raise
    finally:
        for finish in finishes:
            await asyncio.to_thread(finish)


def wait_all_sync(runs: Sequence[BatchRun], *, progress: bool) -> Comparison:
    """Block until every model's batch has ended (showing their progress when asked); Ctrl-C stops them all."""
    finishes = [show_progress(run) for run in runs] if progress else []
    try:
        return Comparison([run.wait() for run in runs])
    except KeyboardInterrupt:
        for run in runs:
            run.stop()
        raise
    finally:
        for finish in finishes:
            finish()


class Comparison:
    """The results of the same inputs on several models: `results[slug]` is each model's `BatchResult`.

    Shows as a table, a row per input and a column per model (the first image, or the answer, or why not)."""

    def __init__(self, results: Sequence[BatchResult]) -> None:
        self.results = {r.model: r for r in results}

    @property
    def models(self) -> list[str]:
        return list(self.results)

    def __getitem__(self, slug: str) -> BatchResult:
        return self.results[slug]

    @property
    def spent(self) -> float:
        return sum(r.spent for r in self.results.values())

    def to_pandas(self) -> pandas.DataFrame:
        """Every model's `to_pandas()` one after the other, with a first column `model`."""
        import pandas as pd

        frames = [r.to_pandas().assign(model=slug) for slug, r in self.results.items()]
        frame = pd.concat(frames)
        return frame[["model", *[c for c in frame.columns if c != "model"]]]

    def __repr__(self) -> str:
        return f"<Comparison {' | '.join(r.summary() for r in self.results.values())}>"

    def text(self) -> str:
        lines = [f"{len(self.results)} models · ${self.spent:.4f}"]
        results = list(self.results.values())
        for index, item in enumerate(results[0].items if results else []):
            lines.append(f"#{index} {_excerpt(item.input)}")
            for r in results:
                cell = r.items[index]
                lines.append(f"    {r.model}: {cell.status} {_excerpt(cell.error or cell.text or ', '.join(cell.outputs), 100)}")
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(self.text())

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        e = _render.escape
        results = list(self.results.values())
        images: dict[str, dict[int, str]] = {r.model: {} for r in results}  # model -> item index -> thumbnail
        for r in results:
            for item, _, src in r.thumbnails():
                images[r.model].setdefault(item.index, src)
        head = "<th>input</th>" + "".join(f"<th>{e(r.model)}<br><small>${r.spent:.4f}</small></th>" for r in results)
        rows = []
        for index, item in enumerate(results[0].items if results else []):
            cells = "".join(f"<td>{_cell(r, index, images[r.model])}</td>" for r in results)
            rows.append(f"<tr><td>{e(_excerpt(item.input, 160))}</td>{cells}</tr>")
        fragment = f'<table class="wiro-compare"><tr>{head}</tr>{"".join(rows)}</table>'
        return _render.select(_render.html_bundle(fragment, self.text()), include, exclude)


def _cell(result: BatchResult, index: int, thumbnails: dict[int, str]) -> str:
    e = _render.escape
    item = result.items[index]
    if item.status != "ok":
        return f'<span style="color:#b91c1c">{e(item.status)}: {e(_excerpt(item.error or "", 200))}</span>'
    src = thumbnails.get(index)
    if src:
        return f'<img src="{e(src)}" alt="{e(result.model)}">'
    if item.text:
        return f'<div style="max-width:40em">{e(_excerpt(item.text, 600))}</div>'
    links = [f'<a href="{e(u)}" target="_blank">{e(u.rsplit("/", 1)[-1])}</a>' for u in item.outputs if _render.safe_url(u)]
    return "<br>".join(links) or "ok"
