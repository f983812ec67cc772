"""The hub's pure decisions: topics, callbacks, leases, query strings, signatures, backoff."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.config import settings_from_dict
from service.errors import ConfigError
from service.hub.protocol import (
    HubRequestError,
    challenge_echoed,
    clamp_lease,
    link_header,
    parse_hub_request,
    resolve_topic,
    retry_delay,
    signature,
    subscription_id,
    with_query,
)

SETTINGS = settings_from_dict(
    {"server": {"base_url": "https://agg.example/"}, "feeds": [{"name": "news", "title": "N"}]}
)
NOW = datetime(2026, 11, 25, tzinfo=UTC)


def parse(**form: str):  # type: ignore[no-untyped-def]
    return parse_hub_request({f"hub.{k}": v for k, v in form.items()}, SETTINGS, request_id="r", seq=1, received=NOW)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://agg.example/feeds/news.rss", ("news", "rss")),
        ("https://agg.example/feeds/news.json", ("news", "json")),
        ("https://agg.example/feeds/news", ("news", "atom")),  # negotiated; Atom by default
        ("https://agg.example/feeds/other.atom", ("other", "atom")),  # shape only; existence is checked later
        ("https://agg.example/feeds/news.xml", None),
        ("https://agg.example/feeds/news.rss?tag=x", None),
        ("https://agg.example/feeds/", None),
        ("https://agg.example.evil/feeds/news.rss", None),
        ("http://agg.example/feeds/news.rss", None),
        ("https://agg.example/feeds/../hub", None),
    ],
)
def test_resolve_topic(url: str, expected: tuple[str, str] | None) -> None:
    topic = resolve_topic(SETTINGS, url)
    assert (None if topic is None else (topic.feed, topic.fmt)) == expected


def test_parse_subscribe_and_unsubscribe() -> None:
    request = parse(
        mode="subscribe",
        topic="https://agg.example/feeds/news.rss",
        callback="https://sub.example/cb?x=1",
        lease_seconds="600",
        secret="é" * 99,
    )  # 198 bytes: allowed
    assert request.lease_seconds == 600 and request.secret == "é" * 99 and request.topic.fmt == "rss"
    assert "é" not in repr(request)  # the secret stays out of reprs (and so out of logs)
    assert request.subscription_id == subscription_id(
        "https://agg.example/feeds/news.rss", "https://sub.example/cb?x=1"
    )
    unsub = parse(
        mode="unsubscribe",
        topic="https://agg.example/feeds/news.rss",
        callback="https://sub.example/cb",
        lease_seconds="nonsense",
        secret="x",
    )
    assert unsub.lease_seconds is None and unsub.secret is None  # both ignored for unsubscribe (spec 5.1)


def test_unreserved_characters_are_decoded() -> None:
    request = parse(
        mode="subscribe", topic="https://agg.example/feeds/%6Eews.rss", callback="https://s.example/%7Eme/cb?q=a%2Fb"
    )
    assert request.topic.url == "https://agg.example/feeds/news.rss"
    assert request.callback == "https://s.example/~me/cb?q=a%2Fb"  # reserved "/" stays encoded


def test_secret_limit_is_in_bytes() -> None:
    with pytest.raises(HubRequestError, match="200 bytes"):
        parse(
            mode="subscribe",
            topic="https://agg.example/feeds/news.rss",
            callback="https://s.example/",
            secret="é" * 100,
        )


def test_lease_clamped_into_bounds() -> None:
    config = SETTINGS.websub
    assert clamp_lease(None, config) == 86400
    assert clamp_lease(1, config) == 300
    assert clamp_lease(10**9, config) == 864000
    assert clamp_lease(3600, config) == 3600


def test_lease_bounds_must_be_ordered() -> None:
    with pytest.raises(ConfigError, match="min_lease_seconds"):
        settings_from_dict({"websub": {"min_lease_seconds": 1000, "default_lease_seconds": 500}})


def test_with_query_keeps_the_callbacks_own_parameters() -> None:
    params = {"hub.mode": "subscribe", "hub.topic": "https://agg.example/feeds/news.rss"}
    assert with_query("https://s.example/cb", params) == (
        "https://s.example/cb?hub.mode=subscribe&hub.topic=https%3A%2F%2Fagg.example%2Ffeeds%2Fnews.rss"
    )
    assert (
        with_query("https://s.example/cb?id=7&hub.mode=x", {"hub.challenge": "c"})
        == "https://s.example/cb?id=7&hub.mode=x&hub.challenge=c"
    )
    assert with_query("https://s.example/cb?", {"a": "b"}) == "https://s.example/cb?a=b"
    assert with_query("https://s.example/cb#frag", {"a": "b"}) == "https://s.example/cb?a=b"


def test_challenge_must_be_echoed_by_a_2xx() -> None:
    assert challenge_echoed(200, b"abc", "abc")
    assert challenge_echoed(204, b"abc\n", "abc")
    assert not challenge_echoed(200, b"abcd", "abc")
    assert not challenge_echoed(302, b"abc", "abc")
    assert not challenge_echoed(404, b"abc", "abc")
    assert not challenge_echoed(200, b"", "abc")


def test_signature_is_hmac_sha256_hex() -> None:
    # RFC 4231 test case 2.
    assert signature("Jefe", b"what do ya want for nothing?") == (
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_link_header_names_hub_and_self() -> None:
    assert link_header("https://agg.example/hub", "https://agg.example/feeds/news.rss") == (
        '<https://agg.example/hub>; rel="hub", <https://agg.example/feeds/news.rss>; rel="self"'
    )


def test_backoff_doubles_and_is_capped() -> None:
    config = SETTINGS.websub.model_copy(update={"retry_base_seconds": 10, "retry_max_seconds": 60})
    assert [retry_delay(config, n) for n in range(1, 6)] == [10, 20, 40, 60, 60]
