"""Dify-compatible chat: the HTTP side that needs no client state.

Dify's error envelope (`{code, message, status}`, or a proxy's page) and httpx's
transport failures become the package's exceptions (`_error_for` also serves
`error` events inside a 200 stream); the retry policy (which statuses, how long
to wait); and `_non_stream_events`, which turns a blocking-mode JSON answer into
the event dicts a stream would have carried.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from ._exceptions import (
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ServerError,
    ValidationError,
    WiroConnectionError,
    WiroError,
    WiroTimeoutError,
)

DEFAULT_WBOT_URL = "https://servicewbot.ecylt.top/v1"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Codes Dify sends with HTTP 400 when the app's model or provider failed: not the caller's mistake.
_PROVIDER_CODES = frozenset(
    {
        "provider_not_initialize",
        "provider_quota_exceeded",
        "model_currently_not_support",
        "completion_request_error",
        "app_unavailable",
        "internal_server_error",
    }
)
_KEY_HINT = (
    "Set WBOT_API_KEY or pass api_key= to WbotChat(): it is the chat app's own API key "
    "(Dify keys start with 'app-'), from the app's API access page; each key works for one app only."
)


def _attach(err: BaseException, **attrs: Any) -> None:
    for name, value in attrs.items():
        setattr(err, name, value)


def _error_for(
    status: int | None,
    code: str,
    message: str,
    *,
    in_stream: bool = False,
    host: str = "",
    retry_after: float | None = None,
) -> WiroError:
    """Map a Dify error (HTTP or in-stream `error` event) onto the package's exceptions."""
    code = code or "error"
    detail = message.strip() or "(no message)"
    if in_stream:
        what = f"The answer failed while streaming: {code} (status {status}): {detail}"
    else:
        where = f" at {host}" if host else ""
        what = f"The chat server{where} answered HTTP {status} {code}: {detail}"
    lowered = detail.lower()
    kw: dict[str, Any] = {"code": code, "status_code": status}
    if status == 401:
        return AuthenticationError(what, hint=_KEY_HINT, **kw)
    if status == 403:
        return WiroError(
            what,
            hint="The app, its API access or the workspace is disabled, or the plan does not allow this; "
            "ask the app's owner to check it in the Dify console.",
            **kw,
        )
    if status == 404:
        if "conversation" in lowered:
            hint = (
                "The conversation was deleted, belongs to another user=, or comes from another app; "
                "start a new one with chat.new()."
            )
        elif "message" in lowered:
            hint = "Check the message id; chat.last.message_id is the id of the last answer."
        else:
            hint = (
                "Check base_url: it must be the API root ending in /v1 (for example "
                f"{DEFAULT_WBOT_URL} or http://your-dify-host/v1)."
            )
        return NotFoundError(what, hint=hint, **kw)
    if status == 429:
        hint = "The app limits concurrent requests or its plan quota is used up; wait a little and send again."
        return RateLimitError(what, hint=hint, retry_after=retry_after, **kw)
    if status in (413, 415):
        hint = (
            "The file is too large for this app; chat.parameters()['system_parameters'] gives the limits."
            if status == 413
            else "This app does not accept this file type; chat.parameters()['file_upload'] lists what it takes."
        )
        return ValidationError(what, hint=hint, **kw)
    if status is not None and status >= 500:
        return ServerError(what, hint="The chat server had a problem; try again in a moment.", **kw)
    if code in _PROVIDER_CODES:
        return ServerError(
            what,
            hint="The app's model or provider failed (its configuration or quota, not your message); "
            "try again later, or ask the app's owner.",
            **kw,
        )
    if status == 400:
        if code == "not_chat_app":
            hint = "This key belongs to a workflow or completion app; use the key of a chat, agent or chatflow app."
        elif code == "conversation_completed":
            hint = "This conversation is closed; start a new one with chat.new()."
        else:
            hint = "Fix the request and send again; chat.parameters() lists the inputs and files this app accepts."
        return ValidationError(what, hint=hint, **kw)
    return WiroError(what, hint="See the server's message above.", **kw)


