"""Dify's error answers (`{code, message, status}`, Dify §5), and the pages a proxy in front of it sends.

References like "Dify §5" are sections of docs/protocol.md.
"""

from __future__ import annotations

from starlette.responses import HTMLResponse, JSONResponse, Response


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "status": status}, status_code=status, headers=headers)


def unauthorized(message: str = "Access token is invalid") -> JSONResponse:
    return error(401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="api"'})


def http_fault(status: int, headers: dict[str, str]) -> Response:
    """An HTTP error as Dify (or the proxy in front of it) sends it; played by `faults.http_error`."""
    if status == 429:
        return error(429, "too_many_requests",
                     "Too many requests. Please try again later. The current maximum concurrent requests allowed is 1.",
                     headers)
    if status in (502, 503, 504):
        reason = {502: "Bad Gateway", 503: "Service Temporarily Unavailable", 504: "Gateway Time-out"}[status]
        page = (
            f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
            f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
        )
        return HTMLResponse(page, status_code=status, headers=headers)
    if status >= 500:
        return error(status, "internal_server_error",
                     "The server encountered an internal error and was unable to complete your request. "
                     "Either the server is overloaded or there is an error in the application.", headers)
    return error(status, "bad_request", "Injected fault.", headers)
