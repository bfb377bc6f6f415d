"""Dify-compatible chat: files, without I/O to the chat server.

Dify file dicts ↔ `ChatFile`; Dify's file `type` for a name / mime type; what
`files=` entries become on the wire (an http(s) URL is sent as remote_url, a
path, bytes or file object is read here and uploaded by the client); relative
file URLs resolved against the API root (base URL minus `/v1`).
"""

from __future__ import annotations

import asyncio
import mimetypes
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._dify_http import _bad_arg
from ._messages import ChatFile

# Dify's "document" file type (anything else that is not image/audio/video is "custom").
_DOCUMENT_EXTENSIONS = frozenset(
    {"txt", "md", "mdx", "markdown", "pdf", "html", "htm", "xlsx", "xls", "doc", "docx", "csv", "eml", "msg"}
    | {"pptx", "ppt", "xml", "epub"}
)


def _api_root(base_url: str) -> str:
    """The origin file URLs are relative to: base URL minus a trailing `/v1`."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def _resolve(url: Any, root: str) -> str:
    if not url or not isinstance(url, str):
        return ""
    if re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):  # http:, https:, data:, ...
        return url
    if url.startswith("//"):
        scheme = root.split(":", 1)[0] if ":" in root else "https"
        return f"{scheme}:{url}"
    return root.rstrip("/") + ("" if url.startswith("/") else "/") + url


def _filename_from_url(url: str) -> str:
    path = urlsplit(url).path.rstrip("/")
    return path.rsplit("/", 1)[-1]


def _sniff(data: bytes) -> tuple[str, str]:
    """(extension, mime type) of some bytes, from their first bytes."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png", "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg", "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return ".gif", "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp", "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav", "audio/wav"
    if head[:3] == b"ID3" or head[:2] in (b"\xff\xfb", b"\xff\xf3"):
        return ".mp3", "audio/mpeg"
    if head[4:8] == b"ftyp":
        return ".mp4", "video/mp4"
    if head[:4] == b"%PDF":
        return ".pdf", "application/pdf"
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return ".bin", "application/octet-stream"
    return ".txt", "text/plain"


def _file_type(mime: str, filename: str) -> str:
    """Dify's file `type` for a mime type / file name: image, audio, video, document or custom."""
    mime = (mime or "").lower()
    for kind in ("image", "audio", "video"):
        if mime.startswith(kind + "/"):
            return kind
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if ext in _DOCUMENT_EXTENSIONS or mime in ("application/pdf", "text/plain", "text/markdown", "text/csv"):
        return "document"
    return "custom"


def _chat_file(data: dict[str, Any], root: str, *, default_owner: str) -> ChatFile:
    url = _resolve(data.get("url") or data.get("remote_url"), root)
    owner = data.get("belongs_to")
    if not owner:
        method = data.get("transfer_method")
        owner = "assistant" if method == "tool_file" else default_owner if not method else "user"
    return ChatFile(
        id=str(data.get("related_id") or data.get("id") or data.get("upload_file_id") or ""),
        type=str(data.get("type") or ""),
        url=url,
        filename=str(data.get("filename") or data.get("name") or _filename_from_url(url)),
        mime_type=str(data.get("mime_type") or ""),
        belongs_to=str(owner),
    )


def _remote_file(url: str) -> dict[str, Any]:
    """The `files` entry for an http(s) URL: the server fetches it (remote_url)."""
    name = _filename_from_url(url)
    mime = mimetypes.guess_type(name)[0] or ""
    kind = _file_type(mime, name) if mime or "." in name else "image"
    return {"type": kind, "transfer_method": "remote_url", "url": url}


async def _read_source(source: Any, filename: str | None, mime: str | None) -> tuple[bytes, str, str]:
    """(content, filename, mime type) of a path, bytes or file object to upload."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        content = bytes(source)
        ext, sniffed = _sniff(content)
        name = filename or f"upload{ext}"
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise _bad_arg(
                f"File not found: {str(path)!r}.",
                hint="Pass an existing file path, bytes, a file object, or an http(s) URL.",
            )
        content = await asyncio.to_thread(path.read_bytes)
        name = filename or path.name
        sniffed = _sniff(content)[1]
    elif hasattr(source, "read"):
        data = source.read()
        content = data.encode() if isinstance(data, str) else bytes(data)
        ext, sniffed = _sniff(content)
        name = filename or os.path.basename(str(getattr(source, "name", "") or "")) or f"upload{ext}"
    else:
        raise _bad_arg(
            f"Cannot send a {type(source).__name__} as a file.",
            hint="Pass a path, bytes, a file object, an http(s) URL, or a Dify file dict.",
        )
    guessed = mimetypes.guess_type(name)[0]
    return content, name, mime or guessed or sniffed
