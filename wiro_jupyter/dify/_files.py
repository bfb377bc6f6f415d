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
from typing import Any
from urllib.parse import urlsplit

from .._params import read_file_input
from ..chat._messages import ChatFile

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
    """(content, filename, mime type) of a path, bytes or file object to upload (the client's own reader).

    A path is read in a thread, off the chat's loop: the whole file, since the upload sends bytes."""

    def read() -> tuple[bytes, str, str]:
        data = read_file_input(source, "upload", what="the upload")
        return data.content, data.name, data.content_type

    if isinstance(source, (str, os.PathLike)):
        content, found, found_type = await asyncio.to_thread(read)
    else:
        content, found, found_type = read()
    name = filename or found
    return content, name, mime or (mimetypes.guess_type(name)[0] if filename else None) or found_type
