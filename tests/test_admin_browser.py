"""The admin page in a real headless Chromium (Debian's ``chromium``, installed by ``.ci/run``):
log in through the form, read each source's state off the rendered table, pause a source with
its button, and save a screenshot under tests/artifacts/ (git-ignored)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from service.store.source_state import SourceStates
from service.store.worker_counters import Counters
from service.web.app import create_app
from tests.cdp import chromium_page, chromium_path
from tests.test_admin import KEY, admin_settings, seed_states

ARTIFACTS = Path(__file__).parent / "artifacts"

pytestmark = pytest.mark.slow


@pytest.fixture
def chromium() -> str:
    path = chromium_path()
    if path is None:
        pytest.skip("Chromium not installed: .ci/run installs Debian's chromium (apt-get install chromium)")
    return path


async def test_admin_in_headless_chromium(chromium: str, redis, clock, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    await seed_states(redis, clock)
    activity = Counters()
    for minute in range(60):
        activity.tick("polls", 20 + minute % 7, clock() - timedelta(minutes=minute))
        activity.tick("new", minute % 5, clock() - timedelta(minutes=minute))
    await activity.flush(redis)
    client: TestClient = await aiohttp_client(create_app(admin_settings(), redis=redis, clock=clock))
    base = str(client.make_url("/admin/"))

    async with chromium_page(chromium) as page:
        await page.navigate(base)
        assert await page.evaluate("location.pathname") == "/admin/login"
        await page.evaluate(f"document.querySelector('input[name=key]').value = {KEY!r}")
        await page.click_and_wait("form[action='/admin/login'] button")
        assert await page.evaluate("location.pathname") == "/admin/"
        assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script reads the session
        assert await page.evaluate("document.querySelectorAll('svg rect').length") == 61  # 60 minutes + frame
        await page.screenshot(ARTIFACTS / "admin-overview.png")

        await page.navigate(base + "sources")
        health = await page.evaluate(
            "Object.fromEntries([...document.querySelectorAll('tr[data-source]')]"
            ".map(r => [r.dataset.source, r.querySelector('td:nth-child(2)').textContent]))"
        )
        assert health == {"good": "ok", "bad": "failing", "gone": "disabled"}
        assert "backing off after 3 failure(s)" in await page.evaluate("document.body.innerText")
        await page.screenshot(ARTIFACTS / "admin-sources.png")

        await page.navigate(base + "sources/good")
        await page.click_and_wait("form[action='/admin/sources/good/pause'] button")
        assert await page.evaluate("document.querySelector('#health').textContent") == "paused"
        assert "paused" in await page.evaluate("document.querySelector('.flash').textContent")
        assert (await SourceStates(redis).get("good")).paused
        await page.screenshot(ARTIFACTS / "admin-source-paused.png")
    assert (ARTIFACTS / "admin-sources.png").stat().st_size > 1000
