"""Run parameters: the coercions the server applies, and validating a Run body against a model's items.

References like "Wiro §4.1" are sections of docs/protocol.md.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.datastructures import UploadFile

from ._envelope import INVALID
from ._files import FileStore
from ._ids import random_token
from ._models import FILE_TYPES, NUMERIC_TYPES, SELECT_TYPES, InputFile, ModelSpec


def wire_string(value: Any) -> Any:
    """Coerce an input to the strings the server echoes in `parameters` (Wiro §6: `maxImages` → "1")."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [wire_string(v) for v in value]
    return json.dumps(value, separators=(",", ":"))


def to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    return None


def to_int(value: Any, default: int) -> int:
    number = to_number(value)
    return int(number) if number is not None else default


def missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple)):
        return all(missing(v) for v in value)
    return False


def url_list(value: Any) -> list[str]:
    """URLs from a JSON array, a repeated multipart field, or a comma-separated companion (Wiro §4.1)."""
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if isinstance(v, str) and v.strip()]
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return []


class _Invalid:
    def __init__(self, message: str) -> None:
        self.message = message


Prepared = tuple[dict[str, Any], dict[str, Any], dict[str, list[InputFile]]]


async def prepare(spec: ModelSpec, body: dict[str, Any], files: dict[str, list[UploadFile]], store: FileStore,
                  base_url: str) -> str | Prepared:
    """Validate like the real server (first error wins, Wiro §2 texts) and build the task's inputs.

    Returns the error text, or (echoed parameters, effective typed values, input files by parameter).
    """
    parameters: dict[str, Any] = {k: wire_string(v) for k, v in body.items()}
    values: dict[str, Any] = {}
    inputs: dict[str, list[InputFile]] = {}
    folder = random_token()  # /v1/File/<token>/… for this run's uploads (Wiro §5)
    declared = {item["id"] for item in spec.items}
    for item in spec.items:
        pid, kind = item["id"], item["type"]
        if kind in FILE_TYPES:
            entries = [await store.store_input(folder, pid, up, base_url) for up in files.get(pid, [])]
            entries += [store.input_from_url(url, base_url) for url in url_list(body.get(pid))]
            if entries:
                urls = [e.url for e in entries]
                parameters[pid] = urls[0] if kind == "fileinput" and len(urls) == 1 else urls
            companion = pid + "Url"  # its own declared `text` parameter (Wiro §4.1)
            if companion in declared or companion in body:
                entries += [store.input_from_url(url, base_url) for url in url_list(body.get(companion))]
            if not entries and item["required"]:
                return f"Request files [{pid}] required"
            limit = item.get("maxinputlenght") or (1 if kind == "fileinput" else 0)
            if limit and len(entries) > limit:
                return INVALID
            inputs[pid] = entries
            continue
        value = body.get(pid)
        # An empty-string option is a real choice ("match input", Wiro §4.1), not a missing value.
        chosen_empty = value == "" and kind in SELECT_TYPES and "" in {o["value"] for o in item.get("options", [])}
        if missing(value) and not chosen_empty:
            if item["required"]:
                return f"Request parameter [{pid}] required"
            value = item.get("defaultvalue")
            checked = False
        else:
            checked = True
        converted = _convert(item, value, checked)
        if isinstance(converted, _Invalid):
            return converted.message
        values[pid] = converted
    for pid, uploads in files.items():  # undeclared file fields: stored and echoed anyway
        if pid in declared:
            continue
        urls = [(await store.store_input(folder, pid, up, base_url)).url for up in uploads]
        parameters[pid] = urls[0] if len(urls) == 1 else urls
    return parameters, values, inputs


def _convert(item: dict[str, Any], value: Any, checked: bool) -> Any:
    pid, kind = item["id"], item["type"]
    if kind in NUMERIC_TYPES:
        number = to_number(value)
        if number is None:
            return _Invalid(f"Request parameter [{pid}] must be integer or float") if checked else 0
        low, high = item.get("minvalue", ""), item.get("maxvalue", "")
        if checked and low != "" and high != "" and not float(low) <= number <= float(high):
            return _Invalid(f"Request parameter [{pid}] must be between {low} and {high}")
        return int(number) if number.is_integer() else number
    if kind in SELECT_TYPES:
        text = wire_string(value)
        if checked and text not in {str(o["value"]) for o in item.get("options", [])}:
            return _Invalid(INVALID)
        return text
    if kind == "checkbox":
        flag = to_bool(value)
        if flag is None:
            return _Invalid(INVALID) if checked else False
        return flag
    return value if isinstance(value, str) else wire_string(value)
