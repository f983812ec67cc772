"""`tributary enable SOURCE_ID`: an operator puts a disabled source back on the schedule."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner

from service import keys
from service.store.source_state import SourceStates
from tributary.cli import main


async def test_enable_puts_a_disabled_source_back(redis, redis_url, tmp_path: Path, clock) -> None:  # type: ignore[no-untyped-def]
    config = tmp_path / "t.toml"
    config.write_text('[[sources]]\nid = "gone"\nurl = "http://feeds.example/gone.rss"\n')
    sources = SourceStates(redis)
    await sources.disable("gone", "HTTP 410 Gone", clock())

    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, main, ["--config", str(config), "enable", "gone"], env={"REDIS_URL": redis_url}
    )
    assert result.exit_code == 0, result.output
    assert "gone: enabled (was disabled: HTTP 410 Gone)" in result.output
    stored = await sources.get("gone")
    assert not stored.disabled and stored.consecutive_failures == 0 and stored.next_poll_reason == "enabled"
    assert await redis.zscore(keys.SCHEDULE, "gone") is not None
    assert not await sources.is_disabled("gone")

    unknown = await asyncio.to_thread(
        runner.invoke, main, ["--config", str(config), "enable", "nope"], env={"REDIS_URL": redis_url}
    )
    assert unknown.exit_code != 0 and "no source 'nope'" in unknown.output
