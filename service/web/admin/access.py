"""Who may use ``/admin``: the holder of ``TRIBUTARY_ADMIN_KEY``. Pure: key, token and ``now`` in.

- ``Authorization: Bearer <key>`` (scripts, curl): compared in constant time; such requests need
  no CSRF token, since a browser never adds that header by itself.
- A login form: the key, once, gives a session cookie (``HttpOnly``, ``SameSite=Strict``,
  ``Path=/admin``, ``Secure`` when ``base_url`` is https) holding ``nonce.expiry.signature``,
  an HMAC of the nonce and expiry under a key derived from the admin key. Nothing is stored
  server-side; changing the admin key ends every session.
- Every form that changes something carries a CSRF token, the HMAC of the session's nonce
  (one per session), checked in constant time.

The key is never logged, never echoed, never put in a page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime

COOKIE = "tributary_admin"
SESSION_SECONDS = 12 * 3600


def _signing_key(admin_key: str) -> bytes:
    return hashlib.sha256(b"tributary admin session\0" + admin_key.encode()).digest()


def _sign(admin_key: str, message: str) -> str:
    return hmac.new(_signing_key(admin_key), message.encode(), hashlib.sha256).hexdigest()


def key_matches(given: str, admin_key: str) -> bool:
    return hmac.compare_digest(given.encode(), admin_key.encode())


def issue_session(admin_key: str, now: datetime) -> str:
    nonce = secrets.token_urlsafe(18)
    expiry = int(now.timestamp()) + SESSION_SECONDS
    return f"{nonce}.{expiry}.{_sign(admin_key, f'session|{nonce}|{expiry}')}"


def session_nonce(token: str | None, admin_key: str, now: datetime) -> str | None:
    """The session's nonce when ``token`` is a valid, unexpired session; else None."""
    if not token or token.count(".") != 2:
        return None
    nonce, expiry, signature = token.split(".")
    if not expiry.isdigit() or int(expiry) < now.timestamp():
        return None
    if not hmac.compare_digest(signature, _sign(admin_key, f"session|{nonce}|{expiry}")):
        return None
    return nonce


def csrf_token(admin_key: str, nonce: str) -> str:
    return _sign(admin_key, f"csrf|{nonce}")


def csrf_ok(given: str | None, admin_key: str, nonce: str) -> bool:
    return given is not None and hmac.compare_digest(given, csrf_token(admin_key, nonce))
