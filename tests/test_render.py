"""Renderers: each format reads back as the same items, validates, and survives hostile text."""

from __future__ import annotations

import json
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from lxml import etree

from service.config import FeedConfig, Settings, SourceConfig
from service.feeds.merge import FORMATS, MergedFeed, build_merged_feed
from service.feeds.render import (
    RENDERERS,
    article_uri,
    render,
    rfc822,
    rfc3339,
    xml_safe,
)
from service.feeds.render.xmltext import absolute_uri, safe_uri
from service.models import Article, Author, Enclosure, Image
from tests.feedcheck import atom_schema, jsonfeed_validator

ATOM = {"a": "http://www.w3.org/2005/Atom"}
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T0 = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)

# XML-forbidden characters, CDATA terminator, markup, a lone and a split surrogate pair, RTL, emoji.
HOSTILE = "\x00\x0b\ufffe]]><script>alert(1)</script>\ud800 שלום عربي 😀 \ud83d\ude00 &amp; \x1f"

SETTINGS = Settings(
    sources=[
        SourceConfig(id="alpha", url="https://alpha.example/feed.xml", name="Alpha"),
        SourceConfig(id="beta", url="https://beta.example/rss", name="Beta \x0b<b>]]>"),
    ],
    feeds=[FeedConfig(name="tech", title="Tech & <Co>", description="All tech", sources=["alpha", "beta"])],
)


def article(n: int, **fields: object) -> Article:
    base: dict[str, object] = {
        "id": f"{n:032x}",
        "source_id": "alpha",
        "url": f"https://alpha.example/posts/{n}",
        "title": f"Post {n}",
        "summary": f"<p>Summary of <em>post</em> {n}</p>",
        "published": T0 + timedelta(hours=n),
        "updated": T0 + timedelta(hours=n, minutes=30),
        "first_seen": T0 + timedelta(hours=n),
    }
    return Article(**(base | fields))


def merged(*articles: Article) -> MergedFeed:
    return build_merged_feed(SETTINGS, SETTINGS.feeds[0], articles)


FULL = (
    article(1),
    article(
        2,
        content="<p>Body with <a href='https://x.example/'>link</a></p>",
        authors=(Author(name="Jane Doe", email="jane@x.example", url="https://jane.example"), Author(email="anon@x")),
        tags=("python", "feeds & things"),
        image=Image(url="https://alpha.example/i.png", caption="A picture", credit="Jane"),
        enclosures=(
            Enclosure(url="https://alpha.example/a.mp3", type="audio/mpeg", length=1234),
            Enclosure(url="https://alpha.example/b.bin"),
        ),
        language="en-GB",
        updated=T0 + timedelta(hours=9, microseconds=250),
    ),
    article(3, url=None, summary=None),  # no link and no body: Atom must still carry content
    article(4, source_id="beta", url="https://beta.example/ünï côdé/?q=a b", title="Ünïcødé 😀 עברית"),
    article(5, updated=T0 + timedelta(hours=5)),  # updated == published
)
HOSTILE_ARTICLE = article(
    9,
    source_id="beta",
    # A literal "&amp;" is left out of the URL: feedparser unescapes RSS <link> text a second time.
    url="https://evil.example/?q=" + HOSTILE.replace("&amp;", "&"),
    title=HOSTILE + "T" * 10_000,
    summary=f"<p>{HOSTILE}</p><![CDATA[ x ]]>",
    content=HOSTILE,
    authors=(Author(name=HOSTILE, email="\x00@\n", url=HOSTILE),),
    tags=(HOSTILE, "]]>"),
    image=Image(url=HOSTILE, caption=HOSTILE, credit=HOSTILE),
    enclosures=(Enclosure(url="https://evil.example/\x00 a", type="\x00/"),),
    language=HOSTILE,
    content_hash="0" * 64,  # the model's own hash cannot encode a lone surrogate
)
PAGED = build_merged_feed(
    SETTINGS,
    SETTINGS.feeds[0],
    FULL[:3],
    limit=2,
    query="?tag=a+b&limit=2&cursor=MTIzLjU6MDAw",
    next_query="?tag=a+b&limit=2&cursor=NDU2OjAwMA",
    first_query="?tag=a+b&limit=2",
)
FEEDS = {"full": merged(*FULL), "empty": merged(), "hostile": merged(HOSTILE_ARTICLE, *FULL[:2]), "paged": PAGED}


