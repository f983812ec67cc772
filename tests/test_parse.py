"""Parse stage: each fixture in tests/data/feeds against expected.json, then the edges."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import feedparser
import pytest

import workers.parse as parse_module
from service.config import SourceConfig
from service.errors import ErrorKind, ParseError
from workers.normalise.entry import normalise_feed
from workers.parse import parse_feed
from workers.parse.json_adapter import parse_json_feed
from workers.parse.types import ParsedEntry
from workers.parse.xml_adapter import parse_xml_feed

FEEDS = Path(__file__).parent / "data" / "feeds"
EXPECTED = json.loads((FEEDS / "expected.json").read_text(encoding="utf-8"))
NOW = datetime.fromisoformat(EXPECTED["now"])
URL = "https://example.com/feed"


def test_every_fixture_states_what_it_expects() -> None:
    on_disk = {p.name for p in FEEDS.iterdir() if p.name != "expected.json"}
    assert on_disk == set(EXPECTED["fixtures"])


@pytest.mark.parametrize("name", sorted(EXPECTED["fixtures"]))
def test_fixture(name: str) -> None:
    expected = EXPECTED["fixtures"][name]
    body = (FEEDS / name).read_bytes()
    parse = lambda: parse_feed(body, source_id="fixture", url=expected["url"], content_type=expected["content_type"])  # noqa: E731

    if "error" in expected:
        with pytest.raises(ParseError) as caught:
            parse()
        assert (caught.value.source_id, caught.value.kind) == ("fixture", expected["error"])
        assert expected["error_message"] in caught.value.message
        return

    feed = parse()
    assert {key: getattr(feed, key) for key in expected["feed"] if key != "entries"} == {
        key: value for key, value in expected["feed"].items() if key != "entries"
    }
    assert len(feed.entries) == expected["feed"]["entries"]
    assert len(feed.warnings) == len(expected["warnings"])
    for warning, fragment in zip(feed.warnings, expected["warnings"], strict=True):
        assert fragment in warning

    source = SourceConfig(id="fixture", url=expected["url"])
    articles, warnings = normalise_feed(feed, source=source, now=NOW)
    assert warnings == []
    actual = []
    for article, wanted in zip(articles, expected["articles"], strict=False):
        dump = article.model_dump(mode="json")
        dump["flags"] = sorted(dump["flags"])
        actual.append({key: dump[key] for key in wanted})
    assert actual == expected["articles"]
    for article in articles:
        if article.guid:  # the pinned ids really are the documented formula
            assert article.id == hashlib.sha256(f"fixture\0guid:{article.guid}".encode()).hexdigest()[:32]


@pytest.mark.parametrize(
    ("body", "content_type", "kind", "message"),
    [
        (b"", "application/rss+xml", ErrorKind.NOT_A_FEED, "empty body"),
        (b" \r\n\t", None, ErrorKind.NOT_A_FEED, "empty body"),
        ("\ufeff".encode(), None, ErrorKind.NOT_A_FEED, "empty body"),
        (b"<html><body><p>hi</p></body></html>", "text/html", ErrorKind.NOT_A_FEED, "HTML page"),
        (b"just some text", "text/plain", ErrorKind.NOT_A_FEED, "not well-formed"),
        (b"<?xml version='1.0'?><opml version='2.0'><body/></opml>", "text/xml", ErrorKind.NOT_A_FEED, "no RSS"),
        (b"<rss version='2.0'><channel></chan", "application/rss+xml", ErrorKind.PARSE, "not well-formed"),
        (b'{"version": "https://jsonfeed.org/version/1.1"', "application/json", ErrorKind.NOT_A_FEED, "not UTF-8 JSON"),
        (b"[1, 2]", "application/json", ErrorKind.NOT_A_FEED, "not an object"),
        (b'{"title": "no version"}', None, ErrorKind.NOT_A_FEED, "not a JSON Feed"),
        (b'{"version": "https://jsonfeed.org/version/2", "items": []}', None, ErrorKind.PARSE, "unsupported"),
        (b'{"version": "https://jsonfeed.org/version/1.1"}', None, ErrorKind.PARSE, "items"),
        (b'{"version": "https://jsonfeed.org/version/1.1", "items": {}}', None, ErrorKind.PARSE, "items"),
        (
            b'{"version": "https://jsonfeed.org/version/1", "items": [{"title": "no id"}]}',
            None,
            ErrorKind.PARSE,
            "no readable items",
        ),
        (b"\xff\xfe{\x00}\x00", "application/json", ErrorKind.NOT_A_FEED, "not UTF-8"),
    ],
)
def test_parse_errors(body: bytes, content_type: str | None, kind: ErrorKind, message: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(body, source_id="src-1", url=URL, content_type=content_type)
    assert (caught.value.source_id, caught.value.kind) == ("src-1", kind)
    assert message in caught.value.message


RSS = b'<rss version="2.0"><channel><title>T</title><item><guid isPermaLink="false">g</guid><title>x</title></item></channel></rss>'
JSON = b'{"version": "https://jsonfeed.org/version/1.1", "items": [{"id": "g", "title": "x"}]}'


@pytest.mark.parametrize(
    ("body", "content_type", "version"),
    [
        (JSON, "application/feed+json", "json11"),
        (JSON, "text/xml", "json11"),  # the body wins over a wrong label
        (b"\xef\xbb\xbf  \n" + JSON, None, "json11"),
        (RSS, "application/json", "rss20"),
        (RSS, None, "rss20"),
        (RSS.decode().encode("utf-16"), "application/rss+xml", "rss20"),  # BOM, no declaration
        (('<?xml version="1.0" encoding="utf-16"?>' + RSS.decode()).encode("utf-16"), None, "rss20"),
        (RSS.decode().encode("utf-32"), None, "rss20"),
    ],
)
def test_format_sniffing(body: bytes, content_type: str | None, version: str) -> None:
    feed = parse_feed(body, source_id="s", url=URL, content_type=content_type)
    assert (feed.version, [e.guid for e in feed.entries]) == (version, ["g"])


def test_content_type_reaches_feedparser_and_missing_one_is_only_a_warning() -> None:
    labelled = parse_feed(RSS, source_id="s", url=URL, content_type="application/rss+xml")
    unlabelled = parse_feed(RSS, source_id="s", url=URL, content_type=None)
    assert labelled.warnings == ()
    assert len(unlabelled.entries) == 1 and "Content-type" in unlabelled.warnings[0]


@pytest.mark.parametrize(
    "body",
    [
        (FEEDS / "entity-bomb.xml").read_bytes(),
        (FEEDS / "entity-bomb.xml").read_bytes().replace(b"\n <!ENTITY", b"<!ENTITY"),  # one line
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel><title>&x;</title></channel></rss>',
        b'<!DOCTYPE rss [<!entity a "b">]><rss/>',
        (FEEDS / "entity-bomb.xml").read_text().encode("utf-16"),
    ],
    ids=["billion-laughs", "one-line", "external", "lowercase", "utf-16"],
)
def test_entity_declarations_are_refused_before_feedparser(body: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser ran on a document declaring entities")

    monkeypatch.setattr(feedparser, "parse", must_not_run)
    with pytest.raises(ParseError) as caught:
        parse_feed(body, source_id="s", url=URL, content_type="application/xml")
    assert caught.value.kind == ErrorKind.PARSE and "entity" in caught.value.message


def test_entity_text_inside_content_is_not_a_declaration() -> None:
    body = b'<rss version="2.0"><channel><title>T</title><item><guid>g</guid><description><![CDATA[Use <!ENTITY x "y"> to declare]]></description></item></channel></rss>'
    feed = parse_feed(body, source_id="s", url=URL, content_type="application/rss+xml")
    assert "!ENTITY x" in (feed.entries[0].summary or "")


def test_body_that_is_a_path_is_never_opened(tmp_path: Path) -> None:
    # feedparser.parse(bytes) tries open(bytes) first; a body naming a file must not be read.
    target = tmp_path / "feed.xml"
    target.write_bytes(RSS)
    with pytest.raises(ParseError) as caught:
        parse_feed(str(target).encode(), source_id="s", url=URL, content_type="text/plain")
    assert caught.value.kind == ErrorKind.NOT_A_FEED


def test_unexpected_exceptions_are_wrapped_with_the_source_id(monkeypatch: pytest.MonkeyPatch) -> None:
    boom = RuntimeError("boom")

    def crash(*args: object, **kwargs: object) -> None:
        raise boom

    monkeypatch.setattr(parse_module, "parse_xml_feed", crash)
    with pytest.raises(ParseError) as caught:
        parse_feed(RSS, source_id="src-9", url=URL, content_type=None)
    assert (caught.value.source_id, caught.value.kind, caught.value.__cause__) == ("src-9", ErrorKind.INTERNAL, boom)


def test_bozo_error_chains_the_feedparser_exception() -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(b"<rss version='2.0'><channel></chan", source_id="s", url=URL, content_type="text/xml")
    assert caught.value.__cause__ is not None


ENTRY_DATES = [
    ("<pubDate>Wed, 20 Sep 2023 01:12:00 HKT</pubDate>", "2023-09-19T17:12:00+00:00", None),
    (
        "<pubDate>Wed, 20 Sep 2023 01:12:00 +0800</pubDate><dc:date>2023-09-21T00:00:00Z</dc:date>",
        "2023-09-19T17:12:00+00:00",
        "2023-09-21T00:00:00+00:00",
    ),
    ("<dc:date>2023-09-20 HKT 01:12</dc:date>", None, "2023-09-19T17:12:00+00:00"),
    ("<dcterms:created>2023-09-20T01:12:00+08:00</dcterms:created>", "2023-09-19T17:12:00+00:00", None),
    # Unreadable by us, readable by feedparser (Greek): its *_parsed is the fallback.
    ("<pubDate>Κυρ, 11 Ιούλ 2004 12:00:00 EST</pubDate>", "2004-07-11T17:00:00+00:00", None),
    ("<pubDate>not a date</pubDate>", None, None),
    # Refused by us, "repaired" by feedparser (Mar 1, 2001, 2000, a 99-hour offset): no fallback.
    ("<dc:date>2024-02-30T00:00:00Z</dc:date>", None, None),
    ("<pubDate>Mon, 01 Jan 0001 00:00:00 GMT</pubDate>", None, None),
    ("<dc:date>-0001-01-01T00:00:00Z</dc:date>", None, None),
    ("<pubDate>Mon, 01 Jan 2024 00:00:00 +9999</pubDate>", None, None),
    ("<dc:date>2024-01-01T00:00:00+99:99</dc:date>", None, None),
]


@pytest.mark.parametrize(("xml", "published", "updated"), ENTRY_DATES)
def test_entry_dates(xml: str, published: str | None, updated: str | None) -> None:
    body = (
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/">'
        f"<channel><title>T</title><item><guid>g</guid>{xml}</item></channel></rss>"
    ).encode()
    entry = parse_xml_feed(body, url=URL, headers={"Content-Type": "application/rss+xml"}).entries[0]
    assert (entry.published and entry.published.isoformat(), entry.updated and entry.updated.isoformat()) == (
        published,
        updated,
    )


def test_broken_entry_is_skipped_with_a_warning_not_the_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    body = b'<rss version="2.0"><channel><title>T</title><item><guid isPermaLink="false">a</guid></item><item><guid isPermaLink="false">b</guid><enclosure url="/x" length="12"/></item></channel></rss>'
    import workers.parse.xml_adapter as feed_module

    real = feed_module.read_entry

    def fragile(raw: dict[str, Any], *, base: str, feed_url: str, default_tz: tzinfo) -> ParsedEntry:
        if dict.get(raw, "id") == "b":
            raise ValueError("cannot read enclosure")
        return real(raw, base=base, feed_url=feed_url, default_tz=default_tz)

    monkeypatch.setattr(feed_module, "read_entry", fragile)
    feed = parse_xml_feed(body, url=URL, headers={"content-type": "application/rss+xml"})
    assert [e.guid for e in feed.entries] == ["a"]
    assert feed.warnings == ("entry 1 skipped: ValueError: cannot read enclosure",)


def test_feed_fails_only_when_no_entry_is_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    import workers.parse.xml_adapter as feed_module

    monkeypatch.setattr(feed_module, "read_entry", lambda raw, **_: 1 / 0)
    with pytest.raises(ParseError) as caught:
        parse_xml_feed(RSS, url=URL, headers={}, source_id="s")
    assert caught.value.kind == ErrorKind.PARSE and "ZeroDivisionError" in caught.value.message


def test_empty_but_valid_feed_is_not_an_error() -> None:
    feed = parse_feed(
        b'<rss version="2.0"><channel><title>T</title></channel></rss>', source_id="s", url=URL, content_type="text/xml"
    )
    assert (feed.version, feed.title, feed.entries) == ("rss20", "T", ())


@pytest.mark.parametrize(
    ("item", "check"),
    [
        ({"id": 3.5, "title": "float id"}, lambda e: e.guid == "3.5"),
        ({"id": "x", "attachments": [{"url": "a", "size_in_bytes": 1e309}]}, lambda e: e.enclosures[0].length is None),
        ({"id": "x", "attachments": [{"url": "a", "size_in_bytes": -5}]}, lambda e: e.enclosures[0].length is None),
        ({"id": "x", "authors": [{"url": "mailto:a@b.c"}]}, lambda e: e.authors[0].email == "a@b.c"),
        ({"id": "x"}, lambda e: e.authors[0].name == "Feed Author"),  # 1.1: items inherit feed authors
        ({"id": "x", "summary": "a < b"}, lambda e: e.summary == "a &lt; b"),
        ({"id": "x", "date_published": "junk"}, lambda e: e.published is None),
        ({"id": "x", "external_url": "/ext"}, lambda e: e.link == "https://example.com/ext"),
        ({"id": "x", "banner_image": "b.png"}, lambda e: e.image.url == "https://example.com/b.png"),
    ],
)
def test_json_item_members(item: dict, check) -> None:
    body = json.dumps(
        {"version": "https://jsonfeed.org/version/1.1", "authors": [{"name": "Feed Author"}], "items": [item]}
    )
    feed = parse_json_feed(body.encode(), url=URL)
    assert check(feed.entries[0])


@pytest.mark.parametrize(
    ("item", "problem"),
    [
        ({"title": "no id"}, "id"),
        ({"id": "  "}, "empty id"),
        ({"id": True}, "id"),
        ({"id": "x", "title": 5}, "title"),
        ({"id": "x", "tags": "one"}, "tags"),
        ({"id": "x", "attachments": [{"mime_type": "a/b"}]}, "attachments.0.url"),
        ("not an object", "valid dictionary"),
    ],
)
def test_json_bad_items_are_skipped_with_a_warning(item: object, problem: str) -> None:
    body = json.dumps({"version": "https://jsonfeed.org/version/1", "items": [item, {"id": "good"}]})
    feed = parse_json_feed(body.encode(), url=URL)
    assert [e.guid for e in feed.entries] == ["good"]
    assert len(feed.warnings) == 1 and feed.warnings[0].startswith("item 0 skipped") and problem in feed.warnings[0]


def test_json_wrong_typed_feed_member_is_dropped_not_fatal() -> None:
    body = (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": ["x"], "home_page_url": "/", "items": [{"id": "a"}]}'
    )
    feed = parse_json_feed(body, url="https://example.com/dir/feed.json")
    assert (feed.title, feed.link, len(feed.entries)) == (None, "https://example.com/", 1)
    assert feed.warnings == ("feed members dropped: title: Input should be a valid string",)


WIRE = "https://wire.example.net/feeds/world.rss"
REFERENCES = [
    "story.html",
    "./story.html",
    "../story.html",
    "../../../story.html",
    "/story.html",
    "//other.example/story.html",
    "?page=2",
    "#top",
    "a/b/../c.html?x=1&y=2#f",
    "../" * 12 + "deeper-than-any-base.html",
    ".",
    "./",
    "..",
    "x;params",
    "%7Euser/ü ä.html",
    "https://absolute.example/x?",
    "tag:wire.example.net,2023:7",
]
CHANNEL_LINKS = [
    "https://www.site.example/news/",
    "https://www.site.example/news/index.html?edition=uk",
    "https://www.site.example",
    "https://www.site.example/a/b/c/d/e/f/g/h/i/j/",
]


def rss_item(channel_link: str, item: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title><link>{channel_link}</link>'
        f"<item><title>t</title>{item}</item></channel></rss>"
    ).encode()


@pytest.mark.parametrize("channel_link", CHANNEL_LINKS)
def test_rss_item_links_resolve_against_the_channel_link(channel_link: str) -> None:
    """Every form of relative reference reads as if resolved against the channel link directly."""
    for reference in REFERENCES:
        item = f"<link>{reference.replace('&', '&amp;')}</link><enclosure url='{reference}' length='1' type='a/b'/>"
        [entry] = parse_xml_feed(rss_item(channel_link, item), url=WIRE, headers={}).entries
        expected = urljoin(channel_link, reference)
        assert entry.link == expected, reference
        assert [e.url for e in entry.enclosures] == [expected], reference


@pytest.mark.parametrize(
    ("guid", "identity"),
    [
        ("<guid>2023/09/a.html</guid>", "https://wire.example.net/feeds/2023/09/a.html"),  # as before: feed URL
        ("<guid isPermaLink='true'>/a</guid>", "https://wire.example.net/a"),
        ("<guid isPermaLink='false'>2023/09/a.html</guid>", "2023/09/a.html"),  # never resolved
        ("<guid>https://site.example/a?</guid>", "https://site.example/a"),  # normalised as before
        ("<guid>tag:site.example,2023:a</guid>", "tag:site.example,2023:a"),
    ],
)
def test_guids_keep_the_identity_they_had(guid: str, identity: str) -> None:
    [entry] = parse_xml_feed(rss_item("https://www.site.example/news/", guid), url=WIRE, headers={}).entries
    assert entry.guid == identity


def test_a_story_from_the_site_and_from_a_wire_feed_is_one_url() -> None:
    site = rss_item("https://www.site.example/news/", "<link>https://www.site.example/news/2023/09/story.html</link>")
    wire = (FEEDS / "relative-links.rss").read_bytes()
    urls = []
    for body, url in ((site, "https://www.site.example/news/feed.xml"), (wire, WIRE)):
        feed = parse_feed(body, source_id="s", url=url, content_type="application/rss+xml")
        articles, _ = normalise_feed(feed, source=SourceConfig(id="s", url=url), now=NOW)
        urls.append(articles[0].url)
    assert urls[0] == urls[1] == "https://www.site.example/news/2023/09/story.html"


def test_atom_entries_keep_xml_base_and_the_feed_url() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><link href="https://site.example/"/>'
        b"<entry><title>a</title><id>a</id><link href='a.html'/></entry>"
        b"<entry xml:base='https://cdn.example/x/'><title>b</title><id>b</id><link href='b.html'/></entry></feed>"
    )
    entries = parse_xml_feed(body, url=WIRE, headers={}).entries
    assert [(e.guid, e.link) for e in entries] == [
        ("https://wire.example.net/feeds/a", "https://wire.example.net/feeds/a.html"),
        ("https://cdn.example/x/b", "https://cdn.example/x/b.html"),
    ]


def test_a_relative_xml_base_on_an_item_resolves_against_the_channel_link() -> None:
    body = (
        b'<rss version="2.0"><channel><title>T</title><link>https://www.site.example/news/</link>'
        b'<item xml:base="archive/"><title>t</title><guid>g</guid><link>old.html</link>'
        b'<description>&lt;a href="x.html"&gt;x&lt;/a&gt;</description>'
        b'<enclosure url="old.mp3" length="1" type="audio/mpeg"/></item></channel></rss>'
    )
    [entry] = parse_xml_feed(body, url=WIRE, headers={}).entries
    archive = "https://www.site.example/news/archive/"
    assert (entry.link, entry.summary) == (archive + "old.html", f'<a href="{archive}x.html">x</a>')
    assert [e.url for e in entry.enclosures] == [archive + "old.mp3"]
    assert entry.guid == "https://wire.example.net/feeds/archive/g"  # identity: xml:base, then the feed URL
