"""WebSub hub, the pure part: read a subscriber's request, resolve topics, lease, signatures.

W3C WebSub (https://www.w3.org/TR/websub/) sections 5.1 (request), 5.2 (denial), 5.3
(verification of intent) and 7 (content distribution). No I/O here: the endpoint
(``service/web/hub_endpoint.py``), the Redis side (``service/hub/subscriptions.py``) and the worker side
(``workers/hub/deliveries.py``) all decide with these functions.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Literal
from urllib.parse import urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from service.config import Settings, WebSubConfig
from service.feeds.merge import FORMATS
from service.models import UtcDatetime
from service.urls import is_public_address

MAX_SECRET_BYTES = 199  # spec 5.1: hub.secret MUST be less than 200 bytes
NEGOTIATED_FORMAT = "atom"  # what `/feeds/{name}` serves without an Accept header
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_TOPIC_PATH = re.compile(r"^/feeds/(?P<name>[a-z0-9][a-z0-9-]*)(?:\.(?P<fmt>[a-z]+))?$")

Mode = Literal["subscribe", "unsubscribe"]


class HubRequestError(ValueError):
    """A subscription request the hub refuses outright (400 with this text)."""


class Topic(BaseModel):
    """A topic URL resolved to the merged feed and format it publishes."""

    model_config = ConfigDict(frozen=True)

    url: str
    feed: str
    fmt: str


class HubRequest(BaseModel):
    """A subscriber's (un)subscription request, parked in Redis until intent is verified."""

    model_config = ConfigDict(frozen=True)

    id: str
    seq: int  # hub-wide order: of two verified requests for one topic + callback, the later wins
    mode: Mode
    topic: Topic
    callback: str
    lease_seconds: int | None = None  # as asked; clamped at verification time
    secret: str | None = Field(None, repr=False)  # never in logs or reprs
    received: UtcDatetime

    @property
    def subscription_id(self) -> str:
        return subscription_id(self.topic.url, self.callback)


class Subscription(BaseModel):
    """A verified subscription; the hub delivers to it until ``expires``."""

    model_config = ConfigDict(frozen=True)

    id: str
    topic: Topic
    callback: str
    secret: str | None = Field(None, repr=False)
    lease_seconds: int
    expires: UtcDatetime
    seq: int

    def live(self, now: datetime) -> bool:
        return now < self.expires


def decode_unreserved(url: str) -> str:
    """Spec 5.1.1: percent-encoded unreserved characters are decoded (``%7E`` -> ``~``), so two
    spellings of one URL are one topic / one callback; reserved ones stay encoded."""

    def unescape(match: re.Match[str]) -> str:
        char = chr(int(match[1], 16))
        return char if char in _UNRESERVED else match[0]

    return _PERCENT.sub(unescape, url)


def subscription_id(topic_url: str, callback: str) -> str:
    """Spec 5.1: state is per topic URL + callback URL combination."""
    return hashlib.sha256(f"{topic_url}\n{callback}".encode()).hexdigest()[:32]


def resolve_topic(settings: Settings, topic_url: str) -> Topic | None:
    """``{base_url}/feeds/{name}.{fmt}`` or the negotiated ``{base_url}/feeds/{name}``; else None.

    Only the shape is checked here; whether the feed exists is decided at verification time
    (an unknown feed gets a ``hub.mode=denied`` callback, spec 5.2).
    """
    base = settings.server.base_url
    if not topic_url.startswith(base + "/"):
        return None
    rest = topic_url[len(base) :]
    if "?" in rest or "#" in rest:
        return None
    match = _TOPIC_PATH.match(rest)
    if match is None:
        return None
    fmt = match["fmt"] or NEGOTIATED_FORMAT
    if fmt not in FORMATS:
        return None
    return Topic(url=topic_url, feed=match["name"], fmt=fmt)


def topic_denial(settings: Settings, topic: Topic) -> str | None:
    """Why the hub will not serve this topic (sent as ``hub.reason``), or None when it will."""
    if settings.feed(topic.feed) is None:
        return f"no merged feed named {topic.feed!r} on this hub"
    return None


def check_callback(callback: str, max_length: int) -> str:
    """An absolute http(s) URL with a host, within ``max_length``; returned as given."""
    if not callback:
        raise HubRequestError("hub.callback is required")
    if len(callback) > max_length:
        raise HubRequestError(f"hub.callback is longer than {max_length} characters")
    try:
        parts = urlsplit(callback)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise HubRequestError("hub.callback is not a valid URL") from exc
    if parts.scheme not in ("http", "https"):
        raise HubRequestError("hub.callback must be an http or https URL")
    if not parts.hostname:
        raise HubRequestError("hub.callback has no host")
    if any(ch.isspace() or ord(ch) < 0x20 for ch in callback):
        raise HubRequestError("hub.callback contains whitespace or control characters")
    return callback