def _struct(value: time.struct_time | None) -> datetime | None:
    return None if value is None else datetime(*value[:6], tzinfo=UTC)


def _iso(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _alternate(entry: feedparser.FeedParserDict) -> str | None:
    # feedparser falls back to the id for `entry.link`; only a real alternate link counts here.
    return next((link.href for link in entry.get("links", ()) if link.rel == "alternate"), None)


def read_back(fmt: str, data: bytes) -> tuple[datetime | None, list[tuple[object, ...]]]:
    """Feed-level updated and (id, title, link, published, updated) per item, as a reader sees them."""
    if fmt == "json":  # feedparser 6 does not read JSON Feed
        doc = json.loads(data)
        items = [
            (i["id"], i["title"], i.get("url"), _iso(i["date_published"]), _iso(i["date_modified"]))
            for i in doc["items"]
        ]
        return _iso(doc["_tributary"]["updated"]), items
    ET.fromstring(data)  # strict well-formedness, on top of feedparser's own check
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == {"rss": "rss20", "atom": "atom10"}[fmt]
    items = [
        (e.id, e.title, _alternate(e), _struct(e.published_parsed), _struct(e.updated_parsed)) for e in parsed.entries
    ]
    return _struct(parsed.feed.get("updated_parsed")), items


@pytest.mark.parametrize("case", FEEDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_reads_back_as_the_stored_items(fmt: str, case: str) -> None:
    feed = FEEDS[case]
    exact = fmt == "json"  # feedparser keeps whole seconds only

    def when(dt: datetime) -> datetime:
        return dt if exact else dt.replace(microsecond=0)

    expected = [
        (article_uri(a), xml_safe(a.title), absolute_uri(a.url), when(a.published), when(a.updated)) for a in feed.items
    ]
    newest = max((a.updated for a in feed.items), default=None)
    feed_updated = newest or (EPOCH if fmt == "atom" else None)

    got_updated, got_items = read_back(fmt, render(feed, fmt))

    assert got_items == expected
    assert got_updated == (feed_updated and when(feed_updated))


@pytest.mark.parametrize("case", FEEDS)
def test_atom_is_valid_rfc4287(case: str) -> None:
    doc = etree.fromstring(render(FEEDS[case], "atom"))
    schema = atom_schema()
    assert schema.validate(doc), schema.error_log
    # The schema's Schematron rules, which RelaxNG alone does not enforce.
    assert doc.find("a:author", ATOM) is not None
    for entry in doc.iterfind("a:entry", ATOM):
        assert entry.find("a:link[@rel='alternate']", ATOM) is not None or entry.find("a:content", ATOM) is not None


@pytest.mark.parametrize("case", FEEDS)
def test_json_feed_is_valid_1_1(case: str) -> None:
    data = render(FEEDS[case], "json")
    errors = [e.message for e in jsonfeed_validator().iter_errors(json.loads(data))]
    assert errors == []
    assert data.startswith(b'{"version":"https://jsonfeed.org/version/1.1"')


def test_json_summary_is_plain_text() -> None:
    feed = merged(
        article(1, summary="<p>A <em>b</em>&amp;c<script>x()</script></p><p>d</p>"), article(2, summary="<br>")
    )
    summaries = [item.get("summary") for item in json.loads(render(feed, "json"))["items"]]
    assert summaries == [None, "A b&c d"]  # newest first; markup without text gives no summary


XPATH_NS = {
    "a": ATOM["a"],
    "atom": ATOM["a"],
    "dc": "http://purl.org/dc/elements/1.1/",
    "content": "http://purl.org/rss/1.0/modules/content/",
}
POST2, POST3 = "//item[title='Post 2']", "//a:entry[a:title='Post 3']"


@pytest.mark.parametrize(
    ("fmt", "xpath", "value"),
    [
        ("rss", "string(/rss/channel/atom:link[@rel='self']/@href)", "http://127.0.0.1:8080/feeds/tech.rss"),
        ("rss", "string(/rss/channel/lastBuildDate)", "Wed, 20 Sep 2023 02:12:00 +0000"),
        ("rss", f"string({POST2}/guid[@isPermaLink='false'])", "urn:uuid:00000000-0000-0000-0000-000000000002"),
        ("rss", f"string({POST2}/content:encoded)", "<p>Body with <a href='https://x.example/'>link</a></p>"),
        ("rss", f"string({POST2}/description)", "<p>Summary of <em>post</em> 2</p>"),
        ("rss", f"count({POST2}/dc:creator)", 1.0),  # the nameless author is left out
        ("rss", f"string({POST2}/enclosure[2]/@length)", "0"),
        ("rss", f"string({POST2}/enclosure[2]/@type)", "application/octet-stream"),
        ("rss", f"string({POST2}/source/@url)", "https://alpha.example/feed.xml"),
        ("rss", f"string({POST2}/atom:updated)", "2023-09-20T02:12:00.000250Z"),
        ("atom", "string(/a:feed/a:id)", "urn:tributary:feed:tech"),
        ("atom", "string(/a:feed/a:link[@rel='self']/@href)", "http://127.0.0.1:8080/feeds/tech.atom"),
        ("atom", "string(//a:entry[a:title='Post 2']/@xml:lang)", "en-GB"),
        ("atom", "string(//a:entry[a:title='Post 2']/a:author/a:uri)", "https://jane.example"),
        ("atom", "string(//a:entry[a:title='Post 2']/a:link[@rel='enclosure'][1]/@length)", "1234"),
        ("atom", "string(//a:entry[a:title='Post 2']/a:source/a:id)", "urn:tributary:source:alpha"),
        ("atom", "string(//a:entry[a:title='Post 2']/a:source/a:updated)", "2023-09-20T02:12:00.000250Z"),
        ("atom", "string(//a:source[a:id='urn:tributary:source:beta']/a:title)", "Beta <b>]]>"),
        ("atom", f"count({POST3}/a:content[@type='html'])", 1.0),  # no alternate link: content required
        ("atom", f"count({POST3}/a:link)", 0.0),
    ],
)
def test_xml_carries_the_metadata(fmt: str, xpath: str, value: object) -> None:
    doc = etree.fromstring(render(FEEDS["full"], fmt))
    assert doc.xpath(xpath, namespaces=XPATH_NS) == value


def test_json_carries_the_metadata() -> None:
    doc = json.loads(render(FEEDS["full"], "json"))
    post2 = next(item for item in doc["items"] if item["title"] == "Post 2")
    assert doc["feed_url"] == "http://127.0.0.1:8080/feeds/tech.json"
    assert doc["_tributary"] == {"updated": "2023-09-20T02:12:00.000250Z", "name": "tech"}
    assert post2["attachments"] == [
        {"url": "https://alpha.example/a.mp3", "mime_type": "audio/mpeg", "size_in_bytes": 1234},
        {"url": "https://alpha.example/b.bin", "mime_type": "application/octet-stream"},
    ]
    assert post2["_tributary"] == {
        "source": {"id": "alpha", "name": "Alpha", "url": "https://alpha.example/feed.xml"},
        "sources": [
            {
                "id": "alpha",
                "name": "Alpha",
                "url": "https://alpha.example/feed.xml",
                "first_seen": "2023-09-19T19:12:00Z",
            }
        ],
        "image": {"caption": "A picture", "credit": "Jane"},
    }
    assert (post2["authors"], post2["image"], post2["summary"]) == (
        [{"name": "Jane Doe", "url": "https://jane.example"}],
        "https://alpha.example/i.png",
        "Summary of post 2",
    )


@pytest.mark.parametrize(
    ("fmt", "title_of_first"),
    [
        ("rss", lambda data: ET.fromstring(data).findtext("channel/item/title")),
        ("atom", lambda data: ET.fromstring(data).findtext("a:entry/a:title", namespaces=ATOM)),
        ("json", lambda data: json.loads(data)["items"][0]["title"]),
    ],
)
def test_hostile_text_is_cleaned_not_lost(fmt: str, title_of_first: Callable[[bytes], str]) -> None:
    data = render(FEEDS["hostile"], fmt)
    title = title_of_first(data)
    assert title == xml_safe(HOSTILE_ARTICLE.title)
    assert title.startswith("]]><script>alert(1)</script> שלום عربي 😀 😀 &amp; ")  # pair rejoined
    assert len(title) > 10_000
    assert b"<script>" not in data or fmt == "json"  # markup in XML text is always escaped


@pytest.mark.parametrize("fmt", FORMATS)
def test_rendering_is_deterministic(fmt: str) -> None:
    feed = FEEDS["hostile"]
    rebuilt = merged(*reversed(feed.items))
    assert render(feed, fmt) == render(feed, fmt) == render(rebuilt, fmt)


def test_item_ids_are_uuid_urns_of_the_article_id() -> None:
    assert article_uri(article(0xABC)) == f"urn:uuid:{uuid.UUID(int=0xABC)}"


def test_every_format_has_a_renderer_and_nothing_else() -> None:
    assert RENDERERS.keys() == FORMATS.keys()
    with pytest.raises(ValueError, match="unknown feed format 'xml'"):
        render(FEEDS["full"], "xml")


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("plain ünï 😀 שלום", "plain ünï 😀 שלום"),
        ("ascii \x00\x7f", "ascii \x7f"),
        ("\t\n\r kept", "\t\n\r kept"),
        ("a\x00b\x08c\x0bd\x0ce\x1ff", "abcdef"),
        ("\ufffex\uffff", "x"),
        ("lone\ud800 \udfff", "lone "),
        ("split \ud83d\ude00 pair", "split 😀 pair"),
    ],
)
def test_xml_safe(text: str, safe: str) -> None:
    assert xml_safe(text) == safe