def _retry_after(resp: httpx.Response) -> float | None:
    value = resp.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, IndexError):
        return None


def _http_error(resp: httpx.Response) -> WiroError:
    """Build the exception for a non-2xx answer: Dify's `{code, message, status}`, or a proxy's page."""
    status = resp.status_code
    host = resp.request.url.host if resp.request is not None else ""
    text = resp.text or ""
    code, message = "", ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("code") or body.get("error") or "")
        raw = body.get("message")
        message = raw if isinstance(raw, str) else json.dumps(raw) if raw is not None else ""
    elif "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        shown = re.sub(r"\s+", " ", title.group(1)).strip() if title else ""
        message = (
            f"an HTML page{f' ({shown!r})' if shown else ''} instead of Dify's JSON, "
            "so a proxy or gateway in front of the app answered"
        )
    else:
        message = re.sub(r"\s+", " ", text).strip()[:300]
    if not code:
        code = httpx.codes.get_reason_phrase(status).lower().replace(" ", "_") or "error"
    return _error_for(status, code, message, host=host, retry_after=_retry_after(resp))


def _transport_error(exc: httpx.TransportError, base_url: str, *, streaming: bool) -> WiroError:
    kind = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        if streaming:
            return WiroTimeoutError(
                f"No data arrived from the chat server for too long while streaming ({kind}).",
                hint="Dify sends a keep-alive ping every 10 s, so the connection or a proxy stalled; send again, "
                "or pass a larger timeout= to the chat.",
            )
        return WiroTimeoutError(
            f"The chat server at {base_url} did not answer in time ({kind}).",
            hint="Check the network and WBOT_API_URL / base_url, then try again; a larger timeout= may help.",
        )
    if streaming:
        return WiroConnectionError(
            f"The connection to the chat server dropped while the answer was streaming ({kind}: {exc}).",
            hint="Send again; the part that arrived is on this exception as .partial.",
        )
    return WiroConnectionError(
        f"Could not reach the chat server at {base_url} ({kind}: {exc}).",
        hint="Check the network and WBOT_API_URL / base_url (it ends in /v1), then try again.",
    )


def _bad_arg(message: str, hint: str) -> ValidationError:
    return ValidationError(message, hint=hint, code="invalid_argument")


# --------------------------------------------------------------------------- retries


def _backoff(base: float, attempt: int, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (0-based): the server's Retry-After, else jittered doubling."""
    if retry_after is not None:
        return min(retry_after, 30.0)
    return base * (2**attempt) * (1 + random.random() / 4)


# --------------------------------------------------------------------------- blocking-mode answers


def _non_stream_events(resp: httpx.Response) -> Iterable[dict[str, Any]]:
    """A 200 that is not an event stream: a blocking-mode answer (server ignored streaming) or an error body."""
    try:
        body = resp.json()
    except ValueError:
        raise WiroError(
            "The chat server answered 200 with neither an event stream nor JSON.",
            hint="Check base_url: it must be a Dify Service API root ending in /v1 (a proxy may be in the way).",
            status_code=resp.status_code,
        ) from None
    if not isinstance(body, dict):
        raise WiroError("The chat server answered with unexpected JSON.", hint="Check base_url.")
    if "answer" not in body:
        yield {"event": "error", "status": body.get("status", 500), **body}
        return
    envelope = {k: body[k] for k in ("conversation_id", "message_id", "task_id", "created_at") if k in body}
    envelope.setdefault("message_id", body.get("id"))
    yield {"event": "message", **envelope, "answer": body.get("answer") or ""}
    yield {"event": "message_end", **envelope, "metadata": body.get("metadata") or {}, "files": body.get("files")}


# --------------------------------------------------------------------------- sync flavour
