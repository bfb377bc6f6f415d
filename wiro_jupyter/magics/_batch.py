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
import re
import shlex
from argparse import Namespace
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

_ASSIGNMENT = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*)=(?P<value>.*)$", re.DOTALL)


@magic_arguments()
@argument("model", help="the model, OWNER/MODEL")
@argument("params", nargs="*", metavar="name=value", help="parameters for every item")
@argument("-c", "--concurrency", type=int, default=8, help="tasks in flight at most (default 8)")
@argument("--max-cost", type=float, default=None, metavar="DOLLARS", help="no item starts that could pass this spend")
@argument("--name", default=None, help="the batch's name (default: derived from the model, inputs and parameters)")
@argument("--retry-failed", action="store_true", help="send the items that failed in an earlier call again")
@argument("-o", "--output", default=None, metavar="VAR", help="store the BatchResult in VAR")
def batch_magic(line: str) -> None:
    """Run one model over the cell's lines, at most N at a time, resumable.

    %%wiro batch OWNER/MODEL [name=value ...] [-c N] [--max-cost X] [--name NAME] [-o VAR]
    a lighthouse at dawn
    {"prompt": "a fox", "width": 768}

    Every line is checked first (an invalid one fails alone, nothing of it is sent). Running the same
    cell again collects what finished and sends only what never ran.
    """


def parse(line: str) -> tuple[Namespace, dict[str, str]]:
    """The options and the `name=value` parameters of a `%%wiro batch` line (in any order).

    The line is split like a shell would (`prompt="a red fox"` is one word); the `name=value` words are
    the parameters, and the rest goes to `parse_argstring`."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f'Could not read the line: {exc}. Quote values with spaces: prompt="a red fox".') from None
    params: dict[str, str] = {}
    options: list[str] = []
    for word in words:
        match = _ASSIGNMENT.match(word)
        if match is not None and not (options and options[-1] in _VALUED):
            params[match["name"]] = match["value"]
        else:
            options.append(word)
    args = parse_argstring(batch_magic, " ".join(_keep_whole(w) for w in options))
    args.name, args.output = _unquote(args.name), _unquote(args.output)
    if args.params:  # a word neither an option nor name=value
        raise UsageError(f"{args.params[0]!r} is neither an option nor name=value.\n{batch_magic.parser.format_usage().strip()}")
    if args.concurrency < 1:
        raise UsageError(f"-c/--concurrency must be 1 or more; got {args.concurrency}.")
    return args, params


# Options that take a value: the word after one of them is that value, even when it contains `=`.
_VALUED = ("-c", "--concurrency", "--max-cost", "--name", "-o", "--output")


def _keep_whole(word: str) -> str:
    """A word that IPython's splitter (`arg_split`, which keeps a token's quotes) returns as one token."""
    if not word or any(c.isspace() for c in word):
        return f'"{word}"' if '"' not in word else f"'{word}'"
    return word


def _unquote(value: str | None) -> str | None:
    if value is not None and len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


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
    display(result)  # the gallery; the cell's value is stored without a second display
    return result


def batch_cell(shell: Any, line: str, body: str) -> Any:
    """The blocking `%%wiro batch` cell (terminal IPython, `%autoawait off`): Ctrl-C stops the batch."""
    args, params = parse(line)
    items = inputs(body)
    result = _client().batch(args.model, items, **_options(args), **params)
    return _done(shell, args, result)


async def batch_cell_async(shell: Any, line: str, body: str) -> Any:
    """The awaited `%%wiro batch` cell: the kernel stays free, so Stop works; an interrupt stops the batch."""
    from .._loop import submit
    from .._task import Task
    from ..batch._start import start_batch

    args, params = parse(line)
    items = inputs(body)
    client = _client()
    run = await asyncio.wrap_future(
        submit(start_batch(client.aio, args.model, items, **_options(args), common=params, wrap=Task))
    )
    return _done(shell, args, await run.wait_async(progress=True))