@pytest.mark.parametrize(
    ("dt", "rss_date", "atom_date"),
    [
        (T0, "Tue, 19 Sep 2023 17:12:00 +0000", "2023-09-19T17:12:00Z"),
        (T0.replace(microsecond=7), "Tue, 19 Sep 2023 17:12:00 +0000", "2023-09-19T17:12:00.000007Z"),
        (
            datetime.fromisoformat("2024-02-29T01:30:00+02:00"),
            "Wed, 28 Feb 2024 23:30:00 +0000",
            "2024-02-28T23:30:00Z",
        ),
        (datetime(5, 1, 1, tzinfo=UTC), "Sat, 01 Jan 0005 00:00:00 +0000", "0005-01-01T00:00:00Z"),
    ],
)
def test_dates(dt: datetime, rss_date: str, atom_date: str) -> None:
    assert (rfc822(dt), rfc3339(dt)) == (rss_date, atom_date)


def test_naive_dates_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        rfc3339(datetime(2023, 1, 1))


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://a.example/p?q=1&r=%20#f", "https://a.example/p?q=1&r=%20#f"),
        ("https://a.example/a b/ü", "https://a.example/a%20b/%C3%BC"),
        ("https://a.example/100%", "https://a.example/100%25"),
        ('https://a.example/<x>\x00"', "https://a.example/%3Cx%3E%22"),
        ("http://[::1]:8080/a[0]?b=]]>", "http://[::1]:8080/a%5B0%5D?b=%5D%5D%3E"),
        # A non-ASCII host in its IDNA form, never percent-encoded (RFC 3986 §3.2.2).
        ("http://www.詹姆斯.com/詹.html", "http://www.xn--8ws00zhy3a.com/%E8%A9%B9.html"),
        ("http://www.%E8%A9%B9%E5%A7%86%E6%96%AF.com/", "http://www.xn--8ws00zhy3a.com/"),
        ("https://u:pw@Bücher.example:8443/ü", "https://u:pw@xn--bcher-kva.example:8443/%C3%BC"),
    ],
)
def test_safe_uri(url: str, safe: str) -> None:
    assert safe_uri(url) == safe


