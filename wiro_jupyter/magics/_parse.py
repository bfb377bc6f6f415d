"""Parsing for the magics: pure functions, no network, no display.

- `parse_run(line)`: `OWNER/MODEL [name=value ...] [-o VAR] [--no-wait] [--form] [--save DIR] [--timeout S]`
  (shell-like quoting with `shlex`; options and `name=value` pairs may be mixed in any order).
- `parse_subcommand(line)`: `%wiro SUBCOMMAND ...` → (name, argparse namespace).
- `parse_body(body)`: a JSON object → parameters; anything else → plain text.
- `interpolate(text, namespace)`: `{name}`, `{In[3]}`, `{Out[3]}`, `{obj.attr}`; unknown names
  stay as they are; `{{` / `}}` are a literal `{` / `}`.
- `convert_value(raw, param)`: a `name=value` string → the value given to the Python API.
  Numbers and options stay strings here: `prepare_run` (the Python API's own validation)
  converts and checks them, so the rules live in one place. Only JSON-looking values
  (`[...]`, `{...}`, `true`, `false`, `null`) are decoded, and never for text parameters.

Every malformed input raises IPython's `UsageError` with the usage line, which IPython
shows as one short message (no traceback) and which still fails the cell.
"""

from __future__ import annotations

import argparse
import difflib
import json
import keyword
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from IPython.core.error import UsageError

__all__ = [
    "SUBCOMMANDS",
    "MagicParser",
    "RunRequest",
    "convert_value",
    "interpolate",
    "parse_assignments",
    "parse_body",
    "parse_run",
    "parse_subcommand",
    "split_words",
]

# --------------------------------------------------------------------------------------
# argparse that never exits


class MagicParser(argparse.ArgumentParser):
    """argparse that raises UsageError (message + usage) instead of printing and exiting."""

    def __init__(self, prog: str, description: str = "", epilog: str = "", usage: str | None = None) -> None:
        super().__init__(
            prog=prog,
            usage=usage,
            description=description,
            epilog=epilog,
            add_help=False,
            allow_abbrev=False,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def error(self, message: str) -> Any:  # argparse calls this for every usage problem
        raise UsageError(f"{message}\n{self.format_usage().strip()}")

    def exit(self, status: int = 0, message: str | None = None) -> Any:
        raise UsageError(message or f"{self.prog}: invalid arguments")


def split_words(line: str, namespace: dict[str, Any] | None = None) -> list[str]:
    """Shell-like split (quotes group words), then `{name}` interpolation of each word.

    A missing closing quote is a UsageError. Interpolating after splitting means a
    value with spaces or quotes stays one word: `prompt={text}` works for any text.
    """
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f'Could not read the magic line: {exc}. Quote values with spaces: prompt="a cat".') from None
    if namespace is not None:
        words = [interpolate(word, namespace) for word in words]
    return words


def _identifier(value: str) -> str:
    if not value.isidentifier() or keyword.iskeyword(value):
        raise UsageError(f"-o needs a Python variable name; {value!r} is not one.")
    return value


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return number


# --------------------------------------------------------------------------------------
# %%wiro run / %wiro run


def _run_parser(prog: str = "%%wiro run") -> MagicParser:
    parser = MagicParser(
        prog,
        description="Run a model; the cell body is its prompt (plain text) or a JSON object.",
        usage="%(prog)s OWNER/MODEL [name=value ...] [-o VAR] [--no-wait] [--form] [--save DIR] [--timeout S]",
    )
    parser.add_argument("slug", nargs="?", metavar="OWNER/MODEL", help="the model, e.g. wiro/text-to-image")
    parser.add_argument("assignments", nargs="*", metavar="name=value", help="parameters, converted to their type")
    parser.add_argument("-o", "--output", metavar="VAR", type=_identifier, help="store the Task in VAR")
    parser.add_argument("--no-wait", action="store_true", help="return at once; the task stays live")
    parser.add_argument("--form", action="store_true", help="show the model's form prefilled, do not run")
    parser.add_argument("--save", metavar="DIR", help="save the outputs into DIR")
    parser.add_argument("--timeout", metavar="S", type=_seconds, help="stop waiting after S seconds")
    return parser


