"""The HTTP core: one pooled httpx.AsyncClient, auth headers, retries, the envelope.

Wiro answers business errors with HTTP 200 and `{"result": false, "errors":
[{"code", "message"}]}`; auth failures with 401; and (per its intro page and
real proxies) 429/5xx. Every one of those becomes an exception of our
hierarchy here, so nothing above this module sees a raw response.

Retries: idempotent calls (reads, cancel/kill) are retried on 429, 5xx and
network errors with exponential backoff, honouring `Retry-After`. `Run` spends
money, so it is retried only when the connection was never made (the request
cannot have reached the server).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from ._auth import auth_headers
from ._config import Settings
from ._exceptions import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WiroConnectionError,
    WiroError,
    redact,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger("wiro_jupyter")

USER_AGENT = "wiro-jupyter/0.1"


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def error_from_envelope(errors: Any, *, status_code: int | None = None, path: str = "") -> WiroError:
    """Map Wiro's `errors: [{code, message}]` to our hierarchy (codes: research notes §2)."""
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
    if code_str == "96":
        return RateLimitError(
            f"The Wiro API says: {message}",
            hint="Wait for a running task to finish (or raise your balance), then run again.",
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
            errors=messages,
            hint="Nothing was charged. Fix the inputs and run again.",
            code=code,
            status_code=status_code,
        )
    return WiroError(f"The Wiro API says: {'; '.join(messages)}", code=code, status_code=status_code)


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


def _error_items(response: httpx.Response) -> Any:
    """The `errors` of an error answer, or one made from its status and text when it is not JSON."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("errors"):
        return payload["errors"]
    text = " ".join(response.text.split())[:160]
    return [{"code": None, "message": f"HTTP {response.status_code}" + (f": {text}" if text else "")}]


class HttpCore:
    """One connection pool and the request policy for one client."""

    def __init__(
        self,
        settings: Settings,
        *,
        timeout: float = 60.0,
        max_retries: int = 3,
        max_connections: int = 20,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_connections = max_connections
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        import httpx

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            # An httpx pool belongs to the loop it was first used on.
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.timeout, connect=10.0),
                limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
                headers={"user-agent": USER_AGENT},
                transport=self._transport,
                follow_redirects=True,
            )
            # Requests wait here, not inside httpcore's pool, whose queue handling
            # costs grow with the number of waiting requests (measured: 3x slower
            # wall time for 50 concurrent tasks without this).
            self._slots = asyncio.Semaphore(self.max_connections)
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def _require_key(self) -> None:
        if not self.settings.api_key:
            raise AuthenticationError(
                "No Wiro API key is set.",
                hint="Set WIRO_API_KEY (and WIRO_API_SECRET for a signature project), pass api_key= to Wiro(), "
                "or call wiro_jupyter.use_emulator() to try everything locally without an account.",
            )

    async def call(
        self,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        data: dict[str, Any] | list[tuple[str, str]] | None = None,
        files: list[tuple[str, tuple[str, Any, str]]] | None = None,
        idempotent: bool = True,
    ) -> dict[str, Any]:
        """POST `path` (relative to the API URL) and return the successful envelope."""
        import httpx

        self._require_key()
        url = f"{self.settings.api_url}/{path}"
        attempt = 0
        while True:
            attempt += 1
            headers = auth_headers(self.settings.api_key, self.settings.api_secret)  # fresh nonce per attempt
            client = self.client
            assert self._slots is not None
            try:
                async with self._slots:
                    if files is not None or data is not None:
                        response = await client.post(url, data=_form_dict(data), files=files, headers=headers)
                    else:
                        response = await client.post(url, json=json or {}, headers=headers)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                # The connection was never made: safe to retry even a Run.
                if attempt <= self.max_retries:
                    await self._backoff(attempt, None, path, "connection failed")
                    continue
                raise WiroConnectionError(f"Could not connect to the Wiro API at {self.settings.api_url} ({exc}).") from None
            except httpx.TransportError as exc:
                if idempotent and attempt <= self.max_retries:
                    await self._backoff(attempt, None, path, type(exc).__name__)
                    continue
                if not idempotent:
                    broken = WiroConnectionError(
                        f"The connection broke during {path} ({type(exc).__name__}).",
                        hint="The request may have reached the server: check wiro_jupyter.tasks() or your dashboard "
                        "before running again, so you are not charged twice.",
                    )
                    broken.maybe_submitted = True
                    raise broken from None
                raise WiroConnectionError(f"The connection to the Wiro API broke during {path} ({exc}).") from None

            status = response.status_code
            if status == 429 or status >= 500:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if idempotent and attempt <= self.max_retries:
                    await self._backoff(attempt, wait, path, f"HTTP {status}")
                    continue
                body = redact(response.text[:200])
                if status == 429:
                    raise RateLimitError(
                        f"The Wiro API is rate limiting requests (HTTP 429 on {path}).",
                        retry_after=wait,
                        hint=f"Wait {wait:g} s and try again." if wait else None,
                        status_code=status,
                    )
                error = ServerError(
                    f"The Wiro API failed with HTTP {status} on {path}: {body}",
                    hint=None
                    if idempotent
                    else "The request may still have started a task: check wiro_jupyter.tasks() or your dashboard "
                    "before running it again, so you are not charged twice.",
                    status_code=status,
                )
                error.maybe_submitted = not idempotent
                raise error
            if status == 404:
                raise NotFoundError(
                    f"The Wiro API has no route {path} (HTTP 404).",
                    hint="Check WIRO_API_URL; it should end in /v1 (default https://api.wiro.ai/v1).",
                    status_code=status,
                )
            if status >= 400:
                # A proxy in front of the API may answer with HTML: the status still says what happened.
                raise error_from_envelope(_error_items(response), status_code=status, path=path)
            payload = self._json(response, path)
            if payload.get("result") is False or (payload.get("errors") and not payload.get("result", True)):
                raise error_from_envelope(payload.get("errors"), status_code=status, path=path)
            return payload

    def _json(self, response: httpx.Response, path: str) -> dict[str, Any]:
        try:
            payload = response.json()
        except ValueError:
            raise ServerError(
                f"The Wiro API answered {path} with something that is not JSON (HTTP {response.status_code}): "
                f"{redact(response.text[:200])!r}",
            ) from None
        if not isinstance(payload, dict):
            raise ServerError(f"The Wiro API answered {path} with unexpected JSON: {redact(str(payload)[:200])}")
        return payload

    async def _backoff(self, attempt: int, retry_after: float | None, path: str, why: str) -> None:
        delay = retry_after if retry_after is not None else min(8.0, 0.25 * 2 ** (attempt - 1))
        delay = min(delay, 30.0) + random.uniform(0, 0.05)
        log.info("retrying %s in %.2fs after %s (attempt %d)", path, delay, why, attempt)
        await asyncio.sleep(delay)