PAGED_LINKS = {
    "self": "http://127.0.0.1:8080/feeds/tech.{fmt}?tag=a+b&limit=2&cursor=MTIzLjU6MDAw",
    "hub": "http://127.0.0.1:8080/hub",
    "first": "http://127.0.0.1:8080/feeds/tech.{fmt}?tag=a+b&limit=2",
    "next": "http://127.0.0.1:8080/feeds/tech.{fmt}?tag=a+b&limit=2&cursor=NDU2OjAwMA",
    "prev-archive": "http://127.0.0.1:8080/feeds/tech.{fmt}?tag=a+b&limit=2&cursor=NDU2OjAwMA",
}


@pytest.mark.parametrize(("fmt", "xpath"), [("atom", "/a:feed/a:link"), ("rss", "/rss/channel/atom:link")])
def test_xml_feeds_advertise_hub_self_and_rfc5005_pages(fmt: str, xpath: str) -> None:
    links = etree.fromstring(render(PAGED, fmt)).xpath(xpath, namespaces=XPATH_NS)
    got = {link.get("rel"): link.get("href") for link in links if link.get("rel") != "alternate"}
    assert got == {rel: href.format(fmt=fmt) for rel, href in PAGED_LINKS.items()}
    parsed = feedparser.parse(render(PAGED, fmt))
    assert parsed.bozo == 0
    assert {link.rel for link in parsed.feed.links} >= {"self", "hub", "next", "prev-archive"}


