"""WebSub, the subscriber's side of the wire (W3C WebSub sections 5-8), pure.

- 5.1: the (un)subscription request we send a hub (:func:`request_form`);
- 5.2/5.3: the hub's GET to our callback, a denial or a verification of intent
  (:func:`read_intent`), and whether it matches what we asked for (:func:`confirms`);
- 7/8: a delivery's ``X-Hub-Signature`` (:func:`check_signature`: sha1, sha256, sha384, sha512,
  compared in constant time) and whether it carries content (:func:`classify`).

Callback URLs are ``{base_url}/push/{id}`` with an unguessable id per attempt; with the
per-attempt ``hub.secret`` they are capabilities, and neither is ever logged.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from service.hub.protocol import decode_unreserved
from service.models import PushStatus, PushSubscription
from service.store.push_state import LIVE_AT_HUB

CALLBACK_ID = re.compile(r"^[A-Za-z0-9_-]{32,64}$")
SIGNATURE_ALGORITHMS = {
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
}
MAX_REASON_CHARS = 300

IntentMode = Literal["subscribe", "unsubscribe", "denied"]


def new_callback_id() -> str:
    return secrets.token_urlsafe(24)  # 32 characters, 192 bits


def new_secret() -> str:
    return secrets.token_urlsafe(32)  # 43 characters: within the spec's 200 bytes


def callback_url(base_url: str, callback_id: str) -> str:
    return f"{base_url}/push/{callback_id}"


def request_form(
    mode: Literal["subscribe", "unsubscribe"],
    topic: str,
    callback: str,
    *,
    lease_seconds: int | None = None,
    secret: str | None = None,
) -> dict[str, str]:
    """Spec 5.1: the form POSTed to the hub. The secret goes to http hubs too: without it any
    deliverer who learns the callback URL could feed us items, and it rides the same channel."""
    form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
    if mode == "subscribe":
        if lease_seconds is not None:
            form["hub.lease_seconds"] = str(lease_seconds)
        if secret is not None:
            form["hub.secret"] = secret
    return form


# -- the hub's GET at our callback -----------------------------------------------------------


@dataclass(frozen=True)
class Intent:
    """A verification of intent (5.3) or a denial (5.2) as the hub sent it."""

    mode: IntentMode
    topic: str
    challenge: str | None = None
    lease_seconds: int | None = None
    reason: str | None = None


def read_intent(query: Mapping[str, str]) -> Intent | None:
    """The hub's query parameters, or None when they are not a verification or a denial."""
    mode = query.get("hub.mode", "")
    topic = query.get("hub.topic", "")
    if not topic or mode not in ("subscribe", "unsubscribe", "denied"):
        return None
    if mode == "denied":
        return Intent("denied", topic, reason=(query.get("hub.reason") or "")[:MAX_REASON_CHARS] or None)
    challenge = query.get("hub.challenge", "")
    if not challenge or len(challenge) > 1024:
        return None
    lease = query.get("hub.lease_seconds", "")
    lease_seconds = int(lease) if lease.isascii() and lease.isdigit() and 0 < len(lease) <= 12 else None
    return Intent(mode, topic, challenge, lease_seconds)  # type: ignore[arg-type]


def same_topic(a: str, b: str) -> bool:
    """Two spellings of one URL (percent-encoded unreserved characters) are one topic."""
    return decode_unreserved(a) == decode_unreserved(b)


def confirms(push: PushSubscription | None, callback_id: str, intent: Intent) -> bool:
    """Spec 5.3.1: answer the challenge only for a request we made and still want: the
    callback's current attempt, its topic, and a mode that matches where it stands."""
    if push is None or push.id != callback_id or not same_topic(push.topic, intent.topic):
        return False
    if intent.mode == "unsubscribe":
        return push.status is PushStatus.UNSUBSCRIBING
    # A subscribe (first or renewal); or a denial, which spec 5.2 allows at any time.
    return push.status in LIVE_AT_HUB


# -- deliveries --------------------------------------------------------------------------------


class SignatureCheck(StrEnum):
    VALID = "valid"
    MISSING = "missing"  # subscribed with a secret, delivered without a signature
    UNSUPPORTED = "unsupported"  # an algorithm the spec does not list
    BAD = "bad"


def check_signature(header: str | None, secret: str, body: bytes) -> SignatureCheck:
    """Spec 8: ``X-Hub-Signature: method=signature`` over the exact body, keyed with our secret."""
    if not header:
        return SignatureCheck.MISSING
    method, _, given = header.strip().partition("=")
    digest = SIGNATURE_ALGORITHMS.get(method.strip().lower())
    if digest is None:
        return SignatureCheck.UNSUPPORTED
    expected = hmac.new(secret.encode(), body, digest).hexdigest()
    if hmac.compare_digest(expected.encode(), given.strip().lower().encode("ascii", "replace")):
        return SignatureCheck.VALID
    return SignatureCheck.BAD


class Ping(StrEnum):
    FAT = "fat"  # the delivery carries the feed's new content: ingest it
    THIN = "thin"  # the delivery only says the feed changed: poll it


def classify(body: bytes) -> Ping:
    """A body with any content is a fat ping (spec 7: the hub sends the topic's content); an
    empty one only announces a change."""
    return Ping.FAT if body.strip() else Ping.THIN
