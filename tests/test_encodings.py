"""Feeds in Big5, GB18030 and Windows-1252, including an XML declaration that contradicts the
HTTP charset, served by the local feed server, fetched, parsed, normalised and stored: every
stored string is valid Unicode with the characters the publisher meant."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.config import FetchConfig, SourceConfig, settings_from_dict
from service.store.articles import Store
from workers.fetch.client import fetch, new_session
from workers.normalise.entry import normalise_feed
from workers.parse import parse_feed

NOW = datetime(2023, 9, 20, 2, 0, tzinfo=UTC)


def rss(declaration: str, title: str, description: str) -> str:
    return (
        f'<?xml version="1.0"{declaration}?>\n<rss version="2.0"><channel><title>{title}</title>'
        "<link>https://enc.example/</link><item><guid>1</guid><link>https://enc.example/1</link>"
        f"<title>{title}</title><description>&lt;p&gt;{description}&lt;/p&gt;</description>"
        "<pubDate>Wed, 20 Sep 2023 01:12:00 HKT</pubDate></item></channel></rss>"
    )


WIN = ("Café “quotes” – €5 naïve", "résumé • ½ ‰ Œuvre")
CASES = [
    # (name, body bytes, Content-Type header, expected title, expected description text)
    (
        "big5 declared in XML",
        rss(' encoding="big5"', "香港天文台發出八號風球", "市民應留在室內").encode("big5"),
        "application/rss+xml",
        "香港天文台發出八號風球",
        "市民應留在室內",
    ),
    (
        "gb18030 from HTTP charset only",
        rss("", "台风“苏拉”逼近 𠀀", "市民应留在室内").encode("gb18030"),
        "application/rss+xml; charset=GB18030",
        "台风“苏拉”逼近 𠀀",
        "市民应留在室内",
    ),
    (
        "windows-1252, XML says utf-8, HTTP says windows-1252",
        rss(' encoding="utf-8"', *WIN).encode("cp1252"),
        "text/xml; charset=windows-1252",
        *WIN,
    ),
    (
        "windows-1252, XML says utf-8, application/xml with charset",
        rss(' encoding="utf-8"', *WIN).encode("cp1252"),
        "application/xml; charset=windows-1252",
        *WIN,
    ),
    (
        "windows-1252 declared as iso-8859-1",
        rss(' encoding="iso-8859-1"', *WIN).encode("cp1252"),
        "application/rss+xml",
        *WIN,
    ),
    ("windows-1252 with no declaration at all", rss("", *WIN).encode("cp1252"), "application/rss+xml", *WIN),
]


@pytest.mark.parametrize(("name", "body", "content_type", "title", "text"), CASES, ids=[c[0] for c in CASES])
async def test_encoded_feed_is_stored_as_unicode(
    redis,
    feed_server,
    name: str,
    body: bytes,
    content_type: str,
    title: str,
    text: str,  # type: ignore[no-untyped-def]
) -> None:
    url = feed_server.set("/enc.rss", body, content_type=content_type)
    source = SourceConfig(id="enc", url=url)
    settings = settings_from_dict({"sources": [source.model_dump()], "fetch": {"allow_private_networks": True}})
    config = FetchConfig(allow_private_networks=True)
    async with new_session(config) as session:
        result = await fetch(session, url, source_id="enc", config=config)
    feed = parse_feed(result.body, source_id="enc", url=url, content_type=result.content_type, headers=result.headers)
    (article,), warnings = normalise_feed(feed, source=source, now=NOW)
    assert warnings == []
    store = Store(redis, settings)
    await store.upsert(article, NOW)
    stored = await store.article(article.id)
    assert stored is not None
    assert (stored.title, stored.summary_text, stored.summary) == (title, text, f"<p>{text}</p>")
    assert stored.published == datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
    for value in (stored.title, stored.summary, stored.summary_text):
        assert "\ufffd" not in value  # type: ignore[operator]
        value.encode("utf-8")  # type: ignore[union-attr]  # no lone surrogates


def test_a_lying_utf8_charset_still_gives_valid_unicode() -> None:
    body = rss("", *WIN).encode("cp1252")
    feed = parse_feed(
        body, source_id="enc", url="https://enc.example/rss", content_type="application/rss+xml; charset=utf-8"
    )
    (article,), _ = normalise_feed(feed, source=SourceConfig(id="enc", url="https://enc.example/rss"), now=NOW)
    article.title.encode("utf-8")
    assert article.title == WIN[0]  # feedparser falls back to windows-1252 when utf-8 fails
