"""Push ingest, the pure parts, table by table: hub discovery (fixtures in tests/data/push with
what each must yield), Link headers, signatures, pings, verification of intent, a
subscription's timing (renewal, retries, fallback, leaving), misses, and the poll's decision
with push on."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.config import FetchConfig, PushConfig, SourceConfig, looks_public, settings_from_dict
from service.models import PushStatus, PushSubscription, SourceState
from service.push import lifecycle
from service.push.discovery import HubLink, discover, parse_link_header
from service.push.lifecycle import Action
from service.push.subscriber_protocol import (
    Intent,
    Ping,
    SignatureCheck,
    check_signature,
    classify,
    confirms,
    read_intent,
    request_form,
)
from service.store.push_state import PushTransition
from workers.fetch.client import FetchResult, folded_headers
from workers.parse import parse_feed
from workers.poll.decision import BodyFindings, PollRequest, decide_poll
from workers.poll.publisher_hints import FeedHints

DATA = Path(__file__).parent / "data" / "push"
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONFIG = PushConfig(lease_seconds=3600, verify_within_seconds=600, retry_seconds=100, retry_max_seconds=1000)
HUB, TOPIC = "https://hub.example/", "https://pub.example/feed"


def at(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def sub(status: PushStatus = PushStatus.ACTIVE, **fields: Any) -> PushSubscription:
    base: dict[str, Any] = {"status": status, "hub": HUB, "topic": TOPIC, "id": "c" * 32, "secret": "s" * 43}
    if status is PushStatus.ACTIVE:
        base |= {"verified_at": at(0), "active_since": at(0), "lease_seconds": 3600, "lease_end": at(3600)}
    return PushSubscription(**{**base, **fields})


# -- discovery ----------------------------------------------------------------------------------


CASES = json.loads((DATA / "cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_discovery_fixtures(case: dict[str, Any]) -> None:
    feed = parse_feed((DATA / case["file"]).read_bytes(), source_id="s", url=case["url"], content_type=None)
    assert (list(feed.hubs), feed.self_url) == (case["hubs"], case["self_url"])
    link = discover(case["headers"], feed.hubs, feed.self_url, case["url"])
    assert (None if link is None else {"hub": link.hub, "topic": link.topic}) == case["expected"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://h/>; rel="hub"', [("https://h/", {"hub"})]),
        ("<https://h/>; REL=Hub", [("https://h/", {"hub"})]),
        ('<https://h/>; rel="hub self"', [("https://h/", {"hub", "self"})]),
        (
            '<https://h/a;b,c>; rel="hub", <https://s/>; rel=self',
            [("https://h/a;b,c", {"hub"}), ("https://s/", {"self"})],
        ),
        ('<https://h/>; title="a, b; c"; rel="hub"', [("https://h/", {"hub"})]),
        ('<https://h/>; title="say \\"hi\\", ok"; rel="hub"', [("https://h/", {"hub"})]),
        ('<https://h/>; rel="hub"; rel="self"', [("https://h/", {"hub"})]),  # only the first rel counts
        ('garbage, <https://h/>; rel="hub"', [("https://h/", {"hub"})]),
        ('<https://h/>; rel="hub" junk, <https://s/>; rel="self"', [("https://h/", {"hub"}), ("https://s/", {"self"})]),
        ("<https://h/>", [("https://h/", set())]),
        ("<unterminated; rel=hub", []),
        ("", []),
    ],
)
def test_link_headers(header: str, expected: list[tuple[str, set[str]]]) -> None:
    assert [(link.target, set(link.rels)) for link in parse_link_header(header)] == expected


def test_link_header_parsing_is_bounded() -> None:
    assert len(parse_link_header(", ".join(f'<https://h/{n}>; rel="hub"' for n in range(1000)))) == 64


def test_repeated_headers_are_joined() -> None:
    folded = folded_headers([("Link", '<https://h/>; rel="hub"'), ("link", '<https://s/>; rel="self"'), ("ETag", "x")])
    assert folded == {"link": '<https://h/>; rel="hub", <https://s/>; rel="self"', "etag": "x"}
    assert discover(folded, (), None, "https://pub/") == HubLink("https://h/", "https://s/")


@pytest.mark.parametrize(
    ("hub", "found"),
    [
        ("https://h/", True),
        ("//h/x", True),  # scheme-relative: the feed's scheme
        ("ftp://h/", False),
        ("javascript:alert(1)", False),
        ("http:///nohost", False),
        ("https://h:99999/", False),
        ("https://h/" + "a" * 3000, False),
        ("https://h/a b", False),
    ],
)
def test_only_web_urls_are_hubs(hub: str, found: bool) -> None:
    assert (discover({}, (hub,), None, "https://pub/feed") is not None) is found


# -- the wire ------------------------------------------------------------------------------------


def signed(algorithm: str, body: bytes, key: str = "k") -> str:
    return f"{algorithm}=" + hmac.new(key.encode(), body, getattr(hashlib, algorithm)).hexdigest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (signed("sha1", b"body"), SignatureCheck.VALID),
        (signed("sha256", b"body"), SignatureCheck.VALID),
        (signed("sha384", b"body"), SignatureCheck.VALID),
        (signed("sha512", b"body"), SignatureCheck.VALID),
        (signed("sha256", b"body").upper().replace("SHA256=", "sha256="), SignatureCheck.VALID),  # hex case
        (" " + signed("sha256", b"body") + " ", SignatureCheck.VALID),
        (signed("sha256", b"other body"), SignatureCheck.BAD),
        (signed("sha256", b"body", key="wrong"), SignatureCheck.BAD),
        ("sha256=", SignatureCheck.BAD),
        ("sha256=zz\u00e9", SignatureCheck.BAD),
        (signed("md5", b"body"), SignatureCheck.UNSUPPORTED),
        ("nonsense", SignatureCheck.UNSUPPORTED),
        ("", SignatureCheck.MISSING),
        (None, SignatureCheck.MISSING),
    ],
)
def test_signatures(header: str | None, expected: SignatureCheck) -> None:
    assert check_signature(header, "k", b"body") is expected


@pytest.mark.parametrize(("body", "ping"), [(b"", Ping.THIN), (b" \r\n", Ping.THIN), (b"<rss/>", Ping.FAT)])
def test_fat_or_thin(body: bytes, ping: Ping) -> None:
    assert classify(body) is ping


def test_request_form() -> None:
    form = request_form("subscribe", TOPIC, "https://us/push/x", lease_seconds=60, secret="s")
    assert form == {
        "hub.mode": "subscribe",
        "hub.topic": TOPIC,
        "hub.callback": "https://us/push/x",
        "hub.lease_seconds": "60",
        "hub.secret": "s",
    }
    assert "hub.secret" not in request_form("unsubscribe", TOPIC, "https://us/push/x", secret="s")


@pytest.mark.parametrize(
    ("query", "intent"),
    [
        (
            {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c", "hub.lease_seconds": "60"},
            Intent("subscribe", TOPIC, "c", 60),
        ),
        (
            {"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c", "hub.lease_seconds": "-1"},
            Intent("subscribe", TOPIC, "c", None),
        ),
        ({"hub.mode": "unsubscribe", "hub.topic": TOPIC, "hub.challenge": "c"}, Intent("unsubscribe", TOPIC, "c")),
        (
            {"hub.mode": "denied", "hub.topic": TOPIC, "hub.reason": "r" * 400},
            Intent("denied", TOPIC, reason="r" * 300),
        ),
        ({"hub.mode": "subscribe", "hub.topic": TOPIC}, None),  # no challenge
        ({"hub.mode": "subscribe", "hub.topic": TOPIC, "hub.challenge": "c" * 2000}, None),
        ({"hub.mode": "publish", "hub.topic": TOPIC, "hub.challenge": "c"}, None),
        ({"hub.mode": "subscribe", "hub.challenge": "c"}, None),
    ],
)
def test_reading_the_hubs_get(query: dict[str, str], intent: Intent | None) -> None:
    assert read_intent(query) == intent


@pytest.mark.parametrize(
    ("push", "callback", "intent", "confirmed"),
    [
        (sub(PushStatus.PENDING), "c" * 32, Intent("subscribe", TOPIC, "x"), True),
        (sub(), "c" * 32, Intent("subscribe", TOPIC, "x"), True),  # a renewal
        (sub(), "c" * 32, Intent("subscribe", "https://pub.example/%66eed", "x"), True),  # same URL, spelled otherwise
        (sub(PushStatus.FALLBACK), "c" * 32, Intent("subscribe", TOPIC, "x"), True),
        (sub(), "d" * 32, Intent("subscribe", TOPIC, "x"), False),  # another attempt's callback
        (sub(), "c" * 32, Intent("subscribe", TOPIC + "?x", "x"), False),  # another topic
        (sub(), "c" * 32, Intent("unsubscribe", TOPIC, "x"), False),  # we never asked to leave
        (sub(PushStatus.UNSUBSCRIBING), "c" * 32, Intent("unsubscribe", TOPIC, "x"), True),
        (sub(PushStatus.UNSUBSCRIBING), "c" * 32, Intent("subscribe", TOPIC, "x"), False),
        (sub(PushStatus.FAILED), "c" * 32, Intent("subscribe", TOPIC, "x"), False),  # given up on
        (sub(PushStatus.DENIED), "c" * 32, Intent("denied", TOPIC), False),
        (sub(PushStatus.PENDING), "c" * 32, Intent("denied", TOPIC), True),
        (None, "c" * 32, Intent("subscribe", TOPIC, "x"), False),
    ],
)
def test_verification_of_intent(push: PushSubscription | None, callback: str, intent: Intent, confirmed: bool) -> None:
    assert confirms(push, callback, intent) is confirmed


# -- a subscription's timing ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("push", "now", "wanted", "action", "due"),
    [
        (sub(PushStatus.DISCOVERED, id=None, discovered_at=at(0)), at(0), True, Action.SUBSCRIBE, at(0)),
        (sub(PushStatus.PENDING, requested_at=at(0)), at(599), True, Action.WAIT, at(600)),
        (sub(PushStatus.PENDING, requested_at=at(0)), at(600), True, Action.GIVE_UP, at(600)),
        (sub(), at(2879), True, Action.WAIT, at(2880)),  # renew at 80 % of the lease
        (sub(), at(2880), True, Action.RENEW, at(2880)),
        (sub(requested_at=at(2880)), at(3000), True, Action.WAIT, at(3480)),  # renewal awaiting verification
        (sub(requested_at=at(3300)), at(3600), True, Action.RESUBSCRIBE_EXPIRED, at(3600)),  # capped by the lease
        (sub(retry_at=at(3000), requested_at=at(2880)), at(3000), True, Action.RENEW, at(3000)),  # renewal failed
        (sub(lease_seconds=None, lease_end=None), at(2880), True, Action.RESUBSCRIBE_EXPIRED, at(2880)),
        (sub(PushStatus.FALLBACK, fallback_until=at(86400)), at(86399), True, Action.WAIT, at(86400)),
        (sub(PushStatus.FALLBACK, fallback_until=at(86400)), at(86400), True, Action.SUBSCRIBE, at(86400)),
        (sub(PushStatus.FAILED, retry_at=at(100)), at(100), True, Action.SUBSCRIBE, at(100)),
        (sub(PushStatus.DENIED, retry_at=at(1000)), at(10), True, Action.WAIT, at(1000)),
        (sub(), at(10), False, Action.LEAVE, at(2880)),
        (sub(PushStatus.UNSUBSCRIBING), at(10), False, Action.UNSUBSCRIBE, lifecycle.EPOCH),
        (sub(PushStatus.UNSUBSCRIBING, requested_at=at(0)), at(10), True, Action.WAIT, at(600)),
        (sub(PushStatus.UNSUBSCRIBING, requested_at=at(0)), at(600), False, Action.FORGET, at(600)),
    ],
)
def test_plan_and_due(push: PushSubscription, now: datetime, wanted: bool, action: Action, due: datetime) -> None:
    assert lifecycle.plan(push, now, wanted, CONFIG) is action
    assert lifecycle.due_at(push, CONFIG) == due


@pytest.mark.parametrize(("failures", "seconds"), [(1, 100), (2, 200), (4, 800), (5, 1000), (30, 1000)])
def test_retry_backoff(failures: int, seconds: int) -> None:
    assert lifecycle.retry_delay(CONFIG, failures) == timedelta(seconds=seconds)


def test_transitions_name_their_condition_and_next_look() -> None:
    pending = sub(PushStatus.DISCOVERED, id=None, discovered_at=at(0), failures=2, deliveries=7)
    change = lifecycle.requested(pending, at(5), CONFIG, callback_id="n" * 32, secret="t" * 43)
    assert change.when_status == {PushStatus.DISCOVERED} and change.when_id is None and change.due == at(605)
    after = lifecycle.applied(pending, change)
    assert after is not None and (after.status, after.id, after.secret) == (PushStatus.PENDING, "n" * 32, "t" * 43)
    assert (after.failures, after.deliveries) == (2, 7)  # counters outlive attempts

    verified = lifecycle.applied(after, lifecycle.verified(after, 500, at(10), CONFIG))
    assert verified is not None and verified.status is PushStatus.ACTIVE and verified.failures == 0
    assert (verified.lease_end, verified.active_since) == (at(510), at(10))
    assert lifecycle.verified(after, None, at(10), CONFIG).fields["lease_seconds"] == 3600  # no lease stated: ours

    failed = lifecycle.applied(after, lifecycle.request_failed(after, "HTTP 500", at(10), CONFIG))
    assert failed is not None and failed.status is PushStatus.FAILED and failed.retry_at == at(10 + 400)

    renewal_failed = lifecycle.request_failed(sub(failures=0), "HTTP 500", at(2880), CONFIG)
    assert renewal_failed.fields.get("status") is None and renewal_failed.due == at(2980)  # still active, retried

    missed = lifecycle.missed(sub(), "why", at(100), CONFIG)
    assert missed.incr == {"misses": 1} and missed.when_status == {PushStatus.ACTIVE}
    assert missed.due == at(100 + CONFIG.fallback_seconds)


def test_transition_wire_format() -> None:
    change = PushTransition(
        {"status": PushStatus.ACTIVE, "lease_end": at(1), "error": None, "lease_seconds": 60},
        {"deliveries": 1},
        when_status=frozenset({PushStatus.PENDING, PushStatus.ACTIVE}),
        when_id="x",
        due=at(2),
    )
    assert change.args() == [
        "active,pending",
        "x",
        "3",
        "status",
        "active",
        "lease_end",
        at(1).isoformat(),
        "lease_seconds",
        "60",
        "1",
        "error",
        "1",
        "deliveries",
        "1",
        repr(at(2).timestamp()),
    ]


# -- misses and the backup pull ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("push", "new", "previous_success", "previous_poll", "now", "missed"),
    [
        (sub(), 2, at(0), at(0), at(600), True),
        (sub(), 0, at(0), at(0), at(600), False),  # nothing new
        (None, 2, at(0), at(0), at(600), False),
        (sub(PushStatus.PENDING), 2, at(0), at(0), at(600), False),  # not live
        (sub(), 2, at(0), at(0), at(3600), False),  # the lease has ended
        (sub(active_since=at(10)), 2, at(0), at(0), at(600), False),  # push did not cover the whole gap
        (sub(), 2, None, None, at(600), False),  # the first success
        (sub(last_thin_ping=at(300)), 2, at(0), at(0), at(600), False),  # a thin ping announced it
        (sub(last_thin_ping=at(300)), 2, at(400), at(400), at(600), True),  # that ping was answered before
        (sub(last_delivery=at(590)), 2, at(0), at(0), at(600), False),  # a delivery may still be on its way
        (sub(last_delivery=at(500)), 2, at(0), at(0), at(600), True),
    ],
)
def test_misses(
    push: PushSubscription | None,
    new: int,
    previous_success: datetime | None,
    previous_poll: datetime | None,
    now: datetime,
    missed: bool,
) -> None:
    assert (lifecycle.miss_reason(push, new, previous_success, previous_poll, now) is not None) is missed


SOURCE = SourceConfig(id="s", url="https://pub.example/feed", interval_seconds=600, adaptive=False)
FETCH = FetchConfig(jitter_fraction=0)
LINK = HubLink(HUB, TOPIC)


def poll(state: SourceState, found: BodyFindings, push: PushConfig | None = CONFIG):  # type: ignore[no-untyped-def]
    response = FetchResult(url=SOURCE.url, status=200, headers={})
    return decide_poll(SOURCE, state, PollRequest(SOURCE.url), response, found, at(600), FETCH, push)


def test_the_poll_records_a_new_hub() -> None:
    decision = poll(SourceState(), BodyFindings(new=1, hub=LINK, feed=FeedHints(None, ())))
    assert decision.push.discovered == LINK and decision.push.change is not None
    assert decision.state.push is not None and decision.state.push.status is PushStatus.DISCOVERED
    assert decision.push.change.due == at(600) and decision.next_poll is not None
    assert decision.next_poll.reason == "interval"
    # The same hub again: nothing to do; another hub or topic: discovered afresh.
    assert poll(SourceState(push=sub()), BodyFindings(hub=LINK)).push.change is None
    moved = poll(SourceState(push=sub()), BodyFindings(hub=HubLink("https://other-hub/", TOPIC)))
    assert moved.push.discovered is not None and moved.state.push is not None
    assert moved.state.push.id is None and moved.state.push.status is PushStatus.DISCOVERED
    # Push switched off: nothing recorded, the pull as usual.
    off = poll(SourceState(push=sub()), BodyFindings(hub=LINK), push=None)
    assert off.push.change is None and off.next_poll is not None and off.next_poll.reason == "interval"


def test_the_poll_is_a_backup_while_push_is_live_and_falls_back_on_a_miss() -> None:
    state = SourceState(push=sub(), last_success=at(0), last_poll=at(0))
    quiet = poll(state, BodyFindings(unchanged=5, hub=LINK))
    assert quiet.next_poll is not None and quiet.next_poll.reason == "push-backup"
    assert quiet.next_poll.at == at(600 + CONFIG.backup_poll_seconds) and quiet.push.change is None

    missed = poll(state, BodyFindings(new=2, hub=LINK))
    assert missed.push.missed == "a pull found 2 new article(s) that push had not delivered"
    assert missed.state.push is not None and missed.state.push.status is PushStatus.FALLBACK
    assert missed.next_poll is not None and missed.next_poll.reason == "interval"

    failing = poll(state, BodyFindings(hub=LINK))  # a body read: the pull stays a backup
    assert failing.next_poll is not None and failing.next_poll.reason == "push-backup"


@pytest.mark.parametrize(
    ("url", "public"),
    [
        ("https://feeds.example.com", True),
        ("http://203.0.113.9:8080", False),  # documentation range: not global
        ("http://8.8.8.8", True),
        ("http://127.0.0.1:8080", False),
        ("http://localhost:8080", False),
        ("http://[::1]:8080", False),
        ("http://10.0.0.5", False),
        ("http://intranet", False),
        ("http://box.local", False),
        ("http://box.internal", False),
    ],
)
def test_push_is_on_by_default_only_where_hubs_can_call_back(url: str, public: bool) -> None:
    assert looks_public(url) is public
    settings = settings_from_dict({"server": {"base_url": url}})
    assert settings.push_enabled is public
    assert settings_from_dict({"server": {"base_url": url}, "push": {"enabled": True}}).push_enabled