def test_json_feed_advertises_hub_and_next_url() -> None:
    doc = json.loads(render(PAGED, "json"))
    assert doc["hubs"] == [{"type": "WebSub", "url": "http://127.0.0.1:8080/hub"}]
    assert doc["next_url"] == PAGED_LINKS["next"].format(fmt="json")
    assert doc["feed_url"] == PAGED_LINKS["self"].format(fmt="json")
    assert "next_url" not in json.loads(render(FEEDS["full"], "json"))  # the last page has none


def test_provenance_lists_every_source_that_carried_the_item() -> None:
    from service.models import SourceRef

    refs = (
        SourceRef(id="alpha", name="Alpha", link="https://alpha.example/feed.xml", first_seen=T0),
        SourceRef(id="gamma", name="Gamma <3", link=None, first_seen=T0 + timedelta(hours=1)),
    )
    doc = json.loads(render(merged(article(1, sources=refs)), "json"))
    assert doc["items"][0]["_tributary"]["sources"] == [
        {"id": "alpha", "name": "Alpha", "url": "https://alpha.example/feed.xml", "first_seen": "2023-09-19T17:12:00Z"},
        {"id": "gamma", "name": "Gamma <3", "url": None, "first_seen": "2023-09-19T18:12:00Z"},
    ]
    atom = etree.fromstring(render(merged(article(1, sources=refs)), "atom"))
    assert atom.xpath("string(//a:entry/a:source/a:title)", namespaces=XPATH_NS) == "Alpha"


def urls_and_media_types(fmt: str, data: bytes) -> tuple[list[str], list[tuple[str, str | None]]]:
    """Item links and (url, type) of enclosures as each format publishes them."""
    if fmt == "json":
        items = json.loads(data)["items"]
        return [i["url"] for i in items], [(a["url"], a["mime_type"]) for i in items for a in i["attachments"]]
    doc = etree.fromstring(data)
    if fmt == "rss":
        return doc.xpath("//item/link/text()"), [(e.get("url"), e.get("type")) for e in doc.iterfind(".//enclosure")]
    links = doc.xpath("//a:entry/a:link[@rel='alternate']/@href", namespaces=ATOM)
    return links, [(e.get("href"), e.get("type")) for e in doc.xpath("//a:link[@rel='enclosure']", namespaces=ATOM)]


def test_every_format_publishes_the_same_urls_and_media_types() -> None:
    feed = merged(
        article(
            1,
            url="https://www.詹姆斯.com/詹.html",
            enclosures=(
                Enclosure(url="https://bücher.example/a.mp3", type="mp3"),  # not a media type: from the extension
                Enclosure(url="https://alpha.example/movie.mov", type="video"),
                Enclosure(url="https://alpha.example/stream", type=" audio/mpeg "),
                Enclosure(url="https://alpha.example/v", type='video/mp4; codecs="avc1.42E01E, mp4a.40.2"'),
                Enclosure(url="https://alpha.example/blob", type="bogus"),  # nothing to go by
            ),
        )
    )
    expected_types = ["audio/mpeg", "video/quicktime", "audio/mpeg", 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"']
    published = {fmt: urls_and_media_types(fmt, render(feed, fmt)) for fmt in FORMATS}
    for fmt, (links, enclosures) in published.items():
        assert links == ["https://www.xn--8ws00zhy3a.com/%E8%A9%B9.html"], fmt
        assert next(url for url, _ in enclosures) == "https://xn--bcher-kva.example/a.mp3", fmt
        unknown = None if fmt == "atom" else "application/octet-stream"  # RSS and JSON Feed require one
        assert [media_type for _, media_type in enclosures] == [*expected_types, unknown], fmt