_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


def _split_assignments(parser: MagicParser, words: list[str]) -> tuple[list[str], dict[str, str]]:
    """Take the `name=value` words out (anywhere on the line); the rest goes to argparse."""
    takes_value = {
        option
        for action in parser._actions
        if action.option_strings and action.nargs is None and not isinstance(action.const, bool)
        for option in action.option_strings
    }
    rest: list[str] = []
    params: dict[str, str] = {}
    expect_value = False
    for word in words:
        if expect_value:
            rest.append(word)
            expect_value = False
            continue
        if word.startswith("-"):
            rest.append(word)
            expect_value = word in takes_value  # `--save=DIR` carries its value itself
            continue
        name, sep, value = word.partition("=")
        if sep:
            if not _NAME.match(name):
                parser.error(f"{word!r} is not a name=value parameter")
            params[name] = value
        else:
            rest.append(word)
    return rest, params


@dataclass
class RunRequest:
    """A parsed `run` line."""

    slug: str
    params: dict[str, str] = field(default_factory=dict)  # raw `name=value` strings, in order
    output: str | None = None
    no_wait: bool = False
    form: bool = False
    save: str | None = None
    timeout: float | None = None


def parse_run(line: str, *, prog: str = "%%wiro run", namespace: dict[str, Any] | None = None) -> RunRequest:
    """Parse the part of the magic line after `run` (`{name}` in words interpolated from `namespace`)."""
    parser = _run_parser(prog)
    words = split_words(line, namespace)
    if any(w in ("-h", "--help") for w in words):
        raise UsageError(parser.format_help())
    rest, params = _split_assignments(parser, words)
    args = parser.parse_args(rest)
    if args.slug is None:
        parser.error("the model is missing (OWNER/MODEL, e.g. wiro/text-to-image)")
    extra = list(args.assignments)
    if extra:
        parser.error(f"{extra[0]!r} is not a name=value parameter")
    slug = str(args.slug)
    if slug.count("/") != 1 or slug.startswith("/") or slug.endswith("/"):
        parser.error(f"{slug!r} is not a model: write OWNER/MODEL, e.g. wiro/text-to-image")
    return RunRequest(
        slug=slug,
        params=params,
        output=args.output,
        no_wait=bool(args.no_wait),
        form=bool(args.form),
        save=args.save,
        timeout=args.timeout,
    )


def parse_assignments(words: list[str], prog: str) -> dict[str, str]:
    """`name=value` words of `%wiro form` → raw strings."""
    params: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not _NAME.match(name):
            raise UsageError(f"{word!r} is not a name=value parameter\n{SUBCOMMANDS[prog].format_usage().strip()}")
        params[name] = value
    return params


# --------------------------------------------------------------------------------------
# %wiro SUBCOMMAND


