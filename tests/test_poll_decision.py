"""The poll's pure decision, table by table: every status, every failure kind, moves, disabling and
re-enabling, the full-refetch cadence, publisher hints and the article count."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from service.config import FetchConfig, SourceConfig
from service.errors import ErrorKind, kind_for_status
from service.models import RedirectRecord, SourceState
from service.store.host_slots import Verdict
from workers.fetch.client import FetchResult
from workers.poll.decision import (
    BodyFindings,
    PollDecision,
    PollFailure,
    PollRequest,
    decide_deferred,
    decide_poll,
    plan_request,
)
from workers.poll.publisher_hints import FeedHints

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
FETCH = FetchConfig(jitter_fraction=0, max_consecutive_failures=5, disable_after_failing_days=30)
URL = "http://feeds.example/old.rss"
NEW_URL = "http://feeds.example/new.rss"
SOURCE = SourceConfig(id="s", url=URL, interval_seconds=600, adaptive=False)
KNOWN = SourceState(
    etag='"old"', last_modified="Mon, 23 Nov 2026 00:00:00 GMT", last_unconditional=NOW, articles_total=10
)
CONDITIONAL = PollRequest(URL, KNOWN.etag, KNOWN.last_modified, unconditional=False)
BODY = BodyFindings(new=3, updated=1, unchanged=2, feed=FeedHints(None, ()))
IN_3H = (NOW + timedelta(hours=3)).strftime("%a, %d %b %Y %H:%M:%S GMT")


def ok(
    status: int = 200, headers: Mapping[str, str] | None = None, redirects: tuple[tuple[int, str], ...] = ()
) -> FetchResult:
    final = redirects[-1][1] if redirects else URL
    return FetchResult(url=final, status=status, headers={"etag": '"new"', **(headers or {})}, redirects=redirects)


def error(status: int, headers: Mapping[str, str] | None = None) -> PollFailure:
    return PollFailure(kind_for_status(status), f"HTTP {status}", status, headers or {})


def decide(
    outcome: FetchResult | PollFailure,
    found: BodyFindings | PollFailure | None = None,
    state: SourceState = KNOWN,
    request: PollRequest = CONDITIONAL,
) -> PollDecision:
    before = state.model_copy(deep=True)
    decision = decide_poll(SOURCE, state, request, outcome, found, NOW, FETCH)
    assert state == before  # the input state is never changed in place
    return decision


@dataclass(frozen=True)
class Expect:
    seconds: int | None  # next poll from now; None: off the schedule
    reason: str
    kind: ErrorKind | None = None
    pause: int | None = None
    last_status: int | None = None


STATUS_CASES = {
    "200": (ok(), BODY, Expect(600, "interval", last_status=200)),
    "200 max-age": (ok(headers={"cache-control": "max-age=3600"}), BODY, Expect(3600, "cache", last_status=200)),
    "304": (ok(304), None, Expect(600, "interval", last_status=304)),
    "304 expires": (
        ok(304, {"date": "Wed, 25 Nov 2026 12:00:00 GMT", "expires": "Wed, 25 Nov 2026 14:00:00 GMT"}),
        None,
        Expect(7200, "cache", last_status=304),
    ),
    "301 moved": (ok(redirects=((301, NEW_URL),)), BODY, Expect(600, "interval", last_status=200)),
    "308 moved": (ok(redirects=((308, NEW_URL),)), BODY, Expect(600, "interval", last_status=200)),
    "401": (error(401), None, Expect(1200, "backoff", ErrorKind.AUTH, last_status=401)),
    "403": (error(403), None, Expect(1200, "backoff", ErrorKind.AUTH, last_status=403)),
    "404": (error(404), None, Expect(1200, "backoff", ErrorKind.NOT_FOUND, last_status=404)),
    "410": (error(410), None, Expect(None, "disabled", ErrorKind.GONE, last_status=410)),
    "400": (error(400), None, Expect(1200, "backoff", ErrorKind.CLIENT_ERROR, last_status=400)),
    "418": (error(418), None, Expect(1200, "backoff", ErrorKind.CLIENT_ERROR, last_status=418)),
    "429": (error(429), None, Expect(1200, "backoff", ErrorKind.RATE_LIMITED, last_status=429)),
    "429 retry-after seconds": (
        error(429, {"retry-after": "7200"}),
        None,
        Expect(7200, "retry-after", ErrorKind.RATE_LIMITED, 7200, 429),
    ),
    "429 retry-after date": (
        error(429, {"retry-after": IN_3H}),
        None,
        Expect(10800, "retry-after", ErrorKind.RATE_LIMITED, 10800, 429),
    ),
    "429 retry-after shorter than the backoff": (
        error(429, {"retry-after": "30"}),
        None,
        Expect(1200, "backoff", ErrorKind.RATE_LIMITED, 30, 429),
    ),
    "429 retry-after capped": (
        error(429, {"retry-after": str(10 * 86400)}),
        None,
        Expect(172800, "retry-after", ErrorKind.RATE_LIMITED, 172800, 429),
    ),
    "429 retry-after garbage": (
        error(429, {"retry-after": "soon"}),
        None,
        Expect(1200, "backoff", ErrorKind.RATE_LIMITED, None, 429),
    ),
    "500": (error(500), None, Expect(1200, "backoff", ErrorKind.SERVER, last_status=500)),
    "500 retry-after is not honoured": (
        error(500, {"retry-after": "3600"}),
        None,
        Expect(1200, "backoff", ErrorKind.SERVER, None, 500),
    ),
    "503 retry-after seconds": (
        error(503, {"retry-after": "3600"}),
        None,
        Expect(3600, "retry-after", ErrorKind.SERVER, 3600, 503),
    ),
    "503 retry-after date": (
        error(503, {"retry-after": IN_3H}),
        None,
        Expect(10800, "retry-after", ErrorKind.SERVER, 10800, 503),
    ),
}


@pytest.mark.parametrize(("outcome", "found", "expect"), STATUS_CASES.values(), ids=STATUS_CASES.keys())
def test_every_status(outcome: FetchResult | PollFailure, found: BodyFindings | None, expect: Expect) -> None:
    decision = decide(outcome, found)
    state = decision.state
    assert (state.last_status, state.last_error_kind, state.last_poll) == (expect.last_status, expect.kind, NOW)
    assert decision.pause_host_seconds == expect.pause
    assert state.next_poll_reason == expect.reason
    if expect.seconds is None:
        assert decision.next_poll is None and state.next_poll is None
    else:
        assert decision.next_poll is not None and decision.next_poll.reason == expect.reason
        assert decision.next_poll.at == state.next_poll == NOW + timedelta(seconds=expect.seconds)
    if expect.kind is None:
        assert (state.consecutive_failures, state.last_success, state.last_error, decision.failure) == (
            0,
            NOW,
            None,
            None,
        )
    else:
        assert decision.failure is not None and decision.failure.kind is expect.kind
        assert (state.consecutive_failures, state.failing_since, state.last_error_at) == (1, NOW, NOW)
        assert state.last_error == f"HTTP {expect.last_status}" and state.last_success is None
        assert state.etag == KNOWN.etag  # a failure keeps the validators


def test_a_200_saves_the_validators_and_counts_new_articles_a_304_does_not() -> None:
    fetched = decide(ok(headers={"last-modified": "Tue, 24 Nov 2026 00:00:00 GMT"}), BODY).state
    assert (fetched.etag, fetched.last_modified) == ('"new"', "Tue, 24 Nov 2026 00:00:00 GMT")
    assert fetched.articles_total == 13  # 10 before + 3 new; updated and unchanged do not count
    assert fetched.last_unconditional == KNOWN.last_unconditional  # a conditional request
    not_modified = decide(ok(304)).state
    assert (not_modified.etag, not_modified.articles_total, not_modified.last_success) == ('"old"', 10, NOW)
    failed = decide(ok(), PollFailure(ErrorKind.PARSE, "broken")).state
    assert (failed.etag, failed.articles_total) == ('"old"', 10)


@pytest.mark.parametrize(
    ("redirects", "current_url"),
    [
        (((301, NEW_URL),), NEW_URL),
        (((308, NEW_URL),), NEW_URL),
        (((301, "http://feeds.example/hop"), (308, NEW_URL)), NEW_URL),
        (((302, NEW_URL),), None),
        (((307, NEW_URL),), None),
        (((301, "http://feeds.example/hop"), (302, NEW_URL)), None),
    ],
)
def test_only_an_all_permanent_chain_moves_the_url(
    redirects: tuple[tuple[int, str], ...], current_url: str | None
) -> None:
    decision = decide(ok(redirects=redirects), BODY)
    assert decision.state.current_url == current_url
    if current_url is None:
        assert decision.moved is None and decision.state.redirects == []
    else:
        record = RedirectRecord(at=NOW, status=redirects[-1][0], from_url=URL, to_url=NEW_URL)
        assert decision.moved == record and decision.state.redirects == [record]


def test_a_move_back_to_the_configured_url_forgets_the_stored_one() -> None:
    moved = KNOWN.model_copy(update={"current_url": NEW_URL})
    decision = decide(ok(redirects=((301, URL),)), BODY, state=moved)
    assert decision.state.current_url is None and decision.moved is not None and decision.moved.from_url == NEW_URL
    assert decide(ok(redirects=((301, NEW_URL),)), BODY, state=moved).moved is None  # already known


def test_a_move_is_kept_even_when_the_body_then_fails() -> None:
    decision = decide(ok(redirects=((301, NEW_URL),)), PollFailure(ErrorKind.NOT_A_FEED, "an HTML page"))
    assert decision.state.current_url == NEW_URL and decision.state.last_error_kind is ErrorKind.NOT_A_FEED


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_failure_kind_is_recorded_with_backoff(kind: ErrorKind) -> None:
    cases: list[tuple[FetchResult | PollFailure, PollFailure | None, int | None]] = [
        (PollFailure(kind, "it failed"), None, None),  # from the fetch, no response
        (ok(), PollFailure(kind, "it failed"), 200),  # from reading a 200's body
    ]
    for outcome, found, status in cases:
        decision = decide(outcome, found)
        state = decision.state
        assert (state.last_error_kind, state.last_error, state.last_status) == (kind, "it failed", status)
        assert (state.consecutive_failures, state.failing_since) == (1, NOW)
        if kind is ErrorKind.GONE:
            assert decision.next_poll is None and decision.disable is not None
        else:
            assert decision.next_poll is not None and decision.next_poll.at == NOW + timedelta(seconds=1200)
            assert decision.disable is None and not state.disabled


@pytest.mark.parametrize(
    ("failures", "since_days", "reason"),
    [
        (3, 1, None),
        (4, 1, "5 consecutive failures"),
        (10, 1, "11 consecutive failures"),
        (1, 29, None),
        (1, 30, "failing since 2026-10-26T12:00:00+00:00"),
    ],
)
def test_disable_after_n_failures_or_d_days(failures: int, since_days: int, reason: str | None) -> None:
    failing = KNOWN.model_copy(
        update={"consecutive_failures": failures, "failing_since": NOW - timedelta(days=since_days)}
    )
    decision = decide(error(500), state=failing)
    assert decision.disable == reason
    state = decision.state
    if reason is None:
        assert not state.disabled and decision.next_poll is not None
    else:
        assert (state.disabled, state.disabled_reason, state.disabled_at) == (True, reason, NOW)
        assert decision.next_poll is None and state.next_poll is None and state.next_poll_reason == "disabled"


def test_gone_disables_at_once() -> None:
    decision = decide(error(410))
    assert decision.disable == "HTTP 410 Gone: the publisher removed the feed" and decision.next_poll is None


@pytest.mark.parametrize(("outcome", "found"), [(ok(), BODY), (ok(304), None)])
def test_a_success_re_enables_a_disabled_source(outcome: FetchResult, found: BodyFindings | None) -> None:
    disabled = KNOWN.model_copy(
        update={"disabled": True, "disabled_reason": "HTTP 410 Gone", "disabled_at": NOW, "consecutive_failures": 1}
    )
    decision = decide(outcome, found, state=disabled)
    assert decision.enable == "a successful poll" and decision.disable is None
    assert decision.next_poll is not None and decision.next_poll.at == NOW + timedelta(seconds=600)
    state = decision.state
    assert (state.disabled, state.disabled_reason, state.disabled_at, state.consecutive_failures) == (
        False,
        None,
        None,
        0,
    )


@pytest.mark.parametrize(
    "left",
    [
        {"consecutive_failures": 2},
        {"last_error": "HTTP 500"},
        {"last_error_kind": ErrorKind.SERVER},
        {"failing_since": NOW - timedelta(days=1)},
        {"disabled_reason": "by hand"},
        {"disabled_at": NOW},
    ],
)
@pytest.mark.parametrize(("outcome", "found"), [(ok(), BODY), (ok(304), None)])
def test_a_success_clears_whatever_a_failure_left(
    left: dict[str, object], outcome: FetchResult, found: BodyFindings | None
) -> None:
    """Each field a failure leaves is cleared by a success, even alone (a state a manual edit or
    an older version left): a success changes only what it must, so each is checked."""
    state = decide(outcome, found, state=KNOWN.model_copy(update=left)).state
    assert (state.consecutive_failures, state.last_error, state.last_error_kind, state.failing_since) == (
        0,
        None,
        None,
        None,
    )
    assert (state.disabled, state.disabled_reason, state.disabled_at) == (False, None, None)


def test_a_disabled_source_that_fails_again_stays_off_the_schedule() -> None:
    disabled = KNOWN.model_copy(update={"disabled": True, "disabled_reason": "by hand", "consecutive_failures": 1})
    decision = decide(error(500), state=disabled)
    assert decision.next_poll is None and decision.enable is None and decision.disable is None
    assert decision.state.disabled_reason == "by hand" and decision.state.consecutive_failures == 2


def test_a_manual_poll_of_a_paused_source_leaves_it_paused() -> None:
    paused = KNOWN.model_copy(update={"paused": True, "next_poll": None, "next_poll_reason": "paused"})
    decision = decide(ok(304), state=paused)
    assert decision.next_poll is None and decision.enable is None
    assert decision.state.paused and decision.state.next_poll_reason == "paused" and decision.state.last_success == NOW


@pytest.mark.parametrize(
    ("state", "hours_later", "unconditional"),
    [
        (SourceState(), 0, True),  # first poll: nothing to be conditional on
        (SourceState(etag='"e"'), 0, True),  # never refetched in full yet
        (KNOWN, 11.9, False),
        (KNOWN, 12, True),
        (SourceState(last_modified="x", last_unconditional=NOW), 1, False),
    ],
)
def test_unconditional_refetch_cadence(state: SourceState, hours_later: float, unconditional: bool) -> None:
    now = NOW + timedelta(hours=hours_later)
    request = plan_request(SOURCE, state, now, FETCH)
    assert request.unconditional is unconditional and request.url == URL
    if unconditional:
        assert (request.etag, request.last_modified) == (None, None)
    else:
        assert (request.etag, request.last_modified) == (state.etag, state.last_modified)
    decision = decide_poll(SOURCE, state, request, ok(), BODY, now, FETCH)
    assert decision.state.last_unconditional == (now if unconditional else state.last_unconditional)


def test_a_moved_source_is_asked_at_its_new_url() -> None:
    assert plan_request(SOURCE, SourceState(current_url=NEW_URL), NOW, FETCH).url == NEW_URL


def test_pages_left_for_later_keep_the_old_validators() -> None:
    unconditional = PollRequest(URL)
    state = decide(ok(), BodyFindings(new=2, complete=False), request=unconditional).state
    assert (state.etag, state.last_unconditional, state.articles_total) == (KNOWN.etag, KNOWN.last_unconditional, 12)


def test_the_feeds_hints_are_kept_for_the_304s_after() -> None:
    hinted = BodyFindings(feed=FeedHints(5400, (NOW.timestamp() - 60,)))
    state = decide(ok(), hinted).state
    assert (state.publisher_interval_seconds, state.recent_published, state.next_poll_reason) == (
        5400,
        [NOW.timestamp() - 60],
        "feed",
    )
    later = decide(ok(304), state=state)
    assert later.next_poll is not None and later.next_poll.reason == "feed"
    page_listing = decide(ok(), BodyFindings(feed=None), state=state).state  # a page source: no feed hints
    assert page_listing.publisher_interval_seconds == 5400


@pytest.mark.parametrize(
    ("verdict", "reason"),
    [(Verdict.PAUSED, "host-paused"), (Verdict.BUSY, "host-busy"), (Verdict.RATE_LIMITED, "host-rate-limited")],
)
def test_a_deferred_poll_only_moves_the_next_poll(verdict: Verdict, reason: str) -> None:
    decision = decide_deferred(KNOWN, NOW, verdict, 120)
    assert decision.next_poll is not None and decision.next_poll.at == NOW + timedelta(seconds=120)
    assert decision.state == KNOWN.model_copy(
        update={"next_poll": NOW + timedelta(seconds=120), "next_poll_reason": reason}
    )
    assert decision.failure is None and decision.pause_host_seconds is None
