"""Reading a magic's line and cell body: pure functions, no network, no display.

- `split_words(line, namespace)`: shell-like words (quotes group them), then `{name}` interpolation of
  each word, so that a value with spaces or quotes stays one word (`prompt={text}` works for any text).
- `parse_words(magic, words)`: the words through the argument parser IPython's `@magic_arguments` built
  for `magic`; a mistake is a `UsageError` (one short message, no traceback; the cell still fails) that
  ends with the magic's usage line, and `-h` / `--help` is a `UsageError` carrying the whole help.
- `model_slug(text)`, `output_name(text)`, `seconds(text)`: the checks of `OWNER/MODEL`, `-o VAR` and
  `--timeout S`; `assignments(words, usage)`: `name=value` words → {name: raw value}; `@exclusive()`:
  arguments that exclude each other.
- `parse_body(body)`: a JSON object → parameters; anything else → plain text.
- `interpolate(text, namespace)`: `{name}`, `{In[3]}`, `{Out[3]}`, `{obj.attr}`; unknown names stay as
  they are; `{{` / `}}` are a literal `{` / `}`.
- `convert_value(raw, param)`: a `name=value` string → the value given to the Python API. Numbers and
  options stay strings here: `prepare_run` (the Python API's own validation) converts and checks them,
  so the rules live in one place. Only JSON-looking values (`[...]`, `{...}`, `true`, `false`, `null`)
  are decoded, and never for text parameters.

Why not IPython's `parse_argstring`: it splits with `arg_split`, which keeps quotes inside words and
leaves no room for interpolating each word after splitting; so the words are split here and handed to
the very parser `parse_argstring` would use (`magic.parser`).
"""

from __future__ import annotations

import argparse
import json
import keyword
import re
import shlex
from typing import TYPE_CHECKING, Any, Protocol

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument_group

if TYPE_CHECKING:
    from IPython.core.magic_arguments import MagicArgumentParser

    from .._models import Parameter

__all__ = [
    "WithArguments",
    "assignments",
    "convert_value",
    "exclusive",
    "help_text",
    "interpolate",
    "model_slug",
    "output_name",
    "parse_body",
    "parse_words",
    "seconds",
    "split_words",
    "usage",
]


class WithArguments(Protocol):
    """A function decorated with IPython's `@magic_arguments` (which hangs its parser on it)."""

    parser: MagicArgumentParser


class exclusive(argument_group):  # lower case, as IPython's `argument` and `argument_group` it is used with
    """`@exclusive()`: the arguments declared under it exclude each other (argparse's mutually exclusive group)."""

    def add_to_parser(self, parser: argparse.ArgumentParser, group: Any) -> Any:
        return parser.add_mutually_exclusive_group(*self.args, **self.kwds)


def split_words(line: str, namespace: dict[str, Any] | None = None) -> list[str]:
    """Shell-like split (quotes group words), then `{name}` interpolation of each word.

    A missing closing quote is a UsageError.
    """
    try:
        words = shlex.split(line, posix=True)
    except ValueError as exc:
        raise UsageError(f'Could not read the magic line: {exc}. Quote values with spaces: prompt="a cat".') from None
    if namespace is not None:
        words = [interpolate(word, namespace) for word in words]
    return words


def _plain(text: str) -> str:
    # IPython writes a magic's usage as an RST literal block ("::\n\n  %wiro ..."); a message says "usage: %wiro ...".
    return text.replace("::\n\n  ", "usage: ", 1).strip()


def usage(magic: WithArguments) -> str:
    """'usage: %wiro models [--category C] [--limit N] [--start N] [TEXT ...]'."""
    return _plain(magic.parser.format_usage())


def help_text(magic: WithArguments) -> str:
    """The usage, the description and every argument's help, as `-h` shows them."""
    return _plain(magic.parser.format_help())


def parse_words(magic: WithArguments, words: list[str]) -> argparse.Namespace:
    """Parse `words` with `magic`'s parser; options and positional words may come in any order."""
    if any(word in ("-h", "--help") for word in words):
        raise UsageError(help_text(magic))
    try:
        return magic.parser.parse_intermixed_args(words)
    except UsageError as exc:  # MagicArgumentParser.error raises it with the bare message
        raise UsageError(f"{exc}\n{usage(magic)}") from None


_NAME = re.compile(r"^[A-Za-z_][\w.\-]*$")


def assignments(words: list[str], usage_line: str) -> dict[str, str]:
    """`name=value` words → {name: raw value}, in order; any other word is a UsageError."""
    params: dict[str, str] = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep or not _NAME.match(name):
            raise UsageError(f"{word!r} is not a name=value parameter\n{usage_line}")
        params[name] = value
    return params


def model_slug(text: str) -> str:
    """`text` as 'owner/model' (the protocol layer's one slug check), or a UsageError saying how to write it."""
    from .._exceptions import ValidationError
    from .._models import split_slug

    try:
        owner, project = split_slug(text)
    except ValidationError as exc:
        raise UsageError(str(exc)) from None
    return f"{owner}/{project}"


def output_name(text: str) -> str:
    """The `-o VAR` argument: a Python variable name."""
    if not text.isidentifier() or keyword.iskeyword(text):
        raise argparse.ArgumentTypeError(f"-o needs a Python variable name; {text!r} is not one")
    return text


def seconds(text: str) -> float:
    """The `--timeout S` argument: a number of seconds above 0."""
    try:
        number = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if number <= 0:
        raise argparse.ArgumentTypeError("the timeout must be more than 0 seconds")
    return number


# --------------------------------------------------------------------------------------
# values


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    return stripped[:1] in ("[", "{") or stripped in ("true", "false", "null")


def convert_value(raw: str, param: Parameter | None = None) -> Any:
    """A `name=value` string → the value passed to the Python API.

    `param` is the model's `Parameter` (or None when the model has no such parameter:
    then the Python API reports the unknown name). Text parameters keep the string as
    written. JSON-looking values become lists/dicts/booleans. File lists may also be
    written comma-separated. Everything else stays a string for `prepare_run` to
    convert and check (range/number → number, select → one of the options).
    """
    ptype = param.type if param is not None else None
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
