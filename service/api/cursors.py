"""Opaque, tamper-evident cursors: ``base64url(payload).base64url(HMAC-SHA256(secret, payload)[:16])``.

A partner can store and send them back but not forge or edit them; a server that sees an
edited one answers 400 naming ``cursor``. The secret is ``[api] cursor_secret`` or one random
secret kept in Redis (so every web process shares it).

Payloads: ``c|<log position>`` for the change log; ``a|<score>|<id>|<log position>|<query digest>``
for an article listing, bound to its query so it cannot page a different one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

from service.errors import TributaryError
from service.store.changelog import Position

TAG_BYTES = 16


class CursorError(TributaryError):
    """A cursor this server did not issue, or one for another query; the message says which."""


@dataclass(frozen=True)
class ArticleCursor:
    score: float
    id: str
    snapshot: Position  # the change-log position of the walk's first page
    digest: str  # the query it pages


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def query_digest(normalised_query: str) -> str:
    return hashlib.sha256(normalised_query.encode()).hexdigest()[:16]


class CursorSigner:
    def __init__(self, secret: bytes):
        self._secret = secret

    def _sign(self, payload: str) -> str:
        raw = payload.encode()
        return _b64(raw) + "." + _b64(hmac.new(self._secret, raw, hashlib.sha256).digest()[:TAG_BYTES])

    def _open(self, token: str) -> str:
        body, _, tag = token.partition(".")
        try:
            raw, given = _unb64(body), _unb64(tag)
        except (binascii.Error, ValueError) as exc:
            raise CursorError("not a cursor this server issued") from exc
        expected = hmac.new(self._secret, raw, hashlib.sha256).digest()[:TAG_BYTES]
        if not hmac.compare_digest(given, expected):
            raise CursorError("not a cursor this server issued (altered, or from another server)")
        return raw.decode()

    def changes(self, position: Position) -> str:
        return self._sign(f"c|{position}")

    def open_changes(self, token: str) -> Position:
        kind, _, text = self._open(token).partition("|")
        if kind != "c":
            raise CursorError("a cursor of an article listing, not of the change log")
        return Position.parse(text)

    def articles(self, cursor: ArticleCursor) -> str:
        return self._sign(f"a|{cursor.score!r}|{cursor.id}|{cursor.snapshot}|{cursor.digest}")

    def open_articles(self, token: str, digest: str) -> ArticleCursor:
        parts = self._open(token).split("|")
        if parts[0] != "a" or len(parts) != 5:
            raise CursorError("a cursor of the change log, not of an article listing")
        if parts[4] != digest:
            raise CursorError("a cursor of another query: page with the parameters that issued it")
        return ArticleCursor(float(parts[1]), parts[2], Position.parse(parts[3]), parts[4])
