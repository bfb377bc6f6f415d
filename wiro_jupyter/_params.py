"""Check a run's parameters against the model's definitions, then encode them.

Everything here happens before a request is sent, so a typo never costs
money. The encoding follows the wire rules (docs/protocol.md, Wiro §4.1 and §5): JSON
when no file is uploaded, multipart when one is; a URL goes to the model's
declared URL companion (`inputImageUrl`, `inputDocumentUrlMultiple`, …) or,
for `combinefileinput`, into the field itself.
"""

from __future__ import annotations

import difflib
import hashlib
import io
import mimetypes
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

from ._exceptions import FieldProblem, ValidationError
from ._fields import to_bool, to_number
from ._mime import sniff
from ._models import Model, Parameter

# Accepted by every model without being declared (docs: callbackUrl on all models).
ALWAYS_ALLOWED = {"callbackUrl"}


def is_url(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower().startswith(("http://", "https://"))


HASH_CHUNK = 1 << 20  # bytes of a file on disk hashed at a time
SNIFF_BYTES = 4096  # what `sniff` looks at


class DiskFile:
    """A file on disk as an httpx multipart part reads it: opened at its first read, closed at its end.

    httpx seeks a part back to the start before it sends it, so every attempt of a request the
    HTTP core retries sends the whole file again; the part's length (the Content-Length) comes
    from `seek(0, SEEK_END)`, which only looks at the file's size. One chunk is in memory at a time.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._position = 0
        self._file: BinaryIO | None = None

    def read(self, size: int = -1) -> bytes:
        if self._file is None:
            self._file = self.path.open("rb")
            self._file.seek(self._position)
        chunk = self._file.read(size)
        self._position += len(chunk)
        if not chunk or size < 0:
            self.close()
        return chunk

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.close()
        if whence == os.SEEK_END:
            offset += self.path.stat().st_size
        elif whence == os.SEEK_CUR:
            offset += self._position
        self._position = offset
        return offset

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __del__(self) -> None:  # a request abandoned mid-body leaves its file open until here
        self.close()


@dataclass
class FileInput:
    """A file to upload, never logged. A file given by path stays on disk: it is hashed in chunks for the
    journal and read as it is sent (`body()`); bytes, an open file's content or a PIL image are held."""

    name: str
    content_type: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    @property
    def content(self) -> bytes:
        """All of the file's bytes (read from disk on every call when it was given by path)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    @cached_property
    def sha256(self) -> str:
        if self.data is not None:
            return hashlib.sha256(self.data).hexdigest()
        assert self.path is not None
        digest = hashlib.sha256()
        with self.path.open("rb") as source:
            while chunk := source.read(HASH_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def body(self) -> bytes | DiskFile:
        """What its multipart part sends: the bytes held, or the file read from disk as it is sent."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return DiskFile(self.path)


def read_file_input(value: Any, param_id: str, *, what: str | None = None) -> FileInput:
    """Path, bytes, file object or PIL image → FileInput, with a clear error when it can't be read.

    `what` names the input in messages (default: the parameter); the Dify chat's uploads
    use this same reader, so both clients accept and name files alike.
    """
    what = what or f"parameter {param_id!r}"
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise ValidationError(
                f"File not found: {what} names {str(path)!r}, which does not exist.",
                hint="Give an existing file path, bytes, an open file, a PIL image, or an http(s) URL. Nothing was sent.",
            )
        with path.open("rb") as source:  # a file that cannot be read fails here, before anything is sent
            head = source.read(SNIFF_BYTES)
        return FileInput(path.name, mimetypes.guess_type(path.name)[0] or sniff(head)[1], path=path)
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        extension, ctype = sniff(data)
        return FileInput(f"{param_id}{extension}", ctype, data=data)
    if hasattr(value, "save") and hasattr(value, "mode") and hasattr(value, "size"):  # a PIL image
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return FileInput(f"{param_id}.png", "image/png", data=buffer.getvalue())
    if hasattr(value, "read"):
        data = value.read()
        if isinstance(data, str):
            data = data.encode()
        data = bytes(data)
        extension, sniffed = sniff(data)
        name = Path(str(getattr(value, "name", "") or "")).name or f"{param_id}{extension}"
        return FileInput(name, mimetypes.guess_type(name)[0] or sniffed, data=data)
    raise ValidationError(
        f"Cannot send a {type(value).__name__} as a file ({what}).",
        hint="Give a file path, bytes, an open file, a PIL image, or an http(s) URL.",
    )


@dataclass
class PreparedRun:
    """The wire form of a run: `json` or (`data` + `files`), plus a journal-safe summary."""

    json: dict[str, Any] | None
    data: list[tuple[str, str]] | None
    files: list[tuple[str, tuple[str, bytes | DiskFile, str]]] | None
    summary: dict[str, Any]


def url_companion(model: Model, param: Parameter) -> str | None:
    """The declared text parameter that takes URLs for a file parameter, if any."""
    ids = {p.id for p in model.parameters}
    candidates = [f"{param.id}Url", f"{param.id}URL", param.id.replace("Multiple", "UrlMultiple")]
    for candidate in candidates:
        if candidate != param.id and candidate in ids:
            return candidate
    return None


def _range(param: Parameter) -> str:
    if param.min is not None and param.max is not None:
        return f"between {param.min} and {param.max}"
    return f"at least {param.min}" if param.min is not None else f"at most {param.max}"


def _coerce(param: Parameter, value: Any, problems: list[FieldProblem]) -> Any:
    if param.is_number:
        number = to_number(value)
        if number is None:
            problems.append(FieldProblem(param.id, f"{param.id!r} must be a number ({param.describe()}); got {value!r}."))
            return value
        if param.is_integer and isinstance(number, float):
            if not number.is_integer():
                message = f"{param.id!r} must be a whole number ({param.describe()}); got {value!r}."
                problems.append(FieldProblem(param.id, message))
                return value
            number = int(number)
        if (param.min is not None and number < param.min) or (param.max is not None and number > param.max):
            problems.append(FieldProblem(param.id, f"{param.id!r} must be {_range(param)}; got {number}."))
        return number
    if param.is_select and param.options:
        allowed = {str(o.value): o.value for o in param.options}
        if str(value) not in allowed:
            # Accept an option's label as a convenience ("PNG" for "png").
            by_label = {o.label.lower(): o.value for o in param.options}
            if str(value).lower() in by_label:
                return by_label[str(value).lower()]
            close = difflib.get_close_matches(str(value), list(allowed), n=1)
            did_you_mean = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(
                FieldProblem(
                    param.id,
                    f"{param.id!r} must be one of {', '.join(repr(v) for v in allowed.values())}; got {value!r}.{did_you_mean}",
                )
            )
            return value
        return allowed[str(value)]
    if param.type == "checkbox":
        return to_bool(value)
    if param.type in ("text", "textarea"):
        limit = to_number(param.raw.get("maxlength") or param.raw.get("maxLength"))
        text = value if isinstance(value, str) else str(value)
        if limit and len(text) > limit:
            message = f"{param.id!r} is {len(text)} characters long; the model takes at most {limit}."
            problems.append(FieldProblem(param.id, message))
        return text
    return value


def coerce_values(model: Model, params: dict[str, Any]) -> dict[str, Any]:
    """`params` converted to their parameters' types and checked (files are left as given): a form's prefill.

    Raises ValidationError listing every problem, like `prepare_run`, without reading files or encoding.
    """
    by_id = {p.id: p for p in model.parameters}
    problems: list[FieldProblem] = []
    values: dict[str, Any] = {}
    for name, value in params.items():
        param = by_id.get(name)
        if param is None:
            problems.append(FieldProblem(name, f"{model.slug} has no parameter {name!r}."))
        else:
            values[name] = value if param.is_file else _coerce(param, value, problems)
    if problems:
        raise ValidationError(f"{model.slug}: " + " ".join(p.message for p in problems), problems=problems)
    return values


def prepare_run(model: Model, params: dict[str, Any], *, callback_url: str | None = None) -> PreparedRun:
    """Validate `params` against `model` and encode them for /Run. Raises ValidationError listing every problem."""
    by_id = {p.id: p for p in model.parameters}
    problems: list[FieldProblem] = []
    fields: list[tuple[str, Any]] = []  # (name, scalar or URL list) in order
    uploads: list[tuple[str, FileInput]] = []
    summary: dict[str, Any] = {}
    given = {k: v for k, v in params.items() if v is not None}

    for name, value in given.items():
        param = by_id.get(name)
        if param is None:
            if name in ALWAYS_ALLOWED:
                fields.append((name, value))
                summary[name] = value
                continue
            close = difflib.get_close_matches(name, list(by_id), n=1, cutoff=0.6)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            problems.append(FieldProblem(name, f"{model.slug} has no parameter {name!r}.{hint}"))
            continue
        if param.is_file:
            _file_param(model, param, value, fields, uploads, summary, problems)
            continue
        coerced = _coerce(param, value, problems)
        fields.append((name, coerced))
        summary[name] = coerced

    supplied = {name for name, _ in fields} | {name for name, _ in uploads}
    for param in model.parameters:
        if not param.required or param.id in supplied:
            continue
        companion = url_companion(model, param) if param.is_file else None
        if companion and companion in supplied:
            continue
        if not param.is_file and param.default not in (None, "", []):
            # Servers differ on whether a required input may be left to its default: send it.
            value = _coerce(param, param.default, problems)
            fields.append((param.id, value))
            summary[param.id] = value
            continue
        problems.append(FieldProblem(param.id, f"{param.id!r} is required ({param.describe()})."))

    if callback_url:
        fields.append(("callbackUrl", callback_url))
        summary["callbackUrl"] = callback_url
    if problems:
        raise ValidationError(
            f"{model.slug}: " + " ".join(p.message for p in problems),
            problems=problems,
            hint=f"Nothing was sent or charged. `Wiro().model({model.slug!r})` shows every parameter.",
        )

    if not uploads:
        return PreparedRun(json=dict(fields), data=None, files=None, summary=summary)
    data: list[tuple[str, str]] = []
    for name, value in fields:
        for item in value if isinstance(value, list) else [value]:
            data.append((name, _form_value(item)))
    files = [(name, (f.name, f.body(), f.content_type)) for name, f in uploads]
    return PreparedRun(json=None, data=data, files=files, summary=summary)


def _form_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _file_param(
    model: Model,
    param: Parameter,
    value: Any,
    fields: list[tuple[str, Any]],
    uploads: list[tuple[str, FileInput]],
    summary: dict[str, Any],
    problems: list[FieldProblem],
) -> None:
    items = list(value) if isinstance(value, (list, tuple)) else [value]
    if param.type == "fileinput" and len(items) > 1:
        problems.append(FieldProblem(param.id, f"{param.id!r} takes one file or URL; got {len(items)}."))
        return
    if param.max_files and len(items) > param.max_files:
        problems.append(FieldProblem(param.id, f"{param.id!r} takes at most {param.max_files} files/URLs; got {len(items)}."))
        return
    urls = [str(v).strip() for v in items if is_url(v)]
    local: list[FileInput] = []
    for item in items:
        if is_url(item):
            continue
        try:
            local.append(read_file_input(item, param.id))
        except ValidationError as exc:
            problems.append(FieldProblem(param.id, exc.message))
    summary[param.id] = [u for u in urls] + [f"{f.name} (sha256:{f.sha256[:16]})" for f in local]
    if param.type == "fileinput" and not urls:
        summary[param.id] = summary[param.id][0] if summary[param.id] else None
    uploads.extend((param.id, f) for f in local)
    if not urls:
        return
    if param.type == "combinefileinput":
        # One field takes files and URLs alike; JSON takes a URL array.
        fields.append((param.id, urls))
        return
    companion = url_companion(model, param) or f"{param.id}Url"
    joined = ",".join(urls) if param.type == "multifileinput" else urls[0]
    fields.append((companion, joined))
