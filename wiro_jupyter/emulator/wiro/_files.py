"""Stored files: inputs, uploads, outputs and covers; how they are served (ranges, streaming); File/* routes.

Files are served at /files/<folder>/<name> (uploads, outputs, covers) and /v1/File/<token>/<name>
(a run's uploaded inputs, Wiro §5). References like "Wiro §5" are sections of docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import mimetypes
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from . import _media
from ._auth import Project
from ._envelope import close_uploads, fail, ok, read_body
from ._ids import cdn_folder, hex_id, random_token, unix_now
from ._models import InputFile

MAX_UPLOAD_BYTES = 100 * 1024 * 1024  # File/Upload limit (Wiro §7)
# What may go out as a Content-Type header; anything else a model declared is served as bytes.
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*")


@dataclass
class StoredFile:
    name: str
    content_type: str
    size: int
    data: bytes | None = None
    blob_seed: str | None = None  # streamed from a generator, never held in memory
    render: Callable[[], bytes] | None = None  # rendered on first GET (catalogue covers)
    expires_at: float | None = None


class FileStore:
    """Inputs, uploads and outputs, served at /files/<folder>/<name> and /v1/File/<token>/<name>."""

    def __init__(self) -> None:
        self._files: dict[tuple[str, str], StoredFile] = {}
        self._next_input = 6060136

    def put(self, folder: str, stored: StoredFile) -> None:
        self._files[(folder, stored.name)] = stored

    def put_unique(self, folder: str, stored: StoredFile) -> str:
        """Store under a URL-safe name not yet used in `folder` (`stored.name` becomes it); returns the name.

        A model may declare any name, duplicates and `../` included: those stay in the task's
        outputs, while the URL path is always one the store chose.
        """
        base = safe_name(stored.name)
        name, n = base, 1
        while (folder, name) in self._files:
            name, n = f"{n}-{base}", n + 1
        stored.name = name
        self.put(folder, stored)
        return name

    def get(self, folder: str, name: str) -> StoredFile | None:
        stored = self._files.get((folder, name))
        if stored is not None and stored.expires_at is not None and time.time() > stored.expires_at:
            return None
        return stored

    def remove(self, folder: str, name: str) -> None:
        self._files.pop((folder, name), None)

    def add_cover(self, name: str, title: str) -> None:
        self.put("covers", StoredFile(name, "image/jpeg", 0, render=lambda: _media.cover_image(title)))

    # run inputs

    async def store_input(self, folder: str, pid: str, upload: UploadFile, base_url: str) -> InputFile:
        data = await upload.read()
        content_type = upload.content_type or mimetypes.guess_type(upload.filename or "")[0] or ""
        ext = (safe_name(upload.filename or "").rpartition(".")[2] if "." in (upload.filename or "") else "")
        ext = ext or (mimetypes.guess_extension(content_type) or ".bin").lstrip(".")
        name = f"{pid}-{self._next_input}.{ext.lower()}"  # like …/v1/File/<token>/inputImage-6060136.png (Wiro §5)
        self._next_input += 1
        self.put(folder, StoredFile(name, content_type or "application/octet-stream", len(data), data=data))
        return InputFile(f"{base_url}/v1/File/{folder}/{name}", name, data)

    def input_from_url(self, url: str, base_url: str) -> InputFile:
        """URLs into the emulator are read locally; any other URL is only recorded (no network)."""
        parsed = urllib.parse.urlsplit(url)
        name = safe_name(parsed.path, "input")
        ours = urllib.parse.urlsplit(base_url)
        if parsed.port == ours.port and (parsed.hostname or "") in ("127.0.0.1", "localhost", ours.hostname):
            parts = parsed.path.strip("/").split("/")
            if (len(parts) == 3 and parts[0] == "files") or (len(parts) == 4 and parts[:2] == ["v1", "File"]):
                stored = self.get(parts[-2], urllib.parse.unquote(parts[-1]))
                if stored is not None and stored.data is not None:
                    return InputFile(url, name, stored.data)
        return InputFile(url, name, None)

    # serving

    async def serve(self, request: Request) -> Response:
        folder, name = request.path_params["folder"], request.path_params["name"]
        stored = self.get(folder, name)
        if stored is None:
            return PlainTextResponse("Not Found", 404)
        if stored.data is None and stored.render is not None:
            stored.data = await asyncio.to_thread(stored.render)
            stored.size = len(stored.data)
        total = stored.size
        start, end, status = 0, total, 200
        content_type = stored.content_type if _MIME.fullmatch(stored.content_type) else "application/octet-stream"
        headers = {"content-type": content_type, "accept-ranges": "bytes"}
        wanted = request.headers.get("range", "")
        match = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", wanted) if wanted else None
        if match and (match.group(1) or match.group(2)):
            if match.group(1):
                start = int(match.group(1))
                end = min(total, int(match.group(2)) + 1) if match.group(2) else total
            else:
                start = max(0, total - int(match.group(2)))
            if start >= total or start >= end:
                return Response(b"", 416, headers={"content-range": f"bytes */{total}"})
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{total}"
        headers["content-length"] = str(end - start)
        if request.method == "HEAD":
            return Response(b"", status, headers=headers)
        if stored.data is not None:
            return Response(stored.data[start:end], status, headers=headers)
        assert stored.blob_seed is not None
        # Big outputs stream from a generator: constant memory whatever the size.
        return StreamingResponse(_media.blob_byte_range(stored.blob_seed, start, end), status, headers=headers)


def safe_name(name: str, fallback: str = "file") -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return name[:120] or fallback


# --- File/* routes ---------------------------------------------------------------------------------


class FileHost(Protocol):
    """What the File/* routes need from the emulator's state."""

    @property
    def files(self) -> FileStore: ...
    @property
    def folders(self) -> dict[str, dict[str, Any]]: ...
    @property
    def max_upload_bytes(self) -> int: ...
    @property
    def base_url(self) -> str: ...


async def folder_create(state: FileHost, project: Project, body: dict[str, Any]) -> Response:
    name = str(body.get("name") or "").strip()
    if not name:
        return fail(0, "Request parameter [name] required")
    parent = body.get("parentid", body.get("parentId")) or project.root_folder
    folder = {"id": hex_id(), "name": name, "parentid": str(parent), "size": "0", "contenttype": "",
              "addedtime": unix_now()}
    state.folders[folder["id"]] = folder
    return ok(list=[dict(folder)])


async def file_upload(state: FileHost, request: Request, project: Project) -> Response:
    body, files, error = await read_body(request)
    if error is not None:
        return error
    uploads = files.get("file") or []
    try:
        if not uploads:
            return fail(0, "Request files [file] required")
        upload = uploads[0]
        if (upload.size or 0) > state.max_upload_bytes:
            return fail(0, f"File size exceeds the limit of {state.max_upload_bytes // (1024 * 1024)} MB.")
        data = await upload.read()
    finally:
        await close_uploads(files)
    name = safe_name(upload.filename or "", "upload.bin")
    content_type = upload.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    folder = cdn_folder()
    state.files.put(folder, StoredFile(name, content_type, len(data), data=data))
    parent = body.get("folderid", body.get("folderId")) or project.root_folder
    return ok(list=[{"id": hex_id(), "name": name, "contenttype": content_type, "size": str(len(data)),
                     "parentid": str(parent), "url": f"{state.base_url}/files/{folder}/{name}",
                     "addedtime": unix_now(), "accesskey": random_token()}])
