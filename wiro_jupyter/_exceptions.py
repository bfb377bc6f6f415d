"""One exception hierarchy for everything the package raises.

Every message says what happened and what to do about it, in one paragraph.
Messages never contain an API key or secret: `redact()` is applied to every
message built from server text, and no credential is ever interpolated.

IPython shows an exception that has `_render_traceback_` as the lines it
returns instead of a traceback, so notebook users see the paragraph, not the
internals of this package. The method is plain Python: no IPython import here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "AuthenticationError",
    "FieldProblem",
    "NotFoundError",
    "RateLimitError",
    "ServerError",
    "TaskCancelledError",
    "TaskFailedError",
    "ValidationError",
    "WiroConnectionError",
    "WiroError",
    "WiroTimeoutError",
    "redact",
    "register_secret",
]

class Answered(Protocol):
    """What a failed chat turn leaves behind (a `ChatMessage`)."""

    answer: str


# Secrets known to this process, in every spelling they may take in text (as given,
# percent-encoded, JSON-escaped); redact() masks them wherever they appear.
_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a credential so that no message or repr can ever show it, however it was encoded."""
    if not value or len(value) < 4:
        return
    import json
    from urllib.parse import quote, quote_plus

    for spelling in (value, quote(value), quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]):
        _SECRETS.add(spelling)
        _SECRETS.add(quote(spelling, safe=""))  # a URL-encoded JSON body, for instance


def redact(text: str) -> str:
    """Mask every registered secret found in `text`."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "****")
    # Header-shaped leaks from server echoes or proxies, whatever the value.
    return re.sub(r"(?i)(x-api-key|x-signature|authorization)(\s*[:=]\s*)(bearer\s+)?[^\s,;\"']+", r"\1\2\3****", text)


class WiroError(Exception):
    """Base class of every error raised by wiro_jupyter.

    `hint` is the "what to do" part of the message; `code` is the server's
    error code when there is one; `status_code` is the HTTP status.
    """

    default_hint = ""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: Any = None,
        status_code: int | None = None,
        details: Any = None,
        maybe_submitted: bool = False,
        partial_message: Answered | None = None,
    ) -> None:
        self.message = redact(str(message))
        self.hint = redact(hint if hint is not None else self.default_hint)
        self.code = code
        self.status_code = status_code
        self.details = details
        #: True when a request that starts (paid) work may have reached the server despite the error.
        self.maybe_submitted = maybe_submitted
        #: A chat turn that failed midway: what had arrived (a ChatMessage), kept for the user.
        self.partial_message = partial_message
        super().__init__(self.__str__())

    @property
    def partial(self) -> str:
        """The answer text that arrived before a chat turn failed ('' when none)."""
        return self.partial_message.answer if self.partial_message is not None else ""

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} {self.hint}"
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__str__()!r})"

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of printing a traceback of our internals.
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self.__str__()}"]


class AuthenticationError(WiroError):
    default_hint = (
        "Check WIRO_API_KEY (and WIRO_API_SECRET for a signature project) or pass "
        "api_key=/api_secret= to Wiro(); a revoked key must be replaced with a new one "
        "from your project's page in the Wiro dashboard."
    )


class NotFoundError(WiroError):
    default_hint = "Check the spelling; `Wiro().models(search=...)` lists the models you can run."


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with one input: `field` is the parameter id ('' when no single field is at fault)."""

    field: str
    message: str


class ValidationError(WiroError):
    """Parameters that the model would refuse. Nothing was sent or charged.

    `problems` lists each problem with the field it belongs to (a form marks those fields);
    `errors` is their messages.
    """

    default_hint = "Nothing was sent. Fix the parameter and run again; `Wiro().model(slug)` lists the parameters."

    def __init__(self, message: str, *, problems: list[FieldProblem] | None = None, **kwargs: Any) -> None:
        self.problems = list(problems or [FieldProblem("", redact(str(message)))])
        super().__init__(message, **kwargs)

    @property
    def errors(self) -> list[str]:
        return [problem.message for problem in self.problems]


class RateLimitError(WiroError):
    default_hint = "Wait a little and try again, or run fewer tasks at once."

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class ServerError(WiroError):
    default_hint = "The service had a problem; try again in a moment. Nothing you sent was wrong."


class TaskFailedError(WiroError):
    """The task ran and ended with a non-zero exit. `task` holds what there is."""

    default_hint = "See task.error and task.debug_error for the model's own output; adjust the inputs and run again."

    def __init__(self, message: str, *, task: Any = None, **kwargs: Any) -> None:
        self.task = task
        super().__init__(message, **kwargs)


class TaskCancelledError(TaskFailedError):
    default_hint = "The task was cancelled or killed before it finished; nothing more will be produced."


class WiroConnectionError(WiroError):
    default_hint = "Check the network and WIRO_API_URL / WIRO_SOCKET_URL, then try again."


class WiroTimeoutError(WiroError):
    default_hint = (
        "The task is still running on the server and nothing is lost: call task.wait() again, "
        "or wiro_jupyter.recover(task_id) later."
    )
