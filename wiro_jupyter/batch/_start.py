"""`start_batch()`: check every item, name the batch, price it, and start its runner (`_runner.BatchRun`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .._exceptions import ValidationError
from ._limits import Budget, Gate
from ._plan import Plan, Table, batch_name, check, estimate, read_inputs
from ._result import BatchItem, BatchResult
from ._runner import BatchClient, BatchRun

if TYPE_CHECKING:
    from .._task import AsyncTask


async def start_batch(
    client: BatchClient,
    slug: str,
    inputs: Any,
    *,
    concurrency: int = 8,
    max_cost: float | None = None,
    name: str | None = None,
    retry_failed: bool = False,
    common: dict[str, Any] | None = None,
    wrap: Callable[[AsyncTask], Any] | None = None,
    gate: Gate | None = None,
    budget: Budget | None = None,
) -> BatchRun:
    """Check every item, name the batch and start it (on the running loop, which must be the client's).

    Raises ValidationError (nothing sent) for arguments that make no batch; an invalid item only fails itself.
    """
    if int(concurrency) < 1:
        raise ValidationError(f"concurrency must be 1 or more; got {concurrency!r}.", hint="Nothing was sent.")
    if max_cost is not None and not (isinstance(max_cost, (int, float)) and max_cost >= 0):
        raise ValidationError(f"max_cost must be a number of dollars, 0 or more; got {max_cost!r}.", hint="Nothing was sent.")
    model = await client.model(slug)
    table: Table = read_inputs(model, inputs)
    items: list[BatchItem] = []
    plans: list[Plan] = []
    summaries: list[dict[str, Any] | None] = []
    for index, (shown, params) in enumerate(zip(table.shown, table.params, strict=True)):
        item = BatchItem(index=index, input=shown)
        items.append(item)
        summary: dict[str, Any] | None = None
        if isinstance(params, str):
            item.status, item.error = "failed", params
        else:
            try:
                summary = check(model, params, common or {})
            except ValidationError as exc:
                item.status, item.error = "failed", exc.message
        summaries.append(summary)
        if summary is not None and isinstance(params, dict):
            item.parameters = summary
            price = estimate(model, summary)
            if max_cost is not None and price is None:
                raise ValidationError(
                    f"{model.slug} has no price in the catalogue, so max_cost=${max_cost:g} cannot be kept.",
                    hint="Run it without max_cost, or with a model whose price is known. Nothing was sent.",
                )
            plans.append(Plan(index, {**(common or {}), **params}, price or 0.0))
    result = BatchResult(
        model.slug,
        name or batch_name(model, table, summaries),
        items,
        input_columns=table.columns,
        rows=[p if isinstance(p, dict) else {} for p in table.params],
        frame=table.frame,
        budget=max_cost if budget is None else budget.limit,
    )
    return BatchRun(
        client.tasks,
        model,
        result,
        plans,
        concurrency=int(concurrency),
        budget=budget or Budget(max_cost),
        gate=gate,
        retry_failed=retry_failed,
        wrap=wrap,
    )