def _build_subcommands() -> dict[str, MagicParser]:
    parsers: dict[str, MagicParser] = {}

    def sub(name: str, description: str, usage: str | None = None) -> MagicParser:
        parsers[name] = MagicParser(f"%wiro {name}", description, usage=usage)
        return parsers[name]

    p = sub("models", "List the catalogue (a table); slugs then complete with Tab.")
    p.add_argument("search", nargs="*", metavar="TEXT", help="words to search for")
    p.add_argument("--category", "-c", action="append", metavar="C", help="only this category (repeatable)")
    p.add_argument("--limit", type=int, default=50, metavar="N", help="at most N models (default 50, max 100)")
    p.add_argument("--start", type=int, default=0, metavar="N", help="skip the first N models")

    p = sub("info", "A model's parameters (types, ranges, options, defaults).")
    p.add_argument("slug", metavar="OWNER/MODEL")

    p = sub("form", "The model's generated form, prefilled with name=value pairs.", "%(prog)s OWNER/MODEL [name=value ...]")
    p.add_argument("slug", metavar="OWNER/MODEL")
    p.add_argument("assignments", nargs=argparse.REMAINDER, metavar="name=value")

    p = sub(
        "run",
        "A %%wiro run cell without a body: the same options; it waits in place (-o VAR keeps the Task).",
        "%(prog)s OWNER/MODEL [name=value ...] [-o VAR] [--no-wait] [--form] [--save DIR] [--timeout S]",
    )
    p.add_argument("rest", nargs=argparse.REMAINDER)

    p = sub("task", "A task by its socket token or numeric id (followed live if unfinished).")
    p.add_argument("token", metavar="TOKEN_OR_ID")

    p = sub("cancel", "Cancel a queued task (Task/Cancel).")
    p.add_argument("token", metavar="TOKEN_OR_ID")

    p = sub("kill", "Stop a running task (Task/Kill).")
    p.add_argument("token", metavar="TOKEN_OR_ID")

    p = sub("tasks", "The journal: recent tasks started from this machine.")
    p.add_argument("--limit", "-n", type=int, default=20, metavar="N")
    p.add_argument("--model", "-m", metavar="OWNER/MODEL")

    p = sub("recover", "Rebuild a Task from the journal (after a restart) and show its outputs.")
    p.add_argument("id", metavar="ID_OR_TOKEN")

    p = sub("upload", "Upload a file to your Wiro storage; returns it (its .url can be a model input).")
    p.add_argument("path", metavar="PATH")

    p = sub("login", "Ask for the API key and secret (getpass); keep them for this kernel session.")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--store", action="store_true", help="also save them to the credentials file")
    store.add_argument("--no-store", action="store_true", help="do not ask about saving them")

    sub("logout", "Forget the key and secret of this session (and delete the credentials file with --forget).")
    parsers["logout"].add_argument("--forget", action="store_true", help="also delete the credentials file")

    sub("config", "What is in effect: URLs, auth mode, key/secret (masked), journal, emulator.")

    p = sub("emulator", "Start/stop the local emulator in this kernel (synthetic outputs, no account).")
    p.add_argument("action", nargs="?", default="start", choices=["start", "stop", "status"])
    p.add_argument("--delay", type=float, default=0.15, metavar="S", help="seconds between task stages")

    sub("help", "This overview.")
    return parsers


SUBCOMMANDS: dict[str, MagicParser] = _build_subcommands()


def parse_subcommand(line: str, namespace: dict[str, Any] | None = None) -> tuple[str, argparse.Namespace]:
    """`models cats --category x` → ("models", Namespace(search=["cats"], category=["x"], ...)).

    `run` keeps the rest of the line unsplit (`parse_run` reads it). With `namespace`,
    `{name}` in the words is interpolated.
    """
    words = split_words(line)
    if not words:
        return "help", argparse.Namespace()
    name = words[0]
    rest = words[1:] if namespace is None else [interpolate(w, namespace) for w in words[1:]]
    parser = SUBCOMMANDS.get(name)
    if parser is None:
        close = difflib.get_close_matches(name, list(SUBCOMMANDS), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"%wiro has no subcommand {name!r}.{hint} Subcommands: {', '.join(SUBCOMMANDS)}. See %wiro? for help.")
    if name == "run":
        return name, argparse.Namespace(rest=line.split(None, 1)[1] if len(words) > 1 else "")
    if any(w in ("-h", "--help") for w in rest):
        raise UsageError(parser.format_help())
    return name, parser.parse_args(rest)


