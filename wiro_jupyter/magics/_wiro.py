"""`%wiro` (line) and `%%wiro` (cell): the magics class, the subcommand table and the small subcommands.

Every feature is a Python call: `%%wiro run` is `Wiro().run(slug, params, wait=False)` plus a wait
(`_run`), `%wiro models` is `Wiro().models()`, `%wiro login` sets the session's key (`_account`), and
so on. A `%%wiro` cell dispatches on its first word: `run` (or a bare `OWNER/MODEL`, short for
`run OWNER/MODEL`) or `batch`. `HELP` (shown by `%wiro?` and `%%wiro?`) is the user-facing description.
"""

from __future__ import annotations

import argparse
import difflib
import os
from typing import TYPE_CHECKING, Any, Protocol

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments

from . import _account
from ._account import require_client
from ._complete import remember_model, remember_slugs
from ._display import provenance
from ._parse import WithArguments, assignments, help_text, interpolate, model_slug, parse_words, split_words, usage
from ._run import model_values, open_form, run_cell_async, run_cell_blocking, run_line
from ._transform import publish_result

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .._client import UploadedFile
    from .._journal import JournalList
    from .._models import Model, ModelList
    from .._task import Task
    from ..widgets._form import RunForm

__all__ = ["HELP", "SUBCOMMANDS", "WiroMagics", "cell_async", "cell_blocking", "parse_subcommand"]


# --------------------------------------------------------------------------------------
# %wiro SUBCOMMAND (those of one or two lines; `run` is in _run, the account's in _account)


@magic_arguments("wiro models")
@argument("search", nargs="*", metavar="TEXT", help="words to search for")
@argument("--category", "-c", action="append", metavar="C", help="only this category (repeatable)")
@argument("--limit", type=int, default=50, metavar="N", help="at most N models (default 50, max 100)")
@argument("--start", type=int, default=0, metavar="N", help="skip the first N models")
def _models(shell: InteractiveShell, args: argparse.Namespace) -> ModelList:
    """List the catalogue (a table); slugs then complete with Tab."""
    found = require_client().models(" ".join(args.search) or None, categories=args.category, start=args.start, limit=args.limit)
    remember_slugs(found)
    return found


@magic_arguments("wiro info")
@argument("slug", metavar="OWNER/MODEL")
def _info(shell: InteractiveShell, args: argparse.Namespace) -> Model:
    """A model's parameters (types, ranges, options, defaults)."""
    return _model(args.slug)


def _model(slug: str) -> Model:
    model = require_client().model(model_slug(slug))
    remember_model(model)
    return model


def _model_and_values(handler: WithArguments, args: argparse.Namespace) -> tuple[Model, dict[str, Any]]:
    """`OWNER/MODEL [name=value ...]`: the model, and the pairs as the values of its parameters."""
    model = _model(args.slug)
    return model, model_values(model, assignments(args.assignments, usage(handler)))


@magic_arguments("wiro form")
@argument("slug", metavar="OWNER/MODEL")
@argument("assignments", nargs="*", metavar="name=value")
def _form(shell: InteractiveShell, args: argparse.Namespace) -> RunForm:
    """The model's generated form, prefilled with name=value pairs."""
    model, params = _model_and_values(_form, args)
    return open_form(shell, model, params, require_client(), output=None, show=False)


