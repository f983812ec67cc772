"""The admin page through the real app: the key (Bearer, login form, session cookie), CSRF, the
pages per source state, and the actions steering real source state in Redis."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from aiohttp.test_utils import TestClient

from service import keys
from service.config import Settings, settings_from_dict
from service.models import PollRecord, PushStatus, RejectedEntry, SourceState
from service.store.dead_letters import DeadLetters
from service.store.push_state import PushTransition
from service.store.source_state import PollEnd, SourceStates
from service.web.admin import access
from service.web.admin.pages import chart_svg, select_rows
from service.web.app import create_app

KEY = "an-admin-key-of-32-characters-xx"
BEARER = {"Authorization": f"Bearer {KEY}"}


def admin_settings(**extra: object) -> Settings:
    return settings_from_dict(
        {
            "TRIBUTARY_ADMIN_KEY": KEY,
            "sources": [
                {"id": "good", "url": "http://good.example/feed", "tags": ["t"]},
                {"id": "bad", "url": "http://bad.example/feed", "tags": ["t"]},
                {"id": "gone", "url": "http://gone.example/feed", "tags": ["t"]},
            ],
            "feeds": [{"name": "t", "title": "T", "tags": ["t"]}],
            **extra,
        }
    )


async def seed_states(redis, clock) -> None:  # type: ignore[no-untyped-def]
    sources = SourceStates(redis)
    now = clock()
    await sources.sync_schedule(["good", "bad", "gone"], now)
    ok = SourceState(
        last_poll=now,
        last_success=now,
        last_status=200,
        next_poll=now + timedelta(seconds=600),
        next_poll_reason="interval",
    )
    failing = SourceState(
        last_poll=now,
        last_status=503,
        last_error="HTTP 503 Service Unavailable",
        last_error_kind="server",
        consecutive_failures=3,
        next_poll=now + timedelta(hours=1),
        next_poll_reason="backoff",
    )
    await redis.set(keys.source_state("good"), ok.model_dump_json())
    await redis.set(keys.source_state("bad"), failing.model_dump_json())
    await sources.disable("gone", "HTTP 410 Gone: the publisher removed the feed", now)
    for n in range(3):
        record = PollRecord(
            at=now - timedelta(minutes=n), outcome="server", status=503, duration_ms=40 + n, bytes=0, error="HTTP 503"
        )
        await sources.end_poll(PollEnd("bad", "t", record=record))


@pytest.fixture
async def admin(redis, clock, aiohttp_client) -> TestClient:  # type: ignore[no-untyped-def]
    await seed_states(redis, clock)
    return await aiohttp_client(create_app(admin_settings(), redis=redis, clock=clock))


async def login(client: TestClient) -> str:
    """Log in through the form; returns the CSRF token of the session."""
    response = await client.post("/admin/login", data={"key": KEY}, allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/admin" in cookie
    assert KEY not in cookie
    page = await (await client.get("/admin/")).text()
    return re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]


async def test_no_key_no_admin(redis, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(settings_from_dict({}), redis=redis, clock=clock))
    for path in ("/admin", "/admin/", "/admin/login", "/admin/sources"):
        assert (await client.get(path, headers=BEARER)).status == 404


async def test_the_key_is_required(admin: TestClient) -> None:
    response = await admin.get("/admin/", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/admin/login"
    assert response.headers["Cache-Control"] == "no-store"  # refusals carry the security headers too
    assert (await admin.get("/admin/", headers={"Authorization": "Bearer wrong"})).status == 401
    assert (await admin.post("/admin/sources/good/pause")).status == 401
    wrong = await admin.post("/admin/login", data={"key": "not the key"}, allow_redirects=False)
    assert wrong.status == 401 and "not the admin key" in await wrong.text()
    bearer = await admin.get("/admin/", headers=BEARER)
    assert bearer.status == 200 and bearer.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in bearer.headers["Content-Security-Policy"]
    assert KEY not in await bearer.text()
    assert (await admin.get("/admin", allow_redirects=False)).headers["Location"] == "/admin/"


async def test_a_forged_or_expired_session_is_refused(admin: TestClient, clock) -> None:  # type: ignore[no-untyped-def]
    token = access.issue_session(KEY, clock())
    assert access.session_nonce(token, KEY, clock()) is not None
    assert access.session_nonce(token, "another-key-of-enough-length", clock()) is None
    assert access.session_nonce(token[:-1] + ("1" if token.endswith("0") else "0"), KEY, clock()) is None
    assert access.session_nonce(token, KEY, clock() + timedelta(seconds=access.SESSION_SECONDS + 1)) is None
    admin.session.cookie_jar.update_cookies({access.COOKIE: "forged.9999999999.00"})
    assert (await admin.get("/admin/", allow_redirects=False)).status == 303


async def test_pages_show_each_sources_state(admin: TestClient) -> None:
    await login(admin)
    overview = await (await admin.get("/admin/")).text()
    assert '<meta http-equiv="refresh"' in overview and "<svg" in overview
    assert re.search(r"<b>1</b>failing", overview) and re.search(r"<b>1</b>disabled", overview)
    table = await (await admin.get("/admin/sources")).text()
    assert re.search(r'data-source="bad" data-health="failing"', table)
    assert re.search(r'data-source="gone" data-health="disabled"', table)
    assert re.search(r'data-source="good" data-health="ok"', table)
    assert "server: HTTP 503 Service Unavailable" in table
    assert "backing off after 3 failure(s) in a row" in table
    failing = await (await admin.get("/admin/sources?health=failing")).text()
    assert 'data-source="bad"' in failing and 'data-source="good"' not in failing
    searched = await (await admin.get("/admin/sources?q=GOOD.example")).text()
    assert 'data-source="good"' in searched and 'data-source="bad"' not in searched
    page = await (await admin.get("/admin/sources/bad")).text()
    assert "Last 3 polls" in page and page.count("<td>503</td>") == 1 + 3 and "42 ms" in page  # the state, the polls
    assert (await admin.get("/admin/sources/nope")).status == 404


async def test_actions_need_the_csrf_token_and_steer_the_source(admin: TestClient, redis, clock) -> None:  # type: ignore[no-untyped-def]
    csrf = await login(admin)
    refused = await admin.post("/admin/sources/good/pause", data={}, allow_redirects=False)
    assert refused.status == 403
    assert (await admin.post("/admin/sources/good/pause", data={"csrf": "0" * 64})).status == 403

    paused = await admin.post("/admin/sources/good/pause", data={"csrf": csrf}, allow_redirects=False)
    assert paused.status == 303 and paused.headers["Location"].startswith("/admin/sources/good?done=paused")
    state = await SourceStates(redis).get("good")
    assert state.paused and state.next_poll_reason == "paused"
    assert await redis.zscore(keys.SCHEDULE, "good") is None
    assert "paused by an operator" in await (await admin.get("/admin/sources/good")).text()

    await admin.post("/admin/sources/good/resume", data={"csrf": csrf})
    assert not (await SourceStates(redis).get("good")).paused
    assert await redis.zscore(keys.SCHEDULE, "good") == clock().timestamp()

    await admin.post("/admin/sources/gone/enable", data={"csrf": csrf})
    assert not (await SourceStates(redis).get("gone")).disabled

    await admin.post("/admin/sources/bad/poll", data={"csrf": csrf})
    assert await redis.zcard(keys.ARQ_QUEUE) == 1

    removed = await admin.post("/admin/sources/bad/remove", data={"csrf": csrf}, allow_redirects=False)
    assert removed.status == 303
    table = await (await admin.get("/admin/sources")).text()
    assert 'data-source="bad"' not in table and await redis.sismember(keys.REMOVED_SOURCES, "bad")

    # Bearer requests need no CSRF token: a browser never sends that header by itself.
    assert (await admin.post("/admin/sources/good/pause", headers=BEARER, allow_redirects=False)).status == 303


async def test_add_a_source_queues_discovery(admin: TestClient, redis) -> None:  # type: ignore[no-untyped-def]
    csrf = await login(admin)
    bad = await admin.post("/admin/sources/add", data={"csrf": csrf, "url": "ftp://x/"})
    assert bad.status == 400 and "should match" in await bad.text()
    added = await admin.post(
        "/admin/sources/add",
        data={"csrf": csrf, "url": "https://site.example/", "tags": "t, news"},
        allow_redirects=False,
    )
    assert added.status == 303 and added.headers["Location"].startswith("/admin/jobs/add-source:")
    job = await (await admin.get(added.headers["Location"])).text()
    assert "queued" in job and 'content="2"' in job
    assert (await admin.get("/admin/jobs/poll:x")).status == 404


async def test_dead_letters_listed_retried_and_purged(admin: TestClient, redis, clock) -> None:  # type: ignore[no-untyped-def]
    csrf = await login(admin)
    letters = DeadLetters(redis)
    first = await letters.add_job("websub_deliver", ["sub", "t", "c1"], "gave up after 6 tries", 6, clock())
    second = await letters.add_job("poll", ["good", "123"], "RuntimeError: <boom>", 3, clock())
    page = await (await admin.get("/admin/dead")).text()
    assert first in page and "RuntimeError: &lt;boom&gt;" in page and "<boom>" not in page
    await admin.post(f"/admin/dead/{second}/retry", data={"csrf": csrf})
    assert await redis.zcard(keys.ARQ_QUEUE) == 1 and await letters.get(second) is None
    await admin.post(f"/admin/dead/{first}/purge", data={"csrf": csrf})
    assert await letters.list() == []
    assert (await admin.post("/admin/dead/job-1-1/retry", data={"csrf": csrf})).status == 404


async def test_a_push_subscription_is_shown_with_its_source(admin: TestClient, redis, clock) -> None:  # type: ignore[no-untyped-def]
    now = clock()
    subscription = {
        "status": PushStatus.ACTIVE,
        "hub": "https://hub.example/<hub>",
        "topic": "http://good.example/feed",
        "lease_end": now + timedelta(days=5),
        "last_delivery": now - timedelta(minutes=5),
    }
    assert await SourceStates(redis).push.apply("good", PushTransition(subscription, {"deliveries": 7, "misses": 2}))
    pending = {"status": PushStatus.PENDING, "hub": "https://hub.example/", "topic": "http://bad.example/feed"}
    assert await SourceStates(redis).push.apply("bad", PushTransition(pending))
    page = await (await admin.get("/admin/sources/good", headers=BEARER)).text()
    assert "<th>Push: hub</th><td>https://hub.example/&lt;hub&gt;</td>" in page
    assert "<th>Push: state</th><td>active (live)</td>" in page
    assert "<th>Push: lease end</th><td>5d from now</td>" in page
    assert "<th>Push: last delivery</th><td>5m ago (7 in all)</td>" in page
    assert "<th>Push: misses</th><td>2</td>" in page
    assert "Push:" not in await (await admin.get("/admin/sources/gone", headers=BEARER)).text()
    table = await (await admin.get("/admin/sources", headers=BEARER)).text()
    cells = dict(re.findall(r'data-source="(\w+)".*?<td class="push">([^<]*)</td>', table))
    assert cells == {"good": "push", "bad": "push pending", "gone": "-"}
    overview = await (await admin.get("/admin/", headers=BEARER)).text()
    assert "<th>Push subscriptions</th><td>active 1, pending 1</td>" in overview
    metrics = await (await admin.get("/metrics")).text()
    assert 'tributary_sources_push{state="active"} 1.0' in metrics
    assert 'tributary_sources_push{state="pending"} 1.0' in metrics
    assert 'tributary_sources_push{state="failed"} 0.0' in metrics


async def test_an_article_dead_letter_is_shown_but_not_retried(admin: TestClient, redis, clock) -> None:  # type: ignore[no-untyped-def]
    csrf = await login(admin)
    rejected = RejectedEntry(index=2, entry={"link": "javascript:alert(1)"}, error="entry has no guid, link or title")
    [letter] = await DeadLetters(redis).add_articles("good", [rejected], clock())
    page = await (await admin.get("/admin/dead")).text()
    assert "article of good: entry 2 (javascript:alert(1))" in page and "entry has no guid" in page
    assert f"/admin/dead/{letter}/purge" in page and f"/admin/dead/{letter}/retry" not in page
    refused = await admin.post(f"/admin/dead/{letter}/retry", data={"csrf": csrf}, allow_redirects=False)
    assert refused.status == 303 and "cannot+be+retried" in refused.headers["Location"]
    assert await DeadLetters(redis).get(letter) is not None and await redis.zcard(keys.ARQ_QUEUE) == 0


def test_rows_sort_and_chart() -> None:
    assert select_rows([], health="", q="", sort="nonsense", desc=False) == []
    svg = chart_svg([(0, 3, 1), (1, 0, 0), (2, 5, 2)])
    assert svg.startswith("<figure><svg") and "8 polls, 3 new articles" in svg and svg.count("<rect") == 4
