"""Output files of a task: download (streamed, capped, safe names), open, display.

Downloads go through the HTTP core of the client that ran the task (`_transport`):
they stream to a temporary file beside the destination and are renamed into place
when complete, so memory stays flat whatever the size and a broken transfer never
leaves a truncated file under the final name. Names come from the server and are
not trusted: only the last path component survives, with anything but a
conservative character set replaced; two outputs with the same name get distinct,
deterministic names (`0.png`, `0-2.png`).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from . import _render
from ._exceptions import WiroError
from ._fields import to_number, to_text
from ._mime import output_kind
from ._transport import shared_core

if TYPE_CHECKING:
    from PIL.Image import Image

    from ._transport import HttpCore

DEFAULT_MAX_BYTES = 2 * 1024**3  # raise with max_bytes= for bigger outputs
INLINE_LIMIT = 8 * 1024**2  # above this, displays link to the file instead of embedding it


def safe_filename(name: str, fallback: str = "output") -> str:
    """Last path component only; no traversal, no hidden files, no control characters."""
    name = unquote(name or "").replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .")
    return name[:120] or fallback


def unique_names(names: list[str]) -> list[str]:
    """Safe file names for `names`, in order, none twice: the second `0.png` becomes `0-2.png`."""
    taken: set[str] = set()
    result = []
    for name in names:
        candidate = base = safe_filename(name)
        stem, dot, suffix = base.rpartition(".") if "." in base.strip(".") else (base, "", "")
        number = 1
        while candidate.lower() in taken:
            number += 1
            candidate = f"{stem}-{number}{dot}{suffix}"
        taken.add(candidate.lower())
        result.append(candidate)
    return result


@dataclass
class Output:
    """One file (or raw LLM content) a task produced."""

    name: str
    url: str
    content_type: str = ""
    size: int | None = None
    content: Any = None  # raw LLM outputs carry their content inline
    path: Path | None = None  # where it was saved, once saved
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    http: HttpCore | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], *, http: HttpCore | None = None) -> Output:
        url = to_text(raw.get("url"))
        name = to_text(raw.get("name")) or (Path(urlparse(url).path).name if url else "output")
        size = to_number(raw.get("size"))
        return cls(
            name=name,
            url=url,
            content_type=to_text(raw.get("contenttype") or raw.get("content_type")),
            size=int(size) if size is not None else None,
            content=raw.get("content"),
            raw=raw,
            http=http,
        )

    @property
    def kind(self) -> str:
        return output_kind(self.content_type, self.name)

    def save(self, directory: str | os.PathLike[str] = ".", *, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
        from ._loop import run_sync

        return run_sync(self.asave(directory, max_bytes=max_bytes))

    async def asave(
        self, directory: str | os.PathLike[str] = ".", *, max_bytes: int = DEFAULT_MAX_BYTES, filename: str | None = None
    ) -> Path:
        """Save into `directory` under `filename` (default: the output's safe name); returns the path."""
        target_dir = Path(directory).expanduser()
        if target_dir.exists() and not target_dir.is_dir():
            raise WiroError(f"Cannot save into {str(target_dir)!r}: it is a file, not a directory.", hint="Pick a directory.")
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / safe_filename(filename or self.name)
        if self.kind == "raw" and target.suffix == "":
            target = target.with_suffix(".json")
        if target.is_dir():
            raise WiroError(
                f"Cannot save {self.name!r} as {str(target)!r}: a directory of that name is in the way.",
                hint="Save into another directory, or move that one.",
            )
        if self.kind == "raw":
            target.write_text(json.dumps(self.content, ensure_ascii=False, indent=2))
        else:
            await (self.http or shared_core()).download(self.url, target, max_bytes=max_bytes)
        self.path = target
        return target

    def read(self, *, max_bytes: int = INLINE_LIMIT * 8) -> bytes:
        """The file's bytes (from disk when saved). For big files prefer save()."""
        if self.path and self.path.exists():
            return self.path.read_bytes()
        if self.kind == "raw":
            return json.dumps(self.content, ensure_ascii=False).encode()
        from ._loop import run_sync

        return run_sync((self.http or shared_core()).fetch(self.url, max_bytes=max_bytes))

    def open(self) -> Image:
        """A PIL image, opened lazily, with Pillow's decompression-bomb guard left on."""
        from PIL import Image as PILImage

        source: Any = self.path if self.path and self.path.exists() else io.BytesIO(self.read())
        try:
            image = PILImage.open(source)
        except PILImage.DecompressionBombError as exc:
            raise WiroError(
                f"Output {self.name!r} is larger than Pillow's safety limit ({exc}).",
                hint="Save it with output.save() and open it deliberately if you trust it.",
            ) from None
        return image

    def __repr__(self) -> str:
        size = f", {self.size:,} bytes" if self.size else ""
        return f"<Output {self.name} ({self.content_type or self.kind}{size})>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return _render.output_bundle(self)