def callback_host(callback: str) -> str:
    """The callback's host, lowercased (what budgets and caps are kept per); "?" when unreadable.
    Also all a log may say about a callback: the path and query are a capability."""
    try:
        return urlsplit(callback).hostname or "?"
    except ValueError:
        return "?"


def private_callback(callback: str) -> str | None:
    """Why the callback is known to be private without asking DNS (an IP literal that is not
    public, or a ``localhost`` name, RFC 6761), else None. Such a callback is refused at once
    unless ``[fetch] allow_private_networks``; a name that resolves privately is refused by the
    fetch guard at verification instead."""
    host = callback_host(callback)
    if host == "localhost" or host.endswith(".localhost"):
        return f"hub.callback host {host} is a loopback name"
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None  # a name: only DNS can tell
    return None if is_public_address(host) else f"hub.callback address {host} is not a public address"


def parse_lease(raw: str | None) -> int | None:
    """``hub.lease_seconds`` as asked: a positive decimal integer, or absent."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12 or int(raw) <= 0:
        raise HubRequestError("hub.lease_seconds must be a positive integer")
    return int(raw)


def clamp_lease(asked: int | None, config: WebSubConfig) -> int:
    """Spec 5.3.1: the hub picks the lease; never perpetual."""
    if asked is None:
        return config.default_lease_seconds
    return max(config.min_lease_seconds, min(config.max_lease_seconds, asked))


def parse_hub_request(
    form: Mapping[str, str], settings: Settings, *, request_id: str, seq: int, received: datetime
) -> HubRequest:
    """The form of ``POST /hub`` -> a request to verify, or :class:`HubRequestError`.

    Unknown parameters are ignored (spec 5.1). The secret is only checked for length.
    """
    mode = form.get("hub.mode", "")
    if mode not in ("subscribe", "unsubscribe"):
        raise HubRequestError("hub.mode must be 'subscribe' or 'unsubscribe'")
    topic_url = decode_unreserved(form.get("hub.topic", ""))
    if not topic_url:
        raise HubRequestError("hub.topic is required")
    topic = resolve_topic(settings, topic_url)
    if topic is None:
        raise HubRequestError(
            f"hub.topic must be a merged feed of this hub: {settings.server.base_url}/feeds/NAME.rss|.atom|.json"
        )
    callback = check_callback(decode_unreserved(form.get("hub.callback", "")), settings.websub.max_callback_length)
    lease = parse_lease(form.get("hub.lease_seconds")) if mode == "subscribe" else None
    secret = form.get("hub.secret") or None
    if mode == "unsubscribe":
        secret = None
    elif secret is not None and len(secret.encode()) > MAX_SECRET_BYTES:
        raise HubRequestError("hub.secret must be less than 200 bytes")
    return HubRequest(
        id=request_id,
        seq=seq,
        mode=mode,
        topic=topic,
        callback=callback,
        lease_seconds=lease,
        secret=secret,
        received=received,
    )


def with_query(url: str, params: Mapping[str, str]) -> str:
    """Spec 5.1.1: keep the callback's own query string and append ours with ``&``."""
    base = url.partition("#")[0]  # a fragment is never sent; drop it rather than append after it
    separator = "&" if "?" in base else "?"
    if base.endswith(("?", "&")):
        separator = ""
    return base + separator + urlencode(params)


def verification_params(request: HubRequest, challenge: str, lease_seconds: int) -> dict[str, str]:
    params = {"hub.mode": request.mode, "hub.topic": request.topic.url, "hub.challenge": challenge}
    if request.mode == "subscribe":
        params["hub.lease_seconds"] = str(lease_seconds)
    return params


def denial_params(request: HubRequest, reason: str) -> dict[str, str]:
    return {"hub.mode": "denied", "hub.topic": request.topic.url, "hub.reason": reason}


def challenge_echoed(status: int, body: bytes, challenge: str) -> bool:
    """Spec 5.3.1: only a 2xx whose body is the challenge (surrounding whitespace tolerated)."""
    return 200 <= status < 300 and body.strip() == challenge.encode()


def signature(secret: str, body: bytes) -> str:
    """``X-Hub-Signature`` value (spec 7.1): ``sha256=`` + hex HMAC of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def link_header(hub_url: str, topic_url: str) -> str:
    """Spec 7: one Link header carrying rel=hub and rel=self."""
    return f'<{hub_url}>; rel="hub", <{topic_url}>; rel="self"'


def hub_url(settings: Settings) -> str:
    return settings.server.base_url + "/hub"


def retry_delay(config: WebSubConfig, attempt: int) -> float:
    """Exponential backoff before try ``attempt + 1``: base, 2*base, 4*base ... capped."""
    return min(config.retry_max_seconds, config.retry_base_seconds * 2.0 ** max(0, attempt - 1))
