"""Output files of a task: download (streamed, capped, safe names), open, display.

A download streams to a temporary file beside its destination and is renamed
into place when complete, so memory stays flat whatever the size and a broken
transfer never leaves a truncated file under the final name. Names come from
the server and are not trusted: only the last path component survives, with
anything but a conservative character set replaced.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from ._exceptions import ValidationError, WiroConnectionError, WiroError
from ._models import output_kind, to_number

if TYPE_CHECKING:
    from PIL.Image import Image

DEFAULT_MAX_BYTES = 2 * 1024**3  # raise with max_bytes= for bigger outputs
INLINE_LIMIT = 8 * 1024**2  # above this, displays link to the file instead of embedding it


def safe_filename(name: str, fallback: str = "output") -> str:
    """Last path component only; no traversal, no hidden files, no control characters."""
    name = unquote(name or "").replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9._ -]", "_", name).strip(" .")
    return name[:120] or fallback


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

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> Output:
        url = str(raw.get("url") or "")
        name = str(raw.get("name") or "") or (Path(urlparse(url).path).name if url else "output")
        size = to_number(raw.get("size"))
        return cls(
            name=name,
            url=url,
            content_type=str(raw.get("contenttype") or raw.get("content_type") or ""),
            size=int(size) if size is not None else None,
            content=raw.get("content"),
            raw=raw,
        )

    @property
    def kind(self) -> str:
        return output_kind(self.content_type, self.name)

    def save(self, directory: str | os.PathLike[str] = ".", *, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
        from ._loop import run_sync

        return run_sync(self.asave(directory, max_bytes=max_bytes))

    async def asave(self, directory: str | os.PathLike[str] = ".", *, max_bytes: int = DEFAULT_MAX_BYTES) -> Path:
        target_dir = Path(directory).expanduser()
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / safe_filename(self.name)
        if self.kind == "raw":
            target = target.with_suffix(".json") if target.suffix == "" else target
            target.write_text(json.dumps(self.content, ensure_ascii=False, indent=2))
        else:
            await download(self.url, target, max_bytes=max_bytes)
        self.path = target
        return target

    def read(self, *, max_bytes: int = INLINE_LIMIT * 8) -> bytes:
        """The file's bytes (from disk when saved). For big files prefer save()."""
        if self.path and self.path.exists():
            return self.path.read_bytes()
        if self.kind == "raw":
            return json.dumps(self.content, ensure_ascii=False).encode()
        from ._loop import run_sync

        return run_sync(fetch_bytes(self.url, max_bytes=max_bytes))

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
        return output_bundle(self)


def output_bundle(output: Output) -> dict[str, Any]:
    """A static mimebundle (HTML with embedded data, PNG for images, text always)."""
    text = repr(output)
    bundle: dict[str, Any] = {"text/plain": text}
    kind = output.kind
    link = f'<a href="{html.escape(output.url)}" target="_blank">{html.escape(output.name)}</a>'
    too_big = output.size is not None and output.size > INLINE_LIMIT
    try:
        if kind == "image" and not too_big:
            data = output.read()
            mime = output.content_type if output.content_type.startswith("image/") else "image/png"
            if mime == "image/png":
                bundle["image/png"] = base64.b64encode(data).decode()
            b64 = base64.b64encode(data).decode()
            bundle["text/html"] = f'<img src="data:{mime};base64,{b64}" alt="{html.escape(output.name)}" style="max-width:100%"/>'
        elif kind == "audio" and not too_big:
            b64 = base64.b64encode(output.read()).decode()
            mime = output.content_type or "audio/wav"
            bundle["text/html"] = f'<audio controls src="data:{mime};base64,{b64}"></audio><div>{link}</div>'
        elif kind == "video" and not too_big:
            data = output.read()
            b64 = base64.b64encode(data).decode()
            mime = output.content_type or "video/mp4"
            if mime.startswith("image/"):
                bundle["text/html"] = f'<img src="data:{mime};base64,{b64}" style="max-width:100%"/>'
            else:
                bundle["text/html"] = f'<video controls src="data:{mime};base64,{b64}" style="max-width:100%"></video>'
        elif kind in ("text", "json") and not too_big:
            body = output.read().decode("utf-8", "replace")
            bundle["text/plain"] = body
            bundle["text/html"] = f"<pre>{html.escape(body[:20000])}</pre>"
        else:
            bundle["text/html"] = link
    except WiroError:
        bundle["text/html"] = link  # the file expired or the network is gone: still show where it was
    return bundle


async def fetch_bytes(url: str, *, max_bytes: int) -> bytes:
    import httpx

    chunks: list[bytes] = []
    total = 0
    try:
        async with httpx.AsyncClient(timeout=60, follow_redirects=True) as client, client.stream("GET", url) as r:
            if r.status_code >= 400:
                raise WiroError(f"Downloading {url} failed with HTTP {r.status_code}.", hint=_EXPIRED_HINT)
            async for chunk in r.aiter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise ValidationError(
                        f"{url} is larger than {max_bytes:,} bytes.", hint="Use output.save(directory) instead."
                    )
                chunks.append(chunk)
    except httpx.HTTPError as exc:
        raise WiroConnectionError(f"Downloading {url} failed ({type(exc).__name__}).") from None
    return b"".join(chunks)


_EXPIRED_HINT = "Output URLs expire after a while; if it is gone, run the task again."


async def download(url: str, target: Path, *, max_bytes: int = DEFAULT_MAX_BYTES, chunk_size: int = 1 << 16) -> Path:
    """Stream `url` into `target` (constant memory; atomic rename; size cap)."""
    import httpx

    if not url:
        raise WiroError("This output has no URL to download.")
    fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    tmp = Path(tmp_name)
    total = 0
    try:
        with os.fdopen(fd, "wb") as sink:
            async with (
                httpx.AsyncClient(timeout=httpx.Timeout(60, connect=10), follow_redirects=True) as client,
                client.stream("GET", url) as response,
            ):
                if response.status_code >= 400:
                    raise WiroError(f"Downloading {url} failed with HTTP {response.status_code}.", hint=_EXPIRED_HINT)
                declared = to_number(response.headers.get("content-length"))
                if declared is not None and declared > max_bytes:
                    raise ValidationError(
                        f"{target.name} is {int(declared):,} bytes, over the {max_bytes:,}-byte cap.",
                        hint="Pass a larger max_bytes= to save() if you want it.",
                    )
                async for chunk in response.aiter_bytes(chunk_size):
                    total += len(chunk)
                    if total > max_bytes:
                        raise ValidationError(
                            f"{target.name} grew past the {max_bytes:,}-byte cap while downloading.",
                            hint="Pass a larger max_bytes= to save() if you want it.",
                        )
                    sink.write(chunk)
        os.replace(tmp, target)
    except httpx.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise WiroConnectionError(f"Downloading {target.name} failed ({type(exc).__name__}).") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
