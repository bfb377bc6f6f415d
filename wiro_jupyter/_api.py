"""The Wiro REST API over the HTTP core: URLs, auth headers and the envelope.

Wiro answers every call with a flat JSON envelope, `{"result": bool, "errors": [{code,
message}], …payload}`; business errors come as HTTP 200 with `result: false`, auth
failures as 401, and proxies in front of it add 429/5xx pages (docs/protocol.md, Wiro §2).
Every one of those becomes an exception of our hierarchy here, so nothing above this
module sees a raw response. Retries, redirects and size caps are the core's
(`_transport.py`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ._auth import auth_headers
from ._config import Settings
from ._exceptions import (
    AuthenticationError,
    FieldProblem,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WiroError,
    redact,
)
from ._transport import HttpCore, Service, error_class, retry_after

if TYPE_CHECKING:
    import httpx

#: Wiro's error code for "over the account's concurrent-task limit": nothing was started.
CONCURRENCY_LIMIT = "96"

RUN_UNSURE_HINT = (
    "It may have started a task (and may be charged): wiro_jupyter.tasks() lists it as submit_unknown; "
    "check your Wiro dashboard (or Task/List) before running it again, so you are not charged twice."
)


def error_from_envelope(errors: Any, *, status_code: int | None = None, path: str = "") -> WiroError:
    """Map Wiro's `errors: [{code, message}]` to our hierarchy (codes: docs/protocol.md, Wiro §2)."""
    items = errors if isinstance(errors, list) and errors else [{"code": None, "message": "Request failed."}]
    first = items[0] if isinstance(items[0], dict) else {"message": str(items[0])}
    code = first.get("code")
    message = str(first.get("message") or "Request failed.")
    messages = [str(e.get("message")) if isinstance(e, dict) else str(e) for e in items]
    code_str = str(code) if code is not None else ""
    lowered = message.lower()
    if status_code in (401, 403) or code_str in ("98", "99") or "authorization" in lowered or "signature" in lowered:
        return AuthenticationError(f"The Wiro API refused the credentials: {message}", code=code, status_code=status_code)
    if code_str == "1" or "not-exist" in lowered or "not exist" in lowered or "there is no task" in lowered:
        if "slug-owner-project" in lowered or "tool-not-accessible" in lowered:
            return NotFoundError(f"No such model ({message}).", code=code, status_code=status_code)
        if "task" in lowered or path.startswith("Task/"):
            return NotFoundError(
                f"The Wiro API says: {message}",
                hint="Check the task id or token; wiro_jupyter.tasks() lists the tasks this machine started.",
                code=code,
                status_code=status_code,
            )
        return NotFoundError(f"The Wiro API says: {message}", code=code, status_code=status_code)
    if code_str == CONCURRENCY_LIMIT:
        return RateLimitError(
            f"The Wiro API says: {message}",
            hint="Nothing was started. Wait for a running task to finish (or raise your balance), then run again.",
            code=code,
            status_code=status_code,
        )
    if code_str == "97":
        return WiroError(
            f"The Wiro API says: {message}",
            hint="Add credit to your Wiro account (dashboard → billing), then run again.",
            code=code,
            status_code=status_code,
        )
    if code_str == "0" or "request parameter" in lowered or "request files" in lowered or "invalid" in lowered:
        return ValidationError(
            "The Wiro API rejected the request: " + "; ".join(messages),
            problems=[FieldProblem(_field_in(m), m) for m in messages],
            hint="Nothing was charged. Fix the inputs and run again.",
            code=code,
            status_code=status_code,
        )
    return WiroError(f"The Wiro API says: {'; '.join(messages)}", code=code, status_code=status_code)


