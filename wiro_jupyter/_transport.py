"""The one HTTP core under every request the package makes: Wiro API calls, Dify-compatible chat
calls and output downloads.

What it owns, so that no client carries a copy:

- the pool: one `httpx.AsyncClient` per event loop (an httpx pool belongs to the loop it was
  first used on), an injectable `transport=` (tests, proxies) that reaches downloads too, and a
  semaphore that requests wait on *before* httpcore's own pool (measured: httpcore's queue made
  50 concurrent tasks 3x slower; `benchmarks/bench_concurrent.py`);
- timeouts;
- the retry policy. A request that may start paid work (a Wiro `Run`, a Dify `chat-messages`
  turn) is sent *once*: it is retried only when nothing can have reached the server (the
  connection was never made) or when the server refused it outright (HTTP 429, or a
  service's own "busy, nothing started" answer such as Wiro's concurrency error). A 5xx, a
  timeout after sending or a connection dropped mid-answer raises a `WiroError` with
  `maybe_submitted=True` and the caller's hint on how to find out what happened. Reads are
  retried with backoff on 429, 5xx and network errors. `Retry-After` is parsed in one place;
- the redirect rule: API requests never follow a redirect (credential headers must never
  reach another origin); the error names the host the server tried to send us to.
  Downloads carry no credentials and follow redirects (CDNs use them);
- size caps: a non-streamed answer, one Server-Sent Event and a download each have a cap
  with a clear error (a socket message's cap lives in `_socket.py`);
- the status → exception table (`error_class`).

Services (Wiro, Dify) plug in a `Service`: how their error answers read.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import os
import random
import tempfile
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ._exceptions import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WiroConnectionError,
    WiroError,
)

if TYPE_CHECKING:
    import httpx
    from httpx_sse import ServerSentEvent

log = logging.getLogger("wiro_jupyter")

USER_AGENT = "wiro-jupyter/0.1"
DEFAULT_MAX_BODY = 16 * 1024**2  # a non-streamed answer, or one Server-Sent Event
MAX_RETRY_WAIT = 30.0


def retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: a number of seconds or an HTTP date; anything else is no hint."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when is None:
            return None
        try:
            seconds = when.timestamp() - time.time()
        except (OverflowError, OSError, ValueError):
            return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def error_class(status: int) -> type[WiroError]:
    """The exception an HTTP error status stands for, the same for every service."""
    if status in (401, 403):
        return AuthenticationError
    if status in (404, 410):
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status >= 500:
        return ServerError
    if status in (400, 413, 415, 422):
        return ValidationError
    return WiroError


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL, for messages (never a path, query or credential)."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


@dataclass(frozen=True)
class Service:
    """How one API speaks, for the core's messages and decisions.

    `name` says who answered ("the Wiro API"); `error` turns a non-2xx answer (the response and
    the start of its body) into our exception; `refused` says whether a complete 2xx answer means "busy:
    nothing was started" (retried like a 429, even for paid work, by `request`); `url_hint`
    tells how to fix the address.
    """

    name: str
    error: Callable[[httpx.Response, bytes], WiroError]
    refused: Callable[[bytes], bool] = lambda body: False
    url_hint: str = ""


@dataclass
class Answer:
    """A complete, size-checked answer."""

    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.content)


class _Pool:
    def __init__(self, client: httpx.AsyncClient, slots: int) -> None:
        self.client = client
        self.slots = asyncio.Semaphore(slots)


class HttpCore:
    """One pool and one request policy (see the module docstring)."""

    def __init__(
        self,
        *,
        timeout: float | httpx.Timeout | None = 60.0,
        max_connections: int = 20,
        max_retries: int = 3,
        retry_base: float = 0.25,
        max_body: int = DEFAULT_MAX_BODY,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self.max_retries = max(0, int(max_retries))
        self.retry_base = retry_base
        self.max_body = max_body
        self._transport = transport
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Pool] = weakref.WeakKeyDictionary()

    # -- the pool -------------------------------------------------------------------------
    def _pool(self) -> _Pool:
        import httpx

        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None or pool.client.is_closed:
            timeout = self.timeout if isinstance(self.timeout, httpx.Timeout) else httpx.Timeout(self.timeout, connect=10.0)
            client = httpx.AsyncClient(
                timeout=timeout,
                limits=httpx.Limits(max_connections=self.max_connections, max_keepalive_connections=self.max_connections),
                headers={"user-agent": USER_AGENT},
                transport=self._transport,
                follow_redirects=False,
            )
            pool = self._pools[loop] = _Pool(client, self.max_connections)
        return pool

    @property
    def client(self) -> httpx.AsyncClient:
        """The running loop's httpx client (for code that needs httpx itself)."""
        return self._pool().client

    async def aclose(self) -> None:
        """Close the running loop's pool (others close with their loops)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        pool = self._pools.pop(loop, None)
        if pool is not None:
            await pool.client.aclose()

    # -- requests ---------------------------------------------------------------------------
    async def request(
        self,
        method: str,
        url: str,
        *,
        service: Service,
        headers: Callable[[], dict[str, str]] | None = None,
        idempotent: bool = True,
        unsure_hint: str = "",
        **kwargs: Any,
    ) -> Answer:
        """Send one API request under the retry policy; return its complete answer (2xx only).

        `headers()` is called per attempt (a signature needs a fresh nonce). `idempotent=False`
        marks a request that may start work (see the module docstring); `unsure_hint` then says
        how to find out whether it did, should the outcome be unknown.
        """
        refusals = 0
        while True:
            async with self.stream(
                method, url, service=service, headers=headers, idempotent=idempotent, unsure_hint=unsure_hint, **kwargs
            ) as response:
                content = await self._read_capped(response, service, idempotent=idempotent, unsure_hint=unsure_hint)
                answer = Answer(response.status_code, response.headers, content)
            if refusals < self.max_retries and service.refused(content):
                # Busy, and nothing was started: like a 429, safe to send again after a pause.
                refusals += 1
                wait = self._delay(refusals, None)
                log.info("%s is busy; retrying %s in %.2fs", service.name, origin(url), wait)
                await asyncio.sleep(wait)
                continue
            return answer

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        service: Service,
        headers: Callable[[], dict[str, str]] | None = None,
        idempotent: bool = True,
        unsure_hint: str = "",
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """Open a request under the retry policy and yield its 2xx response, body unread (for streams).

        Retries happen only before a 2xx answer is yielded; what goes wrong while the caller
        reads the body is the caller's to handle.
        """
        import httpx

        attempt = 0
        while True:
            attempt += 1
            pool = self._pool()
            request = pool.client.build_request(method, url, headers=headers() if headers else None, **kwargs)
            wait: float | None = None
            async with pool.slots:
                try:
                    response = await pool.client.send(request, stream=True)
                except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                    # Nothing reached the server: safe to try again, even for paid work.
                    if attempt <= self.max_retries:
                        wait = self._delay(attempt, None)
                        log.info("retrying %s %s in %.2fs: %s", method, origin(url), wait, type(exc).__name__)
                    else:
                        raise self._unreachable(exc, url, service) from None
                except httpx.RequestError as exc:
                    if idempotent and attempt <= self.max_retries:
                        wait = self._delay(attempt, None)
                        log.info("retrying %s %s in %.2fs: %s", method, origin(url), wait, type(exc).__name__)
                    else:
                        raise self._broken(exc, url, service, idempotent=idempotent, unsure_hint=unsure_hint) from None
                else:
                    try:
                        wait = await self._retry_wait(response, attempt, service, idempotent, unsure_hint)
                        if wait is None:
                            yield response
                            return
                    finally:
                        await response.aclose()
            await asyncio.sleep(wait)

    async def _retry_wait(
        self, response: httpx.Response, attempt: int, service: Service, idempotent: bool, unsure_hint: str
    ) -> float | None:
        """None to hand the response over; else seconds to wait before the next attempt (or raise)."""
        status = response.status_code
        if 300 <= status < 400:
            raise self._redirected(response, service)
        if status < 400:
            return None
        hint = retry_after(response.headers.get("retry-after"))
        retry = status == 429 or (idempotent and status >= 500)
        if retry and attempt <= self.max_retries:
            wait = self._delay(attempt, hint)
            log.info("retrying %s in %.2fs after HTTP %d", origin(str(response.url)), wait, status)
            return wait
        body = await self._read_capped(response, service, idempotent=idempotent, unsure_hint=unsure_hint, limit=65536)
        error = service.error(response, body)
        if response.status_code >= 500 and not idempotent:
            error = _unsure(error, unsure_hint)
        raise error

    async def read(self, response: httpx.Response, service: Service) -> bytes:
        """The whole body of a response from `stream()`, at most `max_body` bytes."""
        return await self._read_capped(response, service, idempotent=True, unsure_hint="")

    async def _read_capped(
        self, response: httpx.Response, service: Service, *, idempotent: bool, unsure_hint: str, limit: int | None = None
    ) -> bytes:
        import httpx

        cap = limit or self.max_body
        chunks: list[bytes] = []
        total = 0
        try:
            async for chunk in response.aiter_bytes():
                total += len(chunk)
                if total > cap:
                    if limit is not None:  # an error page: its start is enough
                        chunks.append(chunk[: cap - (total - len(chunk))])
                        break
                    raise self._too_big(response, service, idempotent, unsure_hint)
                chunks.append(chunk)
        except httpx.RequestError as exc:
            raise self._broken(exc, str(response.url), service, idempotent=idempotent, unsure_hint=unsure_hint) from None
        return b"".join(chunks)

    def _delay(self, attempt: int, hint: float | None) -> float:
        if hint is not None:
            return min(hint, MAX_RETRY_WAIT)
        return min(8.0, self.retry_base * 2 ** (attempt - 1)) * (1 + random.random() / 4)

    # -- errors -----------------------------------------------------------------------------
    def _unreachable(self, exc: Exception, url: str, service: Service) -> WiroError:
        return WiroConnectionError(
            f"Could not connect to {service.name} at {origin(url)} ({type(exc).__name__}).",
            hint=f"Nothing was sent. Check the network{' and ' + service.url_hint if service.url_hint else ''}, then try again.",
        )

    def _broken(self, exc: Exception, url: str, service: Service, *, idempotent: bool, unsure_hint: str) -> WiroError:
        import httpx

        kind = type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            error = WiroConnectionError(
                f"{_cap(service.name)} at {origin(url)} did not answer in time ({kind}).",
                hint="Check the network, then try again; a larger timeout= may help.",
            )
        else:
            error = WiroConnectionError(
                f"The connection to {service.name} at {origin(url)} broke ({kind}).",
                hint="Check the network, then try again.",
            )
        return error if idempotent else _unsure(error, unsure_hint)

    def _redirected(self, response: httpx.Response, service: Service) -> WiroError:
        target = response.headers.get("location", "")
        where = origin(str(response.url.join(target))) if target else "(no Location given)"
        return WiroError(
            f"{_cap(service.name)} at {origin(str(response.url))} answered with a redirect (HTTP {response.status_code}) "
            f"to {where}. API requests do not follow redirects, so your credentials are never sent to another server.",
            hint=("If the service has moved, point the client at its new address: " + service.url_hint + ".")
            if service.url_hint
            else "If the service has moved, point the client at its new address.",
            status_code=response.status_code,
        )

    def _too_big(self, response: httpx.Response, service: Service, idempotent: bool, unsure_hint: str) -> WiroError:
        error = WiroError(
            f"{_cap(service.name)} sent an answer larger than {self.max_body:,} bytes (from {origin(str(response.url))}).",
            hint="If that is expected, raise the cap with max_response_bytes=.",
            status_code=response.status_code,
        )
        return error if idempotent else _unsure(error, unsure_hint)

    # -- Server-Sent Events ---------------------------------------------------------------------
    async def sse_events(self, response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
        """The events of a `text/event-stream` response (httpx-sse), each one capped at `max_body` characters."""
        from httpx_sse import EventSource

        async for event in EventSource(_CappedLines(response, self.max_body)).aiter_sse():  # type: ignore[arg-type]
            yield event

    # -- downloads ----------------------------------------------------------------------------
    async def fetch(self, url: str, *, max_bytes: int) -> bytes:
        """The bytes at `url` (an output file), at most `max_bytes`. No credentials are sent."""
        chunks: list[bytes] = []
        async with self._download(url) as response:
            total = 0
            async for chunk in _download_chunks(response, url):
                total += len(chunk)
                if total > max_bytes:
                    raise ValidationError(
                        f"{_name(url)} is larger than {max_bytes:,} bytes.", hint="Use output.save(directory) instead."
                    )
                chunks.append(chunk)
        return b"".join(chunks)

    async def download(self, url: str, target: Path, *, max_bytes: int) -> Path:
        """Stream `url` into `target`: constant memory, a size cap, renamed into place when complete."""
        fd, tmp_name = tempfile.mkstemp(prefix=".part-", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as sink:
                async with self._download(url) as response:
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > max_bytes:
                        raise ValidationError(
                            f"{target.name} is {int(declared):,} bytes, over the {max_bytes:,}-byte cap.",
                            hint="Pass a larger max_bytes= to save() if you want it.",
                        )
                    total = 0
                    async for chunk in _download_chunks(response, url):
                        total += len(chunk)
                        if total > max_bytes:
                            raise ValidationError(
                                f"{target.name} grew past the {max_bytes:,}-byte cap while downloading.",
                                hint="Pass a larger max_bytes= to save() if you want it.",
                            )
                        sink.write(chunk)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target

    @asynccontextmanager
    async def _download(self, url: str) -> AsyncIterator[httpx.Response]:
        import httpx

        if not url.lower().startswith(("http://", "https://")):
            raise WiroError(f"This output has no http(s) URL to download ({_name(url) or 'none'}).")
        pool = self._pool()
        try:
            async with pool.slots, pool.client.stream("GET", url, follow_redirects=True) as response:
                if response.status_code >= 400:
                    raise WiroError(
                        f"Downloading {_name(url)} failed with HTTP {response.status_code}.",
                        hint="Output URLs expire after a while; if it is gone, run the task again.",
                        status_code=response.status_code,
                    )
                yield response
        except httpx.HTTPError as exc:
            raise WiroConnectionError(f"Downloading {_name(url)} from {origin(url)} failed ({type(exc).__name__}).") from None


_shared: HttpCore | None = None


def shared_core() -> HttpCore:
    """The core for downloads that no client made (a chat's files, an `Output` built by hand): no credentials."""
    global _shared
    if _shared is None:
        _shared = HttpCore()
    return _shared


async def _download_chunks(response: httpx.Response, url: str) -> AsyncIterator[bytes]:
    async for chunk in response.aiter_bytes(1 << 16):
        yield chunk


def _name(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1] or origin(url)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _unsure(error: WiroError, hint: str) -> WiroError:
    """The same error, marked as "the work may have started", with the caller's way to check."""
    return type(error)(
        error.message + " The request may have reached the server.",
        hint=hint or "Check whether it started before sending it again, so it is not done (and paid for) twice.",
        code=error.code,
        status_code=error.status_code,
        maybe_submitted=True,
    )


class _CappedLines:
    """A response as httpx-sse reads it (`headers`, `aiter_text`), failing once one event passes `cap` characters.

    httpx-sse buffers a line until its newline and an event until its blank line; an endless
    line or event would grow without bound, so the text is measured before it gets there.
    """

    def __init__(self, response: httpx.Response, cap: int) -> None:
        self.headers = response.headers
        self._response = response
        self._cap = cap

    async def aiter_text(self) -> AsyncIterator[str]:
        event = 0  # characters of the event so far (complete lines)
        line = 0  # characters of the line in progress
        async for text in self._response.aiter_text():
            pieces = text.split("\n")
            for piece in pieces[:-1]:
                length = line + len(piece.rstrip("\r"))
                event = 0 if length == 0 else event + length
                line = 0
            line += len(pieces[-1])
            if event + line > self._cap:
                raise WiroError(
                    f"A Server-Sent Event from {origin(str(self._response.url))} passed {self._cap:,} characters.",
                    hint="The stream was stopped there. If the app really sends such events, raise the cap with "
                    "max_response_bytes=.",
                )
            yield text
