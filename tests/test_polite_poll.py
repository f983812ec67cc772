"""Polling against local servers that send each header and status: the next poll time, the
stored validators, the error kind, the host pause, redirects, the size cap, 410, re-enabling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from http import HTTPStatus
from typing import Any

import pytest
from aiohttp import web

from service import keys
from service.errors import ErrorKind
from service.store.source_state import SourceStates
from tests.conftest import DATA, ManualClock
from tests.feedserver import FeedServer
from tests.pollkit import poll_settings, resources
from workers.ingest.drain import drain
from workers.poll.pipeline import PollReport, PollStatus, poll_source
from workers.resources import Resources

RSS = (DATA / "e2e" / "news.rss").read_bytes()


def rss_with(channel_extra: str) -> bytes:
    return (
        RSS.replace(
            b"<channel>",
            b'<channel xmlns:sy="http://purl.org/rss/1.0/modules/syndication/">' + channel_extra.encode(),
            1,
        )
        if b"xmlns:sy" not in RSS
        else RSS.replace(b"<channel>", b"<channel>" + channel_extra.encode(), 1)
    )


class Poller:
    """Sources on one local server, polled through the real pipeline with a manual clock."""

    def __init__(self, redis: Any, clock: ManualClock, server: FeedServer):
        self.redis, self.clock, self.server = redis, clock, server
        self.res: Resources | None = None

    def setup(self, sources: list[dict[str, Any]], **fetch: Any) -> Resources:
        settings = poll_settings(sources, **fetch)
        self.res = resources(settings, self.redis, self.clock)
        return self.res

    async def poll(self, source_id: str, claim: str | None = None) -> PollReport:
        assert self.res is not None
        return await poll_source(self.res, self.res.settings.source(source_id), claim=claim)  # type: ignore[arg-type]

    async def state(self, source_id: str):  # type: ignore[no-untyped-def]
        assert self.res is not None
        return await self.res.store.sources.get(source_id)

    @property
    def sources(self) -> SourceStates:
        assert self.res is not None
        return self.res.store.sources

    def after(self, seconds: float):  # type: ignore[no-untyped-def]
        return self.clock() + timedelta(seconds=seconds)


@pytest.fixture
async def poller(redis, clock, feed_server) -> AsyncIterator[Poller]:  # type: ignore[no-untyped-def]
    p = Poller(redis, clock, feed_server)
    yield p
    if p.res is not None:
        await p.res.session.close()


async def test_validators_stored_and_sent_and_304_costs_no_parse(poller: Poller) -> None:
    url = poller.server.set("/f.rss", RSS)
    poller.setup([{"id": "s", "url": url}])
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    state = await poller.state("s")
    assert state.etag == poller.server.routes["/f.rss"].etag and state.last_modified == FeedServer.LAST_MODIFIED
    assert state.last_unconditional == poller.clock()
    poller.clock.advance(600)
    report = await poller.poll("s")
    assert report.status is PollStatus.NOT_MODIFIED and report.next_poll == poller.after(600)
    sent = poller.server.seen("/f.rss")[-1].headers
    assert sent["If-None-Match"] == state.etag and sent["If-Modified-Since"] == FeedServer.LAST_MODIFIED
    assert (await poller.state("s")).last_success == poller.clock()


async def test_articles_total_counts_new_articles(poller: Poller) -> None:
    url = poller.server.set("/f.rss", RSS)
    poller.setup([{"id": "s", "url": url}])
    assert poller.res is not None
    first = await poller.poll("s")
    assert first.new == 3 and (await poller.state("s")).articles_total == 3
    await drain(poller.redis, poller.res.store, poller.clock, "test")  # stored: known to the next poll
    poller.clock.advance(600)
    assert (await poller.poll("s")).status is PollStatus.NOT_MODIFIED
    revised = RSS.replace(b"</channel>", b"<item><guid>extra-1</guid><title>One more</title></item></channel>")
    poller.server.set("/f.rss", revised)
    poller.clock.advance(13 * 3600)  # a full refetch: the new ETag is fetched
    report = await poller.poll("s")
    assert (report.status, report.new) == (PollStatus.FETCHED, 1)
    assert (await poller.state("s")).articles_total == 4


async def test_forced_unconditional_fetch_after_12_hours(poller: Poller) -> None:
    url = poller.server.set("/f.rss", RSS)
    poller.setup([{"id": "s", "url": url}])
    await poller.poll("s")
    for _ in range(11):
        poller.clock.advance(3600)
        assert (await poller.poll("s")).status is PollStatus.NOT_MODIFIED
    poller.clock.advance(3600)  # 12 h since the last full fetch
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    assert "If-None-Match" not in poller.server.seen("/f.rss")[-1].headers
    assert (await poller.state("s")).last_unconditional == poller.clock()
    poller.clock.advance(3600)
    assert (await poller.poll("s")).status is PollStatus.NOT_MODIFIED


@pytest.mark.parametrize(
    ("headers", "seconds", "reason"),
    [
        ({"Cache-Control": "max-age=3600"}, 3600, "cache"),
        ({"Date": "Tue, 24 Nov 2026 10:00:00 GMT", "Expires": "Tue, 24 Nov 2026 12:00:00 GMT"}, 7200, "cache"),
        ({"Cache-Control": "max-age=864000"}, 86400, "cache"),  # capped at max_interval_seconds
        ({"Cache-Control": "max-age=60"}, 600, "interval"),  # never shorter than configured
    ],
)
async def test_cache_headers_set_the_next_poll_also_on_304(
    poller: Poller, headers: dict[str, str], seconds: int, reason: str
) -> None:
    url = poller.server.set("/f.rss", RSS, headers=headers)
    poller.setup([{"id": "s", "url": url}], force_unconditional_hours=1000)
    report = await poller.poll("s")
    assert report.next_poll == poller.after(seconds)
    assert (await poller.state("s")).next_poll_reason == reason
    assert await poller.redis.zscore(keys.SCHEDULE, "s") == poller.after(seconds).timestamp()
    poller.clock.advance(seconds)
    report = await poller.poll("s")
    assert report.status is PollStatus.NOT_MODIFIED and report.next_poll == poller.after(seconds)


@pytest.mark.parametrize(
    ("extra", "seconds"),
    [
        ("<ttl>90</ttl>", 5400),
        ("<sy:updatePeriod>daily</sy:updatePeriod><sy:updateFrequency>2</sy:updateFrequency>", 43200),
    ],
)
async def test_feed_ttl_and_update_period_set_the_next_poll(poller: Poller, extra: str, seconds: int) -> None:
    url = poller.server.set("/f.rss", rss_with(extra))
    poller.setup([{"id": "s", "url": url}], force_unconditional_hours=1000)
    assert (await poller.poll("s")).next_poll == poller.after(seconds)
    poller.clock.advance(seconds)
    report = await poller.poll("s")  # a 304 remembers what the body asked for
    assert report.status is PollStatus.NOT_MODIFIED and report.next_poll == poller.after(seconds)
    assert (await poller.state("s")).next_poll_reason == "feed"


@pytest.mark.parametrize(
    ("status", "retry_after", "seconds"),
    [(429, "7200", 7200), (503, "Fri, 27 Nov 2026 12:00:00 GMT", 172800), (503, "30", 1200)],
)
async def test_retry_after_delays_the_source_and_pauses_its_host(
    poller: Poller, status: int, retry_after: str, seconds: int
) -> None:
    url = poller.server.set("/busy.rss", b"slow down", status=status, headers={"Retry-After": retry_after})
    other = poller.server.set("/other.rss", RSS)
    poller.setup([{"id": "busy", "url": url}, {"id": "other", "url": other}])
    report = await poller.poll("busy")
    kind = ErrorKind.SERVER if status >= 500 else ErrorKind.RATE_LIMITED
    assert report.status is PollStatus.FAILED and report.error_kind is kind
    assert report.next_poll == poller.after(seconds)  # 30 s is shorter than the backoff: backoff wins
    state = await poller.state("busy")
    assert state.last_status == status and state.consecutive_failures == 1 and state.last_error_kind == kind
    # Every source on the host waits for the Retry-After, without a request.
    deferred = await poller.poll("other")
    assert deferred.status is PollStatus.DEFERRED
    assert poller.server.seen("/other.rss") == []
    wait = min(int(retry_after) if retry_after.isdigit() else seconds, 172800)
    assert poller.after(wait - 2) <= deferred.next_poll <= poller.after(wait)
    assert (await poller.state("other")).next_poll_reason == "host-paused"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (404, ErrorKind.NOT_FOUND),
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (418, ErrorKind.CLIENT_ERROR),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.SERVER),
        (502, ErrorKind.SERVER),
    ],
)
async def test_http_errors_stored_with_code_and_backoff(poller: Poller, status: int, kind: ErrorKind) -> None:
    url = poller.server.set("/e.rss", b"nope", status=status)
    poller.setup([{"id": "s", "url": url}])
    for failures in (1, 2, 3):
        report = await poller.poll("s")
        assert report.error_kind is kind and report.next_poll == poller.after(600 * 2**failures)
        poller.clock.advance(1)
    state = await poller.state("s")
    assert (state.last_status, state.consecutive_failures, state.last_error_kind) == (status, 3, kind.value)
    assert state.last_error == f"HTTP {status} {HTTPStatus(status).phrase}"
    assert state.failing_since is not None and state.last_error_at == poller.clock() - timedelta(seconds=1)
    poller.server.set("/e.rss", RSS)
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    state = await poller.state("s")
    assert state.consecutive_failures == 0 and state.failing_since is None and state.last_error is None


async def test_body_content_kinds(poller: Poller) -> None:
    html = poller.server.set("/page.html", (DATA / "feeds" / "not-a-feed.html").read_bytes(), content_type="text/html")
    broken = poller.server.set("/broken.xml", (DATA / "feeds" / "entity-bomb.xml").read_bytes())
    big = poller.server.set("/big.rss", b"<rss>" + b" " * 5000 + b"</rss>")
    poller.setup(
        [{"id": "html", "url": html}, {"id": "broken", "url": broken}, {"id": "big", "url": big}], max_body_bytes=4096
    )
    assert (await poller.poll("html")).error_kind is ErrorKind.NOT_A_FEED
    assert (await poller.poll("broken")).error_kind is ErrorKind.PARSE
    assert (await poller.poll("big")).error_kind is ErrorKind.TOO_LARGE


async def test_streamed_body_over_the_cap_is_aborted(redis, clock, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    sent = []

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})  # chunked, no length
        await response.prepare(request)
        try:
            for _ in range(1000):
                await response.write(b"x" * 65536)
                sent.append(1)
        except (ConnectionResetError, RuntimeError):
            pass
        return response

    app = web.Application()
    app.router.add_get("/endless", endless)
    server = await aiohttp_server(app)
    settings = poll_settings([{"id": "s", "url": str(server.make_url("/endless"))}], max_body_bytes=1 << 20)
    res = resources(settings, redis, clock)
    try:
        report = await poll_source(res, settings.sources[0])
    finally:
        await res.session.close()
    assert report.error_kind is ErrorKind.TOO_LARGE
    assert len(sent) < 200  # aborted long before the 64 MiB the server would send


async def test_timeout_connect_and_dns_kinds(redis, clock, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    from tests.test_netguard import StubResolver

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/slow", slow)
    server = await aiohttp_server(app)
    settings = poll_settings(
        [
            {"id": "slow", "url": str(server.make_url("/slow"))},
            {"id": "closed", "url": "http://127.0.0.1:9/feed"},
            {"id": "nxdomain", "url": "http://no-such-host.invalid/feed"},
        ],
        timeout_seconds=0.3,
    )
    res = resources(settings, redis, clock, resolver=StubResolver({}))
    try:
        kinds = {s.id: (await poll_source(res, s)).error_kind for s in settings.sources}
    finally:
        await res.session.close()
    assert kinds == {"slow": ErrorKind.TIMEOUT, "closed": ErrorKind.CONNECT, "nxdomain": ErrorKind.DNS}


async def test_permanent_redirect_moves_the_stored_url(poller: Poller) -> None:
    poller.server.set("/new.rss", RSS)
    old = poller.server.set("/old.rss", b"", status=301, headers={"Location": "/new.rss"})
    poller.setup([{"id": "s", "url": old}])
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    state = await poller.state("s")
    assert state.current_url == poller.server.url("/new.rss")
    assert [(r.status, r.from_url, r.to_url) for r in state.redirects] == [(301, old, poller.server.url("/new.rss"))]
    poller.clock.advance(600)
    assert (await poller.poll("s")).status is PollStatus.NOT_MODIFIED
    assert len(poller.server.seen("/old.rss")) == 1  # the next poll went straight to the new URL
    assert poller.res.settings.source("s").url == old  # type: ignore[union-attr]  # the key is unchanged


@pytest.mark.parametrize(
    ("chain", "moved"), [((308,), True), ((302,), False), ((307,), False), ((301, 302), False), ((301, 308), True)]
)
async def test_only_an_all_permanent_chain_moves_the_url(poller: Poller, chain: tuple[int, ...], moved: bool) -> None:
    poller.server.set("/final.rss", RSS)
    for hop, status in enumerate(chain):
        target = f"/hop{hop + 1}" if hop + 1 < len(chain) else "/final.rss"
        poller.server.set(f"/hop{hop}", b"", status=status, headers={"Location": target})
    poller.setup([{"id": "s", "url": poller.server.url("/hop0")}])
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    assert (await poller.state("s")).current_url == (poller.server.url("/final.rss") if moved else None)


async def test_at_most_five_redirects(poller: Poller) -> None:
    for hop in range(7):
        poller.server.set(f"/r{hop}", b"", status=302, headers={"Location": f"/r{hop + 1}"})
    poller.server.set("/r7", RSS)
    poller.setup([{"id": "s", "url": poller.server.url("/r0")}])
    report = await poller.poll("s")
    assert report.error_kind is ErrorKind.REDIRECT_LOOP and "more than 5 redirects" in (report.error or "")
    assert len(poller.server.requests) == 6


async def test_gone_disables_until_a_success_re_enables(poller: Poller) -> None:
    url = poller.server.set("/gone.rss", b"", status=410)
    poller.setup([{"id": "s", "url": url}, {"id": "t", "url": poller.server.set("/t.rss", RSS)}])
    await poller.sources.sync_schedule(["s", "t"], poller.clock())
    [(_, claim)] = [c for c in await poller.sources.claim_due(poller.clock(), 120) if c[0] == "s"]
    report = await poller.poll("s", claim)
    assert report.status is PollStatus.FAILED and report.next_poll is None
    state = await poller.state("s")
    assert state.disabled and "410" in (state.disabled_reason or "") and state.next_poll_reason == "disabled"
    assert await poller.redis.zscore(keys.SCHEDULE, "s") is None
    await poller.sources.sync_schedule(["s", "t"], poller.clock())  # a worker restart keeps it off
    assert await poller.redis.zscore(keys.SCHEDULE, "s") is None
    poller.server.set("/gone.rss", RSS)  # the publisher came back; an operator polls by hand
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    state = await poller.state("s")
    assert not state.disabled and state.disabled_reason is None
    assert await poller.redis.zscore(keys.SCHEDULE, "s") == poller.after(600).timestamp()


async def test_too_many_failures_disable(poller: Poller) -> None:
    url = poller.server.set("/e.rss", b"", status=500)
    poller.setup([{"id": "s", "url": url}], max_consecutive_failures=3)
    await poller.sources.sync_schedule(["s"], poller.clock())
    for _ in range(3):
        await poller.poll("s")
    state = await poller.state("s")
    assert state.disabled and state.disabled_reason == "3 consecutive failures"
    assert await poller.sources.is_disabled("s")


async def test_failing_for_30_days_disables(poller: Poller) -> None:
    url = poller.server.set("/e.rss", b"", status=500)
    poller.setup([{"id": "s", "url": url}])
    await poller.poll("s")
    poller.clock.advance(29 * 86400)
    await poller.poll("s")
    assert not (await poller.state("s")).disabled
    poller.clock.advance(86400)
    await poller.poll("s")
    assert (await poller.state("s")).disabled_reason.startswith("failing since")  # type: ignore[union-attr]


async def test_adaptive_source_polls_a_busy_feed_faster(poller: Poller) -> None:
    now = poller.clock()
    items = "".join(
        f"<item><guid>i{n}</guid><title>t{n}</title><pubDate>{(now - timedelta(minutes=3 * n)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate></item>"
        for n in range(20)
    )
    url = poller.server.set("/busy.rss", f"<rss version='2.0'><channel><title>b</title>{items}</channel></rss>")
    source = {
        "id": "s",
        "url": url,
        "adaptive": True,
        "interval_seconds": 900,
        "min_interval_seconds": 60,
        "slow_down_quiet": True,
    }
    poller.setup([source], force_unconditional_hours=1000)
    report = await poller.poll("s")
    assert report.next_poll == poller.after(60 * 3 * 19 / 20 // 1)  # mean gap 2.85 min
    assert (await poller.state("s")).next_poll_reason == "adaptive"
    poller.clock.advance(7 * 86400)  # a week of silence: the 304 path slows right down (opted in)
    report = await poller.poll("s")
    assert report.status is PollStatus.NOT_MODIFIED
    assert report.next_poll == poller.after(int((7 * 86400 + 57 * 60) / 20))  # the mean gap up to now


async def test_unreadable_state_is_started_afresh(poller: Poller) -> None:
    url = poller.server.set("/f.rss", RSS)
    poller.setup([{"id": "s", "url": url}])
    await poller.redis.set(keys.source_state("s"), b"{not json")
    assert (await poller.poll("s")).status is PollStatus.FETCHED
    assert (await poller.state("s")).etag == poller.server.routes["/f.rss"].etag


async def test_a_job_that_starts_after_its_claim_lapsed_does_not_poll(poller: Poller) -> None:
    url = poller.server.set("/f.rss", RSS)
    poller.setup([{"id": "s", "url": url}])
    await poller.sources.sync_schedule(["s"], poller.clock())
    [(_, claim)] = await poller.sources.claim_due(poller.clock(), 120)
    poller.clock.advance(120)  # the job waited out its claim's lease: the source is due again
    assert (await poller.poll("s", claim)).status is PollStatus.SUPERSEDED
    assert poller.server.requests == []
    [(_, fresh)] = await poller.sources.claim_due(poller.clock(), 120)
    assert (await poller.poll("s", fresh)).status is PollStatus.FETCHED


async def test_a_second_poll_of_a_leased_source_is_busy(poller: Poller) -> None:
    url = poller.server.set("/f.rss", RSS)
    poller.setup([{"id": "s", "url": url}])
    await poller.redis.set(keys.poll_lease("s"), "someone-else", px=60000)
    assert (await poller.poll("s")).status is PollStatus.BUSY
    assert poller.server.requests == []
