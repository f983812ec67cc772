"""The [sanitise], [canonical], [dedup] sections and [storage] max_revisions: defaults,
validation with the key named, and settings reaching normalise."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.config import settings_from_dict
from service.errors import ConfigError
from workers.normalise.entry import normalise_entry
from workers.parse.types import ParsedEntry, ParsedFeed


def test_defaults() -> None:
    settings = settings_from_dict({})
    assert settings.sanitise.iframe_hosts == ["www.youtube.com", "www.youtube-nocookie.com", "player.vimeo.com"]
    assert settings.sanitise.allow_data_images is False
    assert "utm_*" in settings.canonical.strip_params and settings.canonical.unwrap_redirects == []
    assert (settings.dedup.fuzzy_titles, settings.dedup.fuzzy_threshold, settings.dedup.fuzzy_window_hours) == (
        False,
        0.9,
        48,
    )
    assert settings.storage.max_revisions == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"dedup": {"fuzzy_threshold": 1.5}}, "dedup.fuzzy_threshold"),
        ({"dedup": {"fuzzy_title": True}}, "dedup.fuzzy_title"),
        ({"storage": {"max_revisions": -1}}, "storage.max_revisions"),
        ({"sanitise": {"iframe_hosts": "www.youtube.com"}}, "sanitise.iframe_hosts"),
        ({"canonical": {"unwrap": ["news.google.com"]}}, "canonical.unwrap"),
    ],
)
def test_bad_values_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        settings_from_dict(data)


def test_settings_reach_normalise() -> None:
    settings = settings_from_dict(
        {
            "sources": [{"id": "s", "url": "https://s.example/feed"}],
            "sanitise": {"iframe_hosts": [], "allow_data_images": True},
            "canonical": {"unwrap_redirects": ["news.google.com"], "strip_params": ["ref"]},
        }
    )
    entry = ParsedEntry(
        guid="g",
        title="t",
        link="https://news.google.com/url?url=https://real.example/a?ref=x%26utm_source=kept",
        content='<iframe src="https://www.youtube.com/embed/x"></iframe><img src="data:image/png;base64,AA">',
    )
    source = settings.sources[0]
    article = normalise_entry(
        entry,
        source=source,
        feed=ParsedFeed(),
        now=datetime(2024, 1, 1, tzinfo=UTC),
        sanitise=settings.sanitise,
        canonical=settings.canonical,
    )
    assert article.url == "https://real.example/a?utm_source=kept"
    assert article.content == '<img src="data:image/png;base64,AA">'
