"""Enclosures and images: podcast enclosures, Media RSS content and thumbnails, iTunes images,
and the first image of the content as the fallback ``image``; every URL absolute."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from service.config import SourceConfig
from service.models import Enclosure, Image
from workers.normalise.entry import normalise_feed
from workers.parse import parse_feed

FIXTURE = Path(__file__).parent / "data" / "schema" / "podcast-media.rss"
URL = "https://radio.example.hk/feed.rss"

EXPECTED = {
    "ep-1": (
        Image(url="https://radio.example.hk/art/ep1.jpg"),
        (Enclosure(url="https://radio.example.hk/audio/ep1.mp3", type="audio/mpeg", length=12345678),),
    ),
    "photo-2": (
        Image(url="https://cdn.example.hk/t/2.jpg", credit="AFP"),
        (Enclosure(url="https://cdn.example.hk/v/2.mp4", type="video/mp4", length=999),),
    ),
    # No feed image: the first http(s) <img> of the content (the data: one is gone), made absolute.
    "text-3": (Image(url="https://radio.example.hk/img/3.jpg?w=600&h=400"), ()),
    # A negative length is dropped; the same URL twice is one enclosure.
    "bad-4": (None, (Enclosure(url="https://radio.example.hk/audio/ep4.m4a", type="audio/x-m4a"),)),
}


def test_enclosures_and_images() -> None:
    feed = parse_feed(FIXTURE.read_bytes(), source_id="radio", url=URL, content_type="application/rss+xml")
    articles, warnings = normalise_feed(
        feed, source=SourceConfig(id="radio", url=URL), now=datetime(2024, 1, 1, tzinfo=UTC)
    )
    assert warnings == []
    # feedparser resolves relative guids against the feed URL (see workers/parse/xml_adapter.py).
    assert {(a.guid or "").rsplit("/", 1)[-1]: (a.image, a.enclosures) for a in articles} == EXPECTED
    assert articles[0].url == "https://radio.example.hk/ep/1"  # tracking parameter stripped
    assert [e.model_dump() for e in articles[0].enclosures] == [
        {"url": "https://radio.example.hk/audio/ep1.mp3", "type": "audio/mpeg", "length": 12345678}
    ]
