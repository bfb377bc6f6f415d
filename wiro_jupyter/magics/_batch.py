"""`%%wiro batch OWNER/MODEL [name=value ...] [-c N] [--max-cost X] [--name NAME] [--retry-failed] [-o VAR]`.

One input per non-empty line of the cell: a prompt (the model's main text parameter), or a JSON object
of parameters. `name=value` pairs on the line apply to every item (an item's own parameters win); their
values go to the Python API as text, whose validation converts them to each parameter's type.

A thin parser over `Wiro.batch()` (blocking) and `Wiro.start_batch()` + `BatchRun.wait_async()`
(awaited, so the kernel keeps handling the progress widget's Stop button while the cell waits; see
`_transform`). Options are parsed by IPython's `magic_arguments`; a usage error is a `UsageError`.
The `%%wiro` cell magic dispatches here on its first word, `batch`.
"""

from __future__ import annotations

import asyncio
import json
from argparse import ArgumentTypeError, Namespace
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments

from ._parse import assignments, model_slug, output_name, parse_words, split_words, usage


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise ArgumentTypeError(f"must be 1 or more; got {number}")
    return number


@magic_arguments("%%wiro batch")
@argument("model", type=model_slug, metavar="OWNER/MODEL", help="the model, e.g. wiro/text-to-image")
@argument("params", nargs="*", metavar="name=value", help="parameters for every item (an item's own win)")
@argument("-c", "--concurrency", type=_at_least_one, default=8, help="tasks in flight at most (default 8)")
@argument("--max-cost", type=float, default=None, metavar="DOLLARS", help="no item starts that could pass this spend")
@argument("--name", default=None, help="the batch's name (default: derived from the model, inputs and parameters)")
@argument("--retry-failed", action="store_true", help="send the items that failed in an earlier call again")
@argument("-o", "--output", type=output_name, default=None, metavar="VAR", help="store the BatchResult in VAR")
def batch_magic(line: str) -> None:
    """Run one model over the cell's lines, at most N at a time, resumable.

    %%wiro batch OWNER/MODEL [name=value ...] [-c N] [--max-cost X] [--name NAME] [-o VAR]
    a lighthouse at dawn
    {"prompt": "a fox", "width": 768}

    Every line is checked first (an invalid one fails alone, nothing of it is sent). Running the same
    cell again collects what finished and sends only what never ran.
    """


def parse(line: str, namespace: dict[str, Any] | None = None) -> tuple[Namespace, dict[str, str]]:
    """The options and the `name=value` parameters of a `%%wiro batch` line (in any order; `{name}` interpolated)."""
    args = parse_words(batch_magic, split_words(line, namespace))
    return args, assignments(args.params, usage(batch_magic))


def inputs(body: str | None) -> list[str | dict[str, Any]]:
    """One input per non-empty line: a JSON object of parameters, or a prompt."""
    found: list[str | dict[str, Any]] = []
    for number, raw in enumerate((body or "").splitlines(), start=1):
        text = raw.strip()
        if not text:
            continue
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise UsageError(f"Line {number} starts with {{ but is not a JSON object: {exc}.") from None
            if not isinstance(value, dict):
                raise UsageError(f"Line {number} must be a JSON object of parameters, or a prompt.")
            found.append(value)
        else:
            found.append(text)
    if not found:
        raise UsageError("A %%wiro batch cell needs at least one input: one prompt (or JSON object) per line.")
    return found


def _options(args: Namespace) -> dict[str, Any]:
    return {"concurrency": args.concurrency, "max_cost": args.max_cost, "name": args.name, "retry_failed": args.retry_failed}


def _client() -> Any:
    from .._client import default_client

    return default_client()


def _done(shell: Any, args: Namespace, result: Any) -> Any:
    from IPython.display import display

    if args.output:
        shell.user_ns[args.output] = result
    metadata = {"wiro": {"model": args.model, "batch": result.name, "spent": result.spent, **result.counts()}}
    display(result, metadata=metadata)  # the gallery; the cell's value is stored without a second display
    return result


def batch_cell(shell: Any, line: str, body: str) -> Any:
    """The blocking `%%wiro batch` cell (terminal IPython, `%autoawait off`): Ctrl-C stops the batch."""
    args, params = parse(line, shell.user_ns)
    items = inputs(body)
    result = _client().batch(args.model, items, **_options(args), **params)
    return _done(shell, args, result)


async def batch_cell_async(shell: Any, line: str, body: str) -> Any:
    """The awaited `%%wiro batch` cell: the kernel stays free, so Stop works; an interrupt stops the batch."""
    from .._loop import submit
    from .._task import Task
    from ..batch._start import start_batch

    args, params = parse(line, shell.user_ns)
    items = inputs(body)
    client = _client()
    run = await asyncio.wrap_future(
        submit(start_batch(client.aio, args.model, items, **_options(args), common=params, wrap=Task))
    )
    return _done(shell, args, await run.wait_async(progress=True))
