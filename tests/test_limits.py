"""[limits]: every field an article shows is bounded at ingest, cut safely, and the cut recorded.
Also: only http(s) enclosures and images reach the store or any rendered format. Pure: no I/O."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from xml.etree import ElementTree as ET

import pytest

from service.config import FeedConfig, LimitsConfig, Settings, SourceConfig
from service.feeds.merge import build_merged_feed
from service.feeds.render import render
from service.models import Article, ArticleFlag, Author, Enclosure, Image
from workers.normalise.entry import normalise_entry, normalise_feed
from workers.normalise.limits import Caps, cut_markup, cut_text
from workers.normalise.sanitise import sanitise_html
from workers.parse.types import ParsedEntry, ParsedFeed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = SourceConfig(id="src", url="https://example.com/feed.xml")
FEED = ParsedFeed(title="F", link="https://example.com/", version="rss20")
LIMITS = LimitsConfig()


def entry(**fields: object) -> ParsedEntry:
    return ParsedEntry(**({"guid": "g", "link": "https://example.com/a", "title": "T", "published": NOW} | fields))


def normalised(**fields: object) -> Article:
    return normalise_entry(entry(**fields), source=SOURCE, feed=FEED, now=NOW)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("one two three four", 10, "one two…"),
        ("one two, three", 10, "one two…"),
        ("x" * 50, 10, "x" * 9 + "…"),  # one enormous word is cut inside it
        ("ab " + "x" * 50, 10, "ab xxxxxx…"),  # a boundary in the first half would lose too much
    ],
)
def test_cut_text(text: str, limit: int, expected: str) -> None:
    assert cut_text(text, limit) == expected
    assert len(cut_text(text, limit)) <= limit


@pytest.mark.parametrize(
    ("html", "limit", "expected"),
    [
        ("<p>abc</p><p>def</p>", 100, "<p>abc</p><p>def</p>"),
        ("<p>abc</p><p>def</p>", 14, "<p>abc</p><p>d"),  # inside text: sanitising closes the <p>
        ("<p>abc</p><p>def</p>", 12, "<p>abc</p>"),  # inside a tag: cut before it
        ("<p>abc</p><a href='x'>def</a>", 15, "<p>abc</p>"),
        ("<p>a &amp; b</p>", 7, "<p>a "),  # no half character reference
    ],
)
def test_cut_markup_ends_on_a_tag_boundary(html: str, limit: int, expected: str) -> None:
    assert cut_markup(html, limit) == expected


def test_html_cut_stays_well_formed_and_within_the_cap() -> None:
    html = "<div>" + "<p>Some <b>bold <i>and italic</i> words</b> here.</p>" * 5000 + "</div>"
    caps = Caps(LIMITS)
    out = caps.html("content", html, 4096, lambda h: sanitise_html(h, "https://example.com/"))
    assert out is not None and 3000 < len(out) <= 4096 and caps.cut == {"content"}
    ET.fromstring(f"<root>{out}</root>")
    deep = "<div>" * 20_000 + "x"
    assert Caps(LIMITS).html("content", deep, 256, lambda h: sanitise_html(h, None)) is None


def test_a_ten_megabyte_title_is_cut_and_recorded() -> None:
    article = normalised(title="word " * 2_000_000)
    assert len(article.title) <= LIMITS.title_chars and article.title.endswith("…")
    assert ArticleFlag.TRUNCATED in article.flags and article.truncated == ("title",)


def test_every_field_has_a_cap() -> None:
    huge_html = "<p>" + "text " * 500_000 + "</p>"
    article = normalised(
        title="t" * 5000,
        summary=huge_html,
        content=huge_html * 3,
        authors=tuple(Author(name=f"Author {n} " + "n" * 1000, email=f"a{n}@example.com") for n in range(500)),
        tags=tuple(f"tag-{n}" + "x" * 500 for n in range(500)),
        enclosures=(
            *(Enclosure(url=f"https://cdn.example.com/{n}.mp3", type="audio/mpeg") for n in range(500)),
            Enclosure(url="https://cdn.example.com/" + "x" * 5000),
            Enclosure(url="https://e.example/t", type="a" * 999),
        ),
        image=Image(url="https://example.com/i.png", caption="c" * 5000),
        language="x" * 500,
    )
    assert len(article.title) <= LIMITS.title_chars
    assert article.summary is not None and len(article.summary) <= LIMITS.summary_chars
    assert article.content is not None and len(article.content) <= LIMITS.content_chars
    assert len(article.authors) == LIMITS.authors
    assert all(len(a.name or "") <= LIMITS.author_chars for a in article.authors)
    assert len(article.tags) == LIMITS.tags and all(len(t) <= LIMITS.tag_chars for t in article.tags)
    assert len(article.enclosures) == LIMITS.enclosures
    assert article.image is not None and len(article.image.caption or "") <= LIMITS.author_chars
    assert article.language is None
    assert set(article.truncated) == {
        "authors",
        "content",
        "enclosures",
        "image",
        "language",
        "summary",
        "tags",
        "title",
    }
    assert article.truncated == tuple(sorted(article.truncated))


def test_long_urls_are_dropped_not_cut_and_identity_uses_the_whole_guid() -> None:
    long_guid = "urn:x:" + "g" * 10_000
    article = normalised(guid=long_guid, link="https://example.com/" + "p" * 5000)
    assert article.url is None and article.guid == long_guid[: LIMITS.guid_chars]
    assert set(article.truncated) == {"guid", "url"}
    other = normalised(guid=long_guid[:-1] + "h", link="https://example.com/" + "p" * 5000)
    assert other.id != article.id  # same stored guid prefix, different identity


def test_an_ordinary_entry_is_not_flagged() -> None:
    article = normalised(summary="<p>Fine.</p>", content="<p>Also fine.</p>", tags=("a", "b"))
    assert article.truncated == () and ArticleFlag.TRUNCATED not in article.flags


def test_one_warning_counts_the_cuts_of_a_feed() -> None:
    feed = FEED.model_copy(update={"entries": tuple(entry(guid=f"g{n}", title="w " * 1000) for n in range(3))})
    articles, warnings = normalise_feed(feed, source=SOURCE, now=NOW)
    assert len(articles) == 3 and warnings == ["3 entries cut to [limits]: title (3)"]


def test_limits_come_from_config() -> None:
    small = LimitsConfig(title_chars=20, tags=2)
    article = normalise_entry(
        entry(title="a title that is longer than twenty", tags=("a", "b", "c")),
        source=SOURCE,
        feed=FEED,
        now=NOW,
        limits=small,
    )
    assert article.title == "a title that is…" and article.tags == ("a", "b")
    assert Settings().limits == LimitsConfig()


HOSTILE_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(document.cookie)",
    "data:audio/mpeg;base64,AAAA",
    "vbscript:msgbox",
    "file:///etc/passwd",
]


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_only_web_enclosures_and_images_are_kept(url: str) -> None:
    article = normalised(
        enclosures=(Enclosure(url=url, type="audio/mpeg"), Enclosure(url="https://cdn.example.com/ok.mp3")),
        image=Image(url=url),
    )
    assert [e.url for e in article.enclosures] == ["https://cdn.example.com/ok.mp3"]
    assert article.image is None


@pytest.mark.parametrize("url", HOSTILE_URLS)
@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_renderers_refuse_non_web_enclosures_stored_before(url: str, fmt: str) -> None:
    # An article stored by an older version, straight from the store: the renderer still refuses.
    stored = Article(
        id="0" * 32,
        source_id="src",
        url=url,
        title="T",
        published=NOW,
        updated=NOW,
        first_seen=NOW,
        authors=(Author(name="A", url=url),),
        enclosures=(Enclosure(url=url, type="audio/mpeg"),),
        image=Image(url=url),
    )
    body = render(build_merged_feed(Settings(), FeedConfig(name="f", title="F"), [stored]), fmt)
    scheme = url.split(":", 1)[0].lower()
    assert scheme.encode() not in body.lower()
    if fmt == "json":
        json.loads(body)
    else:
        ET.fromstring(body)
