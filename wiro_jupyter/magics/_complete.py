"""Tab completion for `%wiro`, `%%wiro` and `%%wchat`: subcommands, options, and what this session has seen.

Model slugs complete once a magic has listed or used them (`%wiro models`, `%wiro info`, a run),
parameter names (`width=`) once the model's definition was read, task ids from the journal. Nothing
here asks the network: completion must be instant and must never raise. IPython filters the words
returned by the prefix being typed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from .._models import Model

__all__ = ["KNOWN_MODELS", "KNOWN_SLUGS", "install", "remember_model", "remember_slugs", "uninstall"]

KNOWN_SLUGS: set[str] = set()
KNOWN_MODELS: dict[str, Model] = {}  # by lower-case slug: their parameters complete as `name=`


class CompletionEvent(Protocol):
    """What IPython passes to a `complete_command` hook."""

    line: str
    text_until_cursor: str


def remember_model(model: Model) -> None:
    KNOWN_SLUGS.add(model.slug)
    KNOWN_MODELS[model.slug.lower()] = model


def remember_slugs(models: Iterable[Model]) -> None:
    KNOWN_SLUGS.update(model.slug for model in models)


_RUN_OPTIONS = ["-o", "--no-wait", "--form", "--reuse", "--save", "--timeout"]
_BATCH_OPTIONS = ["-c", "--max-cost", "--name", "--retry-failed", "-o"]
_SUB_OPTIONS = {
    "models": ["--category", "--limit", "--start"],
    "tasks": ["--limit", "--model"],
    "login": ["--store", "--no-store"],
    "logout": ["--forget"],
    "config": ["reuse=on", "reuse=off"],
    "emulator": ["start", "stop", "status", "--delay"],
}
_WCHAT_OPTIONS = ["--wbot", "--new", "--session", "-o"]


def _slugs() -> list[str]:
    return sorted(KNOWN_SLUGS)


def _param_words(slug: str) -> list[str]:
    model = KNOWN_MODELS.get(slug.lower())
    return [f"{p.id}=" for p in model.parameters] if model else []


def _task_ids() -> list[str]:
    try:
        from .._journal import Journal

        return [e.task_id for e in Journal().recent(20) if e.task_id]
    except Exception:  # completion must never raise
        return []


def _words(event: CompletionEvent) -> list[str]:
    """The words typed so far; the last one is '' when the cursor follows a space."""
    text = event.text_until_cursor or event.line or ""
    words = text.split()
    if words and text[-1:].isspace():
        words.append("")
    return words


def complete_wiro(event: CompletionEvent, subcommands: list[str]) -> list[str]:
    """`%wiro SUBCOMMAND …` and `%%wiro [run|batch] OWNER/MODEL …`."""
    words = _words(event)
    if not words:
        return []
    command, args = words[0], words[1:]
    if command.startswith("%%"):
        if len(args) <= 1:
            return ["run", "batch", *_slugs()]
        if args[0] == "batch":
            return _model_words(args[1:], _BATCH_OPTIONS)
        return _model_words(args[1:] if args[0] == "run" else args, _RUN_OPTIONS)
    if len(args) <= 1:
        return subcommands
    sub, rest = args[0], args[1:]
    if sub == "run":
        return _model_words(rest, _RUN_OPTIONS)
    if sub in ("info", "form", "voice"):
        return _slugs() if len(rest) == 1 else _param_words(rest[0])
    if sub in ("task", "cancel", "kill", "recover") and len(rest) == 1:
        return _task_ids()
    if sub == "tasks" and len(rest) >= 2 and rest[-2] in ("--model", "-m"):
        return _slugs()
    return _SUB_OPTIONS.get(sub, [])


def _model_words(args: list[str], options: list[str]) -> list[str]:
    """Words after `run` / `batch`: the slug first, then its parameters (`name=`) and the options."""
    if len(args) <= 1:
        return _slugs()
    if args[-2] in ("-o", "-c", "--save", "--timeout", "--max-cost", "--name"):
        return []  # the value of an option: nothing to offer
    return [*_param_words(args[0]), *options]


def complete_wchat(shell: InteractiveShell, event: CompletionEvent) -> list[str]:
    """`%%wchat`: options, the names of the kept sessions after --session, the model slugs seen so far."""
    words = _words(event)
    if len(words) >= 2 and words[-2] == "-o":
        return []
    if len(words) >= 2 and words[-2] == "--session":
        from ..chat._sessions import sessions

        return sorted(sessions())
    return [*_WCHAT_OPTIONS, *_slugs()]


_KEYS = ("%wiro", "%%wiro", "%%wchat")


def install(shell: InteractiveShell, subcommands: list[str]) -> None:
    """Register the completers; `subcommands` are the names `%wiro` takes."""

    def wiro(_shell: InteractiveShell, event: CompletionEvent) -> list[str]:
        return complete_wiro(event, subcommands)

    shell.set_hook("complete_command", wiro, str_key="%wiro")
    shell.set_hook("complete_command", wiro, str_key="%%wiro")
    shell.set_hook("complete_command", complete_wchat, str_key="%%wchat")


def uninstall(shell: InteractiveShell) -> None:
    dispatch = shell.strdispatchers.get("complete_command")  # what set_hook added to (the Completer's custom_completers)
    if dispatch is not None:
        for key in _KEYS:
            dispatch.strs.pop(key, None)
