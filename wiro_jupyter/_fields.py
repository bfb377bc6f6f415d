"""Total readers of server JSON: every field read gives a value or a clear `WiroError`.

Servers send numbers as strings (`"256"`), sometimes as prose, empty strings or values
that overflow (`"1e999"`, `"NaN"`); such numbers mean "absent" here. A container of the
wrong kind (a list where an object belongs, or the reverse) is a broken answer: it raises
a `ServerError` naming the endpoint and the field, never a raw KeyError or TypeError
(docs/protocol.md, Wiro §11).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ._exceptions import ServerError


def to_number(value: Any) -> float | int | None:
    """'256' -> 256, '4.5' -> 4.5; '', prose, NaN, infinities, booleans and containers -> None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def to_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value) if isinstance(value, (bool, int, float)) else False


def to_text(value: Any) -> str:
    """A string field: scalars as text, absent (None) and containers as ''."""
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value)


def maybe_json(value: Any) -> Any:
    """Decode JSON that the server sends inside a string (dynamicprice, categories, socket messages)."""
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _broken(where: str, name: str, value: Any, wanted: str) -> ServerError:
    found = "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__
    return ServerError(
        f"The answer to {where} has {found} in its field {name!r}, where {wanted} belongs.",
        hint="The server sent something this client cannot read; try again later, or report it with the endpoint named here.",
    )


def list_field(payload: dict[str, Any], name: str, where: str) -> list[Any]:
    """A list field of any items; absent -> []."""
    value = payload.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise _broken(where, name, value, "a list")
    return value


def object_list(payload: dict[str, Any], name: str, where: str, *, one_object: bool = False) -> list[dict[str, Any]]:
    """A list of objects; absent -> []; items that are not objects are skipped.

    `one_object=True` also takes a lone object for a one-element list (Wiro's Tool/Detail
    sends `tool` as a list of one, older answers as the object itself).
    """
    value = payload.get(name)
    if value is None:
        return []
    if one_object and isinstance(value, dict):
        return [value]
    if not isinstance(value, list):
        raise _broken(where, name, value, "a list")
    return [item for item in value if isinstance(item, dict)]


def require_object(payload: Any, where: str) -> dict[str, Any]:
    """A whole answer that must be a JSON object."""
    if not isinstance(payload, dict):
        raise _broken(where, "(the answer itself)", payload, "an object")
    return payload