def subcommand_overview() -> str:
    lines = []
    for parser in SUBCOMMANDS.values():
        usage = parser.format_usage().strip().removeprefix("usage: ")
        lines.append(f"  {usage}\n      {parser.description}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# values


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    return stripped[:1] in ("[", "{") or stripped in ("true", "false", "null")


def convert_value(raw: str, param: Any = None) -> Any:
    """A `name=value` string → the value passed to the Python API.

    `param` is the model's `Parameter` (or None when the model has no such parameter:
    then the Python API reports the unknown name). Text parameters keep the string as
    written. JSON-looking values become lists/dicts/booleans. File lists may also be
    written comma-separated. Everything else stays a string for `prepare_run` to
    convert and check (range/number → number, select → one of the options).
    """
    ptype = getattr(param, "type", None)
    if ptype in ("text", "textarea"):
        return raw
    if _looks_like_json(raw):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    if ptype in ("multifileinput", "combinefileinput") and "," in raw:
        return [item.strip() for item in raw.split(",") if item.strip()]
    return raw


# --------------------------------------------------------------------------------------
# the cell body

_JSON_START = re.compile(r"^\{\s*(\"|\})")


def parse_body(body: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """(json_params, None) for a JSON object body, (None, text) for plain text, (None, None) if empty.

    A body that starts like a JSON object (`{"` or `{}`) must be valid JSON: a typo there is a
    UsageError rather than a prompt sent (and paid for) by mistake. `{name} ...` is plain text.
    """
    if body is None or not body.strip():
        return None, None
    stripped = body.strip()
    if _JSON_START.match(stripped):
        try:
            value = json.loads(stripped)
        except ValueError as exc:
            raise UsageError(
                f"The cell body looks like JSON but is not valid JSON: {exc}. "
                'Write a JSON object ({"prompt": "a cat", "width": 768}) or plain text for the prompt; '
                "a plain-text body that starts with a brace is written with {{ (a literal {)."
            ) from None
        if not isinstance(value, dict):  # pragma: no cover - the regex only admits objects
            raise UsageError("A JSON cell body must be an object of parameters.")
        return value, None
    return None, body.strip("\n")


_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}")
_REFERENCE = re.compile(
    r"^\s*(?P<name>[A-Za-z_]\w*)(?P<rest>(?:\.[A-Za-z_]\w*|\[\s*-?\d+\s*\]|\[\s*'[^']*'\s*\]|\[\s*\"[^\"]*\"\s*\])*)\s*$"
)
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[\s*(-?\d+)\s*\]|\[\s*'([^']*)'\s*\]|\[\s*\"([^\"]*)\"\s*\]")
_MISSING = object()


def _lookup(expr: str, namespace: dict[str, Any]) -> Any:
    """A *reference* (never evaluated code): name, .attr, [int] and ['key'] steps."""
    match = _REFERENCE.match(expr)
    if not match or match.group("name") not in namespace:
        return _MISSING
    value = namespace[match.group("name")]
    for step in _STEP.finditer(match.group("rest")):
        attr, index, key1, key2 = step.groups()
        try:
            if attr is not None:
                if attr.startswith("_"):
                    return _MISSING
                value = getattr(value, attr)
            elif index is not None:
                value = value[int(index)]
            else:
                value = value[key1 if key1 is not None else key2]
        except (AttributeError, LookupError, TypeError, ValueError):
            return _MISSING
    return value


def _as_text(value: Any) -> str:
    # A Task (e.g. `{_}` or `{Out[4]}` after an LLM cell) interpolates as its answer.
    text = getattr(value, "text", None) if type(value).__name__.endswith("Task") else None
    if isinstance(text, str) and text:
        return text
    return str(value)


def interpolate(text: str, namespace: dict[str, Any]) -> str:
    """Replace `{name}` / `{In[3]}` / `{Out[3]}` / `{obj.attr}` / `{d['k']}` with values from `namespace`.

    Names that are not defined (and anything that is not such a reference, like
    `{a + b}` or `{"json": 1}`) are left exactly as written. `{{` and `}}` are a
    literal `{` and `}`. Nothing is evaluated: only names, attributes and indexes.
    """

    def replace(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole == "{{":
            return "{"
        if whole == "}}":
            return "}"
        value = _lookup(match.group(1), namespace)
        return whole if value is _MISSING else _as_text(value)

    return _FIELD.sub(replace, text)
