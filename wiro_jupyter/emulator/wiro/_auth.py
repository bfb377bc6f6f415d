"""Projects (API keys, optional signature secrets) and the authentication of each API call
(docs/protocol.md, Wiro §1)."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field

from starlette.requests import Request
from starlette.responses import Response

from ._envelope import NOT_FOUNDED, NOT_VALID, SIGNATURE_REQUIRED, fail
from ._ids import hex_id


@dataclass
class Project:
    key: str
    secret: str | None  # None: key-only project; else signatures are required (Wiro §1)
    id: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))
    revoked: bool = False
    nonces: set[str] = field(default_factory=set)
    root_folder: str = field(default_factory=hex_id)


def authenticate(projects: dict[str, Project], request: Request) -> Project | Response:
    """The calling project, or the 401 answer: unknown/revoked key, missing or bad signature, replayed nonce."""
    key = request.headers.get("x-api-key", "")
    project = projects.get(key)
    if project is None or project.revoked:
        return fail(0, NOT_FOUNDED, 401)
    if project.secret is None:
        return project  # key-only project; extra signature headers are ignored (Wiro §1: unconfirmed)
    nonce, signature = request.headers.get("x-nonce"), request.headers.get("x-signature")
    if not nonce or not signature:
        return fail(0, SIGNATURE_REQUIRED, 401)
    # hex HMAC-SHA256, key = API key, message = secret + nonce (Wiro §1)
    expected = hmac.new(key.encode(), (project.secret + nonce).encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature) or nonce in project.nonces:
        return fail(0, NOT_VALID, 401)  # wrong signature, or a replayed nonce
    project.nonces.add(nonce)
    return project
