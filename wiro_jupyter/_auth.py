"""Wiro's two authentication modes, as request headers.

Signature mode: x-signature = hex HMAC-SHA256 with key = API key and
message = API secret + nonce (the published docs, the official SDKs and their
test vectors agree on this order; see tests/test_auth.py). The nonce is a
strictly increasing millisecond timestamp, so two requests in the same
millisecond still get distinct nonces.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time

_nonce_lock = threading.Lock()
_last_nonce = 0


def sign(api_key: str, api_secret: str, nonce: str) -> str:
    return hmac.new(api_key.encode(), (api_secret + nonce).encode(), hashlib.sha256).hexdigest()


def next_nonce() -> str:
    global _last_nonce
    with _nonce_lock:
        _last_nonce = max(_last_nonce + 1, int(time.time() * 1000))
        return str(_last_nonce)


def auth_headers(api_key: str | None, api_secret: str | None) -> dict[str, str]:
    """Headers for one request: a fresh nonce and signature every time."""
    if not api_key:
        return {}
    if not api_secret:
        return {"x-api-key": api_key}
    nonce = next_nonce()
    return {"x-api-key": api_key, "x-nonce": nonce, "x-signature": sign(api_key, api_secret, nonce)}