@magic_arguments("wiro voice")
@argument("slug", metavar="OWNER/MODEL")
@argument("assignments", nargs="*", metavar="name=value")
def _voice(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Talk with a realtime model through the browser's microphone (Start asks for it; the transcript shows live)."""
    from IPython.display import display

    from ..voice._open import open_voice

    model, params = _model_and_values(_voice, args)
    view = open_voice(model.slug, params)
    display(view, metadata=provenance(model=model.slug, parameters=params))
    publish_result(shell, view)


@magic_arguments("wiro task")
@argument("token", metavar="TOKEN_OR_ID")
def _task(shell: InteractiveShell, args: argparse.Namespace) -> Task:
    """A task by its socket token or numeric id (followed live if unfinished)."""
    return require_client().task(args.token)


@magic_arguments("wiro cancel")
@argument("token", metavar="TOKEN_OR_ID")
def _cancel(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Cancel a queued task (Task/Cancel)."""
    require_client().cancel(args.token)
    print(f"Asked the server to cancel task {args.token} (Task/Cancel; a task that already runs needs %wiro kill).")


@magic_arguments("wiro kill")
@argument("token", metavar="TOKEN_OR_ID")
def _kill(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """Stop a running task (Task/Kill)."""
    require_client().kill(args.token)
    print(f"Asked the server to stop task {args.token} (Task/Kill).")


@magic_arguments("wiro tasks")
@argument("--limit", "-n", type=int, default=20, metavar="N")
@argument("--model", "-m", metavar="OWNER/MODEL")
def _tasks(shell: InteractiveShell, args: argparse.Namespace) -> JournalList:
    """The journal: recent tasks started from this machine."""
    from .._client import tasks

    return tasks(args.limit, model=args.model)


@magic_arguments("wiro recover")
@argument("id", metavar="ID_OR_TOKEN")
def _recover(shell: InteractiveShell, args: argparse.Namespace) -> Task:
    """Rebuild a Task from the journal (after a restart) and show its outputs."""
    from .._client import recover

    require_client()
    return recover(args.id)


@magic_arguments("wiro upload")
@argument("path", metavar="PATH")
def _upload(shell: InteractiveShell, args: argparse.Namespace) -> UploadedFile:
    """Upload a file to your Wiro storage; returns it (its .url can be a model input)."""
    path = os.path.expanduser(args.path)
    if not os.path.isfile(path):
        raise UsageError(f"There is no file {args.path!r} to upload.")
    return require_client().upload(path)


@magic_arguments("wiro help")
def _help(shell: InteractiveShell, args: argparse.Namespace) -> None:
    """This overview."""
    print(HELP)


class Subcommand(WithArguments, Protocol):
    """A `%wiro NAME` handler, decorated with its arguments (`handler.parser` reads the rest of the line)."""

    def __call__(self, shell: InteractiveShell, args: argparse.Namespace) -> Any: ...


SUBCOMMANDS: dict[str, Subcommand] = {
    "help": _help,
    "models": _models,
    "info": _info,
    "form": _form,
    "run": run_line,
    "voice": _voice,
    "task": _task,
    "cancel": _cancel,
    "kill": _kill,
    "tasks": _tasks,
    "recover": _recover,
    "upload": _upload,
    "login": _account.login,
    "logout": _account.logout,
    "config": _account.config,
    "emulator": _account.emulator,
}


def parse_subcommand(line: str, namespace: dict[str, Any] | None = None) -> tuple[str, argparse.Namespace]:
    """`models cats --category x` → ("models", Namespace(search=["cats"], category=["x"], ...)).

    `run` keeps the rest of the line unsplit (`_run.parse_run` reads it, with the cell's rules).
    With `namespace`, `{name}` in the words after the subcommand is interpolated.
    """
    words = split_words(line)
    if not words:
        return "help", argparse.Namespace()
    name = words[0]
    if name not in SUBCOMMANDS:
        close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"%wiro has no subcommand {name!r}.{hint} Subcommands: {', '.join(SUBCOMMANDS)}. See %wiro? for help.")
    if name == "run":
        return name, argparse.Namespace(rest=line.split(None, 1)[1] if len(words) > 1 else "")
    rest = words[1:] if namespace is None else [interpolate(word, namespace) for word in words[1:]]
    return name, parse_words(SUBCOMMANDS[name], rest)


def run_line_magic(shell: InteractiveShell, line: str) -> Any:
    # The key and secret typed at a login prompt never pass through interpolation.
    namespace = None if line.strip().startswith(("login", "logout")) else shell.user_ns
    name, args = parse_subcommand(line, namespace=namespace)
    return SUBCOMMANDS[name](shell, args)


# --------------------------------------------------------------------------------------
# %%wiro VERB: run or batch


def _cell_verb(line: str) -> tuple[str, str]:
    """('run' | 'batch', the rest of the line) of a `%%wiro` cell."""
    first, rest = [*line.split(None, 1), "", ""][:2]
    if first in ("run", "batch"):
        return first, rest
    if "/" in first and "=" not in first:
        return "run", line  # `%%wiro OWNER/MODEL ...` is short for `%%wiro run OWNER/MODEL ...`
    raise UsageError(
        "A %%wiro cell runs a model: %%wiro run OWNER/MODEL [name=value ...] [options], with the prompt "
        "(or a JSON object) as the cell body; or a batch: %%wiro batch OWNER/MODEL [...], one input per line. "
        "Other subcommands are line magics: %wiro models, %wiro info …"
    )


def cell_blocking(shell: InteractiveShell, line: str, body: str) -> Any:
    """A `%%wiro` cell where it cannot be awaited (terminal IPython, `%autoawait off`): Ctrl-C stops what it runs."""
    verb, rest = _cell_verb(line)
    if verb == "batch":
        from ._batch import batch_cell

        return batch_cell(shell, rest, body)
    return run_cell_blocking(shell, rest, body)


async def cell_async(shell: InteractiveShell, line: str, body: str) -> Any:
    """An awaited `%%wiro` cell (see `_transform`): the kernel keeps handling the widgets' buttons while it waits."""
    verb, rest = _cell_verb(line)
    if verb == "batch":
        from ._batch import batch_cell_async

        return await batch_cell_async(shell, rest, body)
    return await run_cell_async(shell, rest, body)


# --------------------------------------------------------------------------------------
# the magics

_HELP = """Wiro's cloud AI models from IPython: run them, list them, follow and recover tasks.

{run}

    The cell body is
      - plain text: the model's main text parameter (its `prompt`, else its first
        textarea/text parameter). Python variables are interpolated: {name}, {obj.attr},
        {d['key']}, {In[3]} (the source of cell 3), {Out[3]} (its result; a Task gives its
        text answer). Unknown names stay as written. Nothing is evaluated: only names,
        attributes and indexes. Write {{ and }} for a literal { and }.
      - a JSON object: parameters, e.g. {"prompt": "a cat", "width": 768}
        (a body that starts with {" must be valid JSON; it is not interpolated).
    name=value pairs on the line set parameters too. Quote values with spaces: prompt="a red fox".
    Values are converted to the parameter's type by the Python API's own validation
    (range/number -> number, select -> checked against its options, checkbox -> bool);
    [..], {..}, true/false/null are read as JSON (not for text parameters); file parameters
    take a path or URL (several: comma-separated or a JSON list). {name} works in values too.
    While the cell waits, a live status bar shows the stages; its Cancel button works, and
    interrupting the kernel stops the paid task on the server. Outputs (images, audio, video,
    text, LLM answers as Markdown) then display inline, with provenance in the output's
    metadata["wiro"]: model, task id, parameters, elapsed seconds, cost. Nothing is sent
    when a parameter is wrong; a failed task fails the cell (so pipelines stop).

%%wiro batch OWNER/MODEL [name=value ...] [-c N] [--max-cost X] [--name NAME] [--retry-failed] [-o VAR]
    Run a model over the cell's lines (a prompt or a JSON object of parameters per line), at most
    N tasks at a time, none that could pass X dollars; running the cell again collects what
    finished and sends only what never ran. -o VAR keeps the BatchResult.

%wiro SUBCOMMAND
{overview}

Examples:
    %load_ext wiro_jupyter
    %wiro emulator start                 # synthetic models, no account (remove for the real service)
    %wiro models image
    %wiro info wiro/text-to-image
    %%wiro run wiro/text-to-image width=768 -o pic
    a lighthouse at dawn, {style}

Tab completes subcommands, options and (once listed or used) model slugs and parameter names.
The same in Python: wiro_jupyter.Wiro().run("wiro/text-to-image", prompt="...").
"""


def _overview() -> str:
    """One entry per subcommand: its usage, then its description (`run` is described with the cell)."""
    return "\n".join(
        f"  {usage(handler).removeprefix('usage: ')}\n      {' '.join((handler.parser.description or '').split())}"
        for name, handler in SUBCOMMANDS.items()
        if name != "run"
    )


HELP = _HELP.replace("{run}", help_text(run_line)).replace("{overview}", _overview())


@magics_class
class WiroMagics(Magics):
    @no_var_expand
    @line_cell_magic
    def wiro(self, line: str, cell: str | None = None) -> Any:
        assert self.shell is not None  # IPython registers magics with their shell
        if cell is None:
            return run_line_magic(self.shell, line)
        publish_result(self.shell, cell_blocking(self.shell, line, cell))
        return None

    wiro.__doc__ = HELP