def _field_in(message: str) -> str:
    """The parameter a server validation message names: "Request parameter [prompt] required" -> "prompt"."""
    start, end = message.find("["), message.find("]")
    return message[start + 1 : end] if 0 <= start < end else ""


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _http_error(response: httpx.Response, body: bytes) -> WiroError:
    """A non-2xx answer: by its status (a proxy may answer in HTML), with the envelope's words when there are some."""
    status, headers = response.status_code, response.headers
    payload = _decode(body)
    text = " ".join(body.decode("utf-8", "replace").split())[:160]
    path = response.url.path.split("/v1/", 1)[-1]
    if status == 404:
        return NotFoundError(
            f"The Wiro API has no route {path} (HTTP 404).",
            hint="Check WIRO_API_URL; it should end in /v1 (default https://api.wiro.ai/v1).",
            status_code=status,
        )
    if status == 429:
        wait = retry_after(headers.get("retry-after"))
        return RateLimitError(
            f"The Wiro API is rate limiting requests (HTTP 429 on {path}).",
            retry_after=wait,
            hint=f"Wait {wait:g} s and try again." if wait else None,
            status_code=status,
        )
    if status >= 500:
        return ServerError(f"The Wiro API failed with HTTP {status} on {path}: {redact(text)}", status_code=status)
    if isinstance(payload, dict) and payload.get("errors"):
        return error_from_envelope(payload["errors"], status_code=status, path=path)
    error = error_from_envelope([{"code": None, "message": f"HTTP {status}" + (f": {text}" if text else "")}], status_code=status)
    if isinstance(error, error_class(status)):
        return error
    return error_class(status)(error.message, status_code=status)


def _over_limit(body: bytes) -> bool:
    """A Run answer that says the account's concurrent-task limit is reached: nothing was started."""
    payload = _decode(body)
    if not isinstance(payload, dict) or payload.get("result") is not False:
        return False
    errors = payload.get("errors")
    return isinstance(errors, list) and any(isinstance(e, dict) and str(e.get("code")) == CONCURRENCY_LIMIT for e in errors)


WIRO = Service(name="the Wiro API", error=_http_error, url_hint="WIRO_API_URL (or api_url=)")
WIRO_RUN = Service(name="the Wiro API", error=_http_error, refused=_over_limit, url_hint="WIRO_API_URL (or api_url=)")


class WiroApi:
    """POST a Wiro API path and get the successful envelope back, or one of our exceptions."""

    def __init__(self, settings: Settings, http: HttpCore) -> None:
        self.settings = settings
        self.http = http

    def _require_key(self) -> None:
        if not self.settings.api_key:
            raise AuthenticationError(
                "No Wiro API key is set.",
                hint="Set WIRO_API_KEY (and WIRO_API_SECRET for a signature project), pass api_key= to Wiro(), "
                "or call wiro_jupyter.use_emulator() to try everything locally without an account.",
            )

    def _headers(self) -> dict[str, str]:
        return auth_headers(self.settings.api_key or "", self.settings.api_secret)  # a fresh nonce per attempt

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: dict[str, Any] | list[tuple[str, str]] | None = None,
        files: list[tuple[str, tuple[str, Any, str]]] | None = None,
        idempotent: bool = True,
        starts_task: bool = False,
    ) -> dict[str, Any]:
        """POST `path` (relative to the API URL); return the successful envelope.

        `starts_task` marks a Run: sent once (see `_transport`), and retried after Wiro's
        "concurrent task limit" answer, which starts nothing.
        """
        self._require_key()
        kwargs: dict[str, Any] = (
            {"data": _form_dict(data), "files": files} if files is not None or data is not None else {"json": json or {}}
        )
        answer = await self.http.request(
            "POST",
            f"{self.settings.api_url}/{path}",
            service=WIRO_RUN if starts_task else WIRO,
            headers=self._headers,
            idempotent=idempotent and not starts_task,
            unsure_hint=RUN_UNSURE_HINT if starts_task else "",
            **kwargs,
        )
        payload = _decode(answer.content)
        if not isinstance(payload, dict):
            shown = redact(answer.content[:200].decode("utf-8", "replace"))
            what = "something that is not JSON" if payload is None else "JSON that is not an object"
            error = ServerError(
                f"The Wiro API answered {path} with {what} (HTTP {answer.status}): {shown!r}",
                hint=RUN_UNSURE_HINT if starts_task else None,
                maybe_submitted=starts_task,
            )
            raise error
        if payload.get("result") is False or (payload.get("errors") and not payload.get("result", True)):
            raise error_from_envelope(payload.get("errors"), status_code=answer.status, path=path)
        return payload


def _form_dict(data: dict[str, Any] | list[tuple[str, str]] | None) -> dict[str, Any]:
    """httpx takes repeated multipart fields as a list under one key."""
    if data is None or isinstance(data, dict):
        return data or {}
    form: dict[str, Any] = {}
    for name, value in data:
        if name in form:
            form[name] = [*form[name], value] if isinstance(form[name], list) else [form[name], value]
        else:
            form[name] = value
    return form

