"""Dify-compatible chat: how the chat server's answers read, without client state.

Dify's error envelope (`{code, message, status}`, or a proxy's page) and httpx's
transport failures while a stream is read become the package's exceptions
(`_error_for` also serves `error` events inside a 200 stream); `DIFY` is the
`Service` the HTTP core (`_transport`, which owns retries, redirects and caps) uses;
`_non_stream_events` turns a blocking-mode JSON answer into the event dicts a
stream would have carried.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

import httpx

from .._exceptions import (
    RateLimitError,
    ServerError,
    ValidationError,
    WiroConnectionError,
    WiroError,
    WiroTimeoutError,
)
from .._transport import Service, error_class, retry_after

DEFAULT_WBOT_URL = "https://servicewbot.ecylt.top/v1"
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
_TURN_UNSURE_HINT = (
    "The app may have answered (and used its quota) anyway: look at the conversation's messages "
    "(chat.messages(), or chat.conversations() for a new conversation) before sending it again."
)
_KEY_HINT = (
    "Set WBOT_API_KEY or pass api_key= to WbotChat(): it is the chat app's own API key "
    "(Dify keys start with 'app-'), from the app's API access page; each key works for one app only."
)


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
    if code in _PROVIDER_CODES and (status is None or status < 500):
        return ServerError(
            what,
            hint="The app's model or provider failed (its configuration or quota, not your message); "
            "try again later, or ask the app's owner.",
            code=code,
            status_code=status,
        )
    cls = error_class(status) if status is not None else WiroError
    hint = _hint(status, code, detail.lower())
    if cls is RateLimitError:
        return RateLimitError(what, hint=hint, retry_after=retry_after, code=code, status_code=status)
    return cls(what, hint=hint, code=code, status_code=status)


def _hint(status: int | None, code: str, lowered: str) -> str:
    """What to do about a Dify error, by its status and code."""
    if status == 401:
        return _KEY_HINT
    if status == 403:
        return (
            "The app, its API access or the workspace is disabled, or the plan does not allow this; "
            "ask the app's owner to check it in the Dify console."
        )
    if status == 404:
        if "conversation" in lowered:
            return (
                "The conversation was deleted, belongs to another user=, or comes from another app; "
                "start a new one with chat.new()."
            )
        if "message" in lowered:
            return "Check the message id; chat.last.message_id is the id of the last answer."
        return f"Check base_url: it must be the API root ending in /v1 (for example {DEFAULT_WBOT_URL} or http://your-dify-host/v1)."
    if status == 429:
        return "The app limits concurrent requests or its plan quota is used up; wait a little and send again."
    if status == 413:
        return "The file is too large for this app; chat.parameters()['system_parameters'] gives the limits."
    if status == 415:
        return "This app does not accept this file type; chat.parameters()['file_upload'] lists what it takes."
    if status is not None and status >= 500:
        return "The chat server had a problem; try again in a moment."
    if code == "not_chat_app":
        return "This key belongs to a workflow or completion app; use the key of a chat, agent or chatflow app."
    if code == "conversation_completed":
        return "This conversation is closed; start a new one with chat.new()."
    if status == 400:
        return "Fix the request and send again; chat.parameters() lists the inputs and files this app accepts."
    return "See the server's message above."


def _http_error(resp: httpx.Response, content: bytes) -> WiroError:
    """Build the exception for a non-2xx answer: Dify's `{code, message, status}`, or a proxy's page."""
    status = resp.status_code
    host = resp.request.url.host if resp.request is not None else ""
    text = content.decode("utf-8", "replace")
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
    return _error_for(status, code, message, host=host, retry_after=retry_after(resp.headers.get("retry-after")))


DIFY = Service(name="the chat server", error=_http_error, url_hint="WBOT_API_URL (or base_url=)")


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


# --------------------------------------------------------------------------- blocking-mode answers


def _non_stream_events(content: bytes, status: int) -> Iterable[dict[str, Any]]:
    """A 200 that is not an event stream: a blocking-mode answer (server ignored streaming) or an error body."""
    try:
        body = json.loads(content)
    except ValueError:
        raise WiroError(
            "The chat server answered 200 with neither an event stream nor JSON.",
            hint="Check base_url: it must be a Dify Service API root ending in /v1 (a proxy may be in the way).",
            status_code=status,
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
