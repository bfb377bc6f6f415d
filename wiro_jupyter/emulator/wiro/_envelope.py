"""The JSON envelope of every REST answer (Wiro §2), its error texts, reading a request body, and the
error pages a proxy in front of the API sends (played by `faults.http_error`).

References like "Wiro §2" are sections of docs/protocol.md.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

# The service's own error texts (Wiro §1, §2).
NOT_FOUNDED = "Project authorization is not founded."
NOT_VALID = "Project authorization is not valid."
SIGNATURE_REQUIRED = "Project requires signature authentication. x-signature and x-nonce headers are required."
BAD_URL = "Error parsing url."
INVALID = "Request parameters are invalid."
NO_TASK = "There is no task yet."


def ok(status: int = 200, **payload: Any) -> JSONResponse:
    # Flat envelope, no `data` wrapper (Wiro §2).
    return JSONResponse({"result": True, "errors": [], **payload}, status_code=status)


def fail(code: int, message: str, status: int = 200) -> JSONResponse:
    # Business errors are HTTP 200 + result:false; only auth (401) and bad routes (404) differ (Wiro §2).
    return JSONResponse({"result": False, "errors": [{"code": code, "message": message}]}, status_code=status)


def http_fault(status: int, headers: dict[str, str]) -> Response:
    """An HTTP error as the Wiro API (or the proxy in front of it) sends it."""
    if status == 429:
        return JSONResponse({"result": False, "errors": [{"code": 0, "message": "Too many requests"}]}, status,
                            headers=headers)
    if status >= 502:
        # What a proxy in front of the API sends: HTML, not the JSON envelope.
        title = {502: "502 Bad Gateway", 503: "503 Service Temporarily Unavailable",
                 504: "504 Gateway Time-out"}.get(status, f"{status} Error")
        html = (f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>"
                "\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
        return HTMLResponse(html, status, headers=headers)
    if status >= 500:
        return PlainTextResponse("Internal Server Error", status, headers=headers)
    return JSONResponse({"result": False, "errors": [{"code": 0, "message": f"HTTP {status}"}]}, status,
                        headers=headers)


async def read_body(request: Request) -> tuple[dict[str, Any], dict[str, list[UploadFile]], Response | None]:
    """A JSON or form body as (fields, uploads by field, error answer or None)."""
    content_type = request.headers.get("content-type", "").lower()
    fields: dict[str, list[Any]] = {}
    files: dict[str, list[UploadFile]] = {}
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        try:
            form = await request.form(max_files=100, max_fields=1000, max_part_size=16 * 1024 * 1024)
        except HTTPException:
            return {}, {}, fail(0, INVALID)
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                files.setdefault(key, []).append(value)
            else:
                fields.setdefault(key, []).append(value)
        return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}, files, None
    raw = await request.body()
    if not raw.strip():
        return {}, {}, None
    try:
        body = json.loads(raw)
    except ValueError:
        return {}, {}, fail(0, INVALID)
    if not isinstance(body, dict):
        return {}, {}, fail(0, INVALID)
    return body, {}, None


async def close_uploads(files: dict[str, list[UploadFile]]) -> None:
    for uploads in files.values():
        for upload in uploads:
            await upload.close()
