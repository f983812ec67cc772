"""Normalise stage: identity, titles, URLs, dates and flags, link absolutising. Pure: no I/O."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from service.config import SourceConfig
from service.models import Article, ArticleFlag, Author, Enclosure, Image
from workers.normalise.authors import merge_authors
from workers.normalise.entry import (
    REJECTED_FIELD_CHARS,
    article_id,
    drop_c1,
    html_to_text,
    normalise_entries,
    normalise_entry,
    normalise_feed,
)
from workers.parse import parse_feed
from workers.parse.types import ParsedEntry, ParsedFeed

NOW = datetime(2024, 1, 1, tzinfo=UTC)
SOURCE = SourceConfig(id="src", url="https://example.com/feeds/main.xml")
FEED = ParsedFeed(title="F", link="https://example.com/blog/", language="en", version="rss20")
T1 = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
T2 = datetime(2023, 9, 20, 9, 0, tzinfo=UTC)


def sha(identity: str, source_id: str = "src") -> str:
    return hashlib.sha256(f"{source_id}\0{identity}".encode()).hexdigest()[:32]


@pytest.mark.parametrize(
    ("args", "identity"),
    [
        (("g-1", "https://e.com/a", "T", T1), "guid:g-1"),
        ((None, "https://e.com/a", "T", T1), "link:https://e.com/a"),
        ((None, None, "T", T1), "title:T|2023-09-19T17:12:00+00:00"),
        ((None, None, "T", None), "title:T|"),
        (("", "", "T", None), "title:T|"),
    ],
)
def test_article_id(args: tuple[Any, ...], identity: str) -> None:
    assert article_id("src", *args) == sha(identity)


def test_article_id_depends_on_source_and_needs_an_identity() -> None:
    assert article_id("a", "g", None, None, None) != article_id("b", "g", None, None, None)
    with pytest.raises(ValueError, match="no guid, link or title"):
        article_id("src", None, None, None, T1)


def entry(**fields: Any) -> ParsedEntry:
    return ParsedEntry(**{"guid": "g", **fields})


def norm(feed: ParsedFeed = FEED, **fields: Any) -> Article:
    return normalise_entry(entry(**fields), source=SOURCE, feed=feed, now=NOW)


@pytest.mark.parametrize(
    ("fields", "title"),
    [
        ({"title": "  Plain   title\n\twith  space "}, "Plain title with space"),
        ({"title": "Fish &amp; <b>Chips</b>", "title_is_html": True}, "Fish & Chips"),
        ({"title": "a &lt;b&gt; c <script>x()</script>", "title_is_html": True}, "a <b> c"),
        ({"title": "Fish &amp; Chips"}, "Fish & Chips"),  # double-escaped plain text is decoded too
        ({"title": "<p>  </p>", "title_is_html": True, "summary": "<p>From the summary</p>"}, "From the summary"),
        ({"title": None, "summary": "<p>" + "word " * 30 + "</p>"}, ("word " * 16).strip() + "…"),
        ({"title": None, "content": "<p>Only content</p>"}, "Only content"),
        ({"title": None}, "(untitled)"),
    ],
)
def test_title(fields: dict[str, Any], title: str) -> None:
    assert norm(**fields).title == title


@pytest.mark.parametrize(
    ("link", "feed_link", "url"),
    [
        ("https://other.org/x", FEED.link, "https://other.org/x"),
        ("/posts/1", FEED.link, "https://example.com/posts/1"),
        ("posts/1", FEED.link, "https://example.com/blog/posts/1"),
        ("posts/1", None, "https://example.com/feeds/posts/1"),  # no feed link: the source URL
        ("posts/1", "/home/", "https://example.com/home/posts/1"),  # relative feed link
        ("javascript:alert(1)", FEED.link, None),
        ("mailto:a@b.c", FEED.link, None),
        ("http://[::1", FEED.link, None),
        (None, FEED.link, None),
    ],
)
def test_url(link: str | None, feed_link: str | None, url: str | None) -> None:
    feed = FEED.model_copy(update={"link": feed_link})
    assert norm(feed, link=link).url == url


@pytest.mark.parametrize(
    ("published", "updated", "expected", "flags"),
    [
        (T1, T2, (T1, T2), set()),
        (T1, None, (T1, T1), {ArticleFlag.UPDATED_MISSING}),
        (None, T2, (T2, T2), set()),
        (None, None, (NOW, NOW), {ArticleFlag.PUBLISHED_MISSING, ArticleFlag.UPDATED_MISSING}),
        (T2, T1, (T2, T2), set()),  # the model keeps updated >= published
    ],
)
def test_dates_and_flags(
    published: datetime | None, updated: datetime | None, expected: tuple[datetime, datetime], flags: set[ArticleFlag]
) -> None:
    article = norm(published=published, updated=updated)
    assert (article.published, article.updated, article.first_seen, set(article.flags)) == (*expected, NOW, flags)


def test_identity_uses_the_feed_date_not_now() -> None:
    one = normalise_entry(entry(guid=None, title="T"), source=SOURCE, feed=FEED, now=NOW)
    two = normalise_entry(entry(guid=None, title="T"), source=SOURCE, feed=FEED, now=T2)
    assert one.id == two.id == sha("title:T|")
    assert norm(guid=None, link="/a", title="T").id == sha("link:https://example.com/a")


@pytest.mark.parametrize(
    ("fields", "check"),
    [
        ({"tags": ("News", " news ", "Hong  Kong", "", "Tech", "News")}, {"tags": ("News", "Hong Kong", "Tech")}),
        ({"language": "fr"}, {"language": "fr"}),
        ({}, {"language": "en"}),
        ({"authors": (Author(name="A"),)}, {"authors": (Author(name="A"),)}),
        (
            {"enclosures": (Enclosure(url="https://e.com/a.mp3"),)},
            {"enclosures": (Enclosure(url="https://e.com/a.mp3"),)},
        ),
        ({}, {"source_id": "src", "guid": "g"}),
    ],
)
def test_passthrough_fields(fields: dict[str, Any], check: dict[str, Any]) -> None:
    article = norm(**fields)
    assert {key: getattr(article, key) for key in check} == check


def test_summary_and_content_links_resolve_against_the_entry_link() -> None:
    article = norm(
        link="https://example.com/2023/09/post.html",
        summary='<a href="other.html">x</a>',
        content='<p><img src="img/a.png" srcset="img/a2.png 2x"> <a href="https://abs.org/">y</a></p>',
    )
    assert article.summary == '<a href="https://example.com/2023/09/other.html" rel="noopener noreferrer">x</a>'
    assert article.content == (
        '<p><img src="https://example.com/2023/09/img/a.png" srcset="https://example.com/2023/09/img/a2.png 2x">'
        ' <a href="https://abs.org/" rel="noopener noreferrer">y</a></p>'
    )


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>a<br>b</p>", "a b"),
        ("<p>word</p><p>Next</p>", "word Next"),
        ("<li>a</li><li>b</li>", "a b"),
        ("<b>bo</b>ld", "bold"),
        ("<p>a</p> <p>b</p>", "a b"),
        ("&eacute;t&eacute;", "été"),
        (None, ""),
        ("<style>p{}</style>x", "x"),
    ],
)
def test_html_to_text(html: str | None, text: str) -> None:
    assert html_to_text(html) == text


def test_normalise_feed_skips_unidentifiable_and_repeated_entries_with_warnings() -> None:
    feed = FEED.model_copy(
        update={
            "entries": (
                entry(guid="a", title="A"),
                ParsedEntry(),  # nothing to identify it by
                entry(guid="a", title="A again"),
                entry(guid="b", title="B"),
            ),
            "warnings": ("from the parser",),
        }
    )
    articles, warnings = normalise_feed(feed, source=SOURCE, now=NOW)
    assert [a.title for a in articles] == ["A", "B"]
    assert [w.split(":")[0] for w in warnings] == ["entry 1 skipped", "entry 2 skipped"]
    assert "no guid, link or title" in warnings[0] and "repeats the id" in warnings[1]
    for article in articles:
        assert Article.model_validate(article.model_dump()) == article


def test_rejected_entries_are_returned_with_their_fields_cut_short() -> None:
    bad = ParsedEntry(link="javascript:" + "x" * 2000, published=NOW)  # no web link, guid or title
    feed = FEED.model_copy(update={"entries": (entry(guid="a", title="A"), bad, entry(guid="a", title="again"))})
    done = normalise_entries(feed, source=SOURCE, now=NOW)
    assert [a.title for a in done.articles] == ["A"]
    [rejected] = done.rejected  # the repeated id is a warning only: nothing of it is lost
    assert rejected.index == 1 and rejected.error == "entry has no guid, link or title to identify it by"
    assert rejected.entry == {"link": bad.link[:REJECTED_FIELD_CHARS], "published": NOW.isoformat()}
    assert len(done.warnings) == 2


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        normalise_entry(entry(), source=SOURCE, feed=FEED, now=datetime(2024, 1, 1))


# -- schema rules: summary_text, canonical URL, provenance, identity -----------------------

from workers.normalise.entry import summary_text  # noqa: E402


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Short &amp; sweet</p>", "Short & sweet"),
        (None, None),
        ("<p> </p>", None),
        ("<p>" + "word " * 100 + "</p>", ("word " * 56).strip() + "…"),
        ("x" * 300, "x" * 279 + "…"),  # no word boundary: cut hard
        ("<p>" + "a" * 270 + " endings, more text here</p>", "a" * 270 + " endings…"),
    ],
)
def test_summary_text(html: str | None, text: str | None) -> None:
    result = summary_text(html)
    assert result == text
    assert result is None or len(result) <= 280


def test_summary_text_falls_back_to_content() -> None:
    assert norm(content="<p>Body <b>text</b></p>").summary_text == "Body text"
    assert norm(summary="<p>Sum</p>", content="<p>Body</p>").summary_text == "Sum"


def test_url_is_canonical_and_provenance_is_recorded() -> None:
    article = norm(link="HTTPS://Example.com:443/a?utm_source=rss&id=1#c")
    assert article.url == "https://example.com/a?id=1"
    (ref,) = article.sources
    assert (ref.id, ref.name, ref.link, ref.url, ref.first_seen) == (
        "src",
        "src",
        SOURCE.url,
        "https://Example.com:443/a?utm_source=rss&id=1#c",
        NOW,
    )


def test_tracking_parameters_change_neither_id_nor_hash() -> None:
    one = norm(guid="https://example.com/p/1?utm_source=a", link="https://example.com/p/1?utm_source=a")
    two = norm(guid="https://example.com/p/1?utm_source=b", link="https://example.com/p/1?fbclid=x")
    assert (one.id, one.content_hash) == (two.id, two.content_hash)
    no_guid = norm(guid=None, link="/p/2?utm_medium=x")
    assert no_guid.id == sha("link:https://example.com/p/2")


def test_first_content_image_is_the_fallback_image() -> None:
    assert norm(content='<p><img src="/i/1.jpg"></p>').image == Image(url="https://example.com/i/1.jpg")
    assert norm(summary='<img src="s.png">', content="<p>no image</p>").image == Image(
        url="https://example.com/blog/s.png"
    )
    feed_image = Image(url="https://cdn.example/feed.jpg")
    assert norm(image=feed_image, content='<img src="/i/1.jpg">').image == feed_image


C1 = "\x80\x85\x93\x9f"


def test_c1_controls_are_dropped_from_every_text_an_article_shows() -> None:
    article = norm(
        title=f"Caf\xe9{C1} menu",
        summary=f"<p>A{C1} &#x81;b</p>",
        content=f"<p>c{C1}</p>",
        authors=(Author(name=f"Jo{C1}", email=f"jo{C1}@x.example"),),
        tags=(f"t{C1}ag",),
        image=Image(url="https://example.com/i.png", caption=f"cap{C1}", credit=f"cred{C1}"),
        language=f"en{C1}",
    )
    assert article.title == "Caf\xe9 menu"
    assert (article.summary, article.content, article.summary_text) == ("<p>A b</p>", "<p>c</p>", "A b")
    assert article.authors == (Author(name="Jo", email="jo@x.example"),)
    assert (article.tags, article.language) == (("tag",), "en")
    assert article.image == Image(url="https://example.com/i.png", caption="cap", credit="cred")
    # Windows-1252 punctuation and other non-ASCII text are kept: only U+0080–U+009F go.
    assert norm(title="\u201cquoted\u201d \xa0\u20ac \u9999\u6e2f").title == "\u201cquoted\u201d \u20ac \u9999\u6e2f"


def test_drop_c1_drops_exactly_the_c1_controls() -> None:
    pieces = ["a", "\x80", "\x9f", "\xa0", "\xc2", "\x7f", "\n", "\u00e9", "\u2014", "\ud800", "\U0001f600"]
    rnd = random.Random(5)
    for _ in range(20_000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(0, 8)))
        assert drop_c1(text) == re.sub("[\x80-\x9f]", "", text), repr(text)


CAROL = Author(name="Carol Nguyen", email="carol@example.net")


@pytest.mark.parametrize(
    ("authors", "merged"),
    [
        ((CAROL, Author(name="Carol Nguyen")), (CAROL,)),
        ((Author(name="Carol Nguyen"), CAROL), (CAROL,)),  # the richer record wins, in the first place
        (
            (Author(name="carol  NGUYEN"), Author(name="Carol Nguyen", url="https://c.example")),
            (Author(name="Carol Nguyen", url="https://c.example"),),
        ),
        (
            (Author(name="Carol Nguyen", url="https://c.example"), CAROL),
            (CAROL.model_copy(update={"url": "https://c.example"}),),
        ),
        ((Author(email="CAROL@example.net"), CAROL), (CAROL,)),  # a nameless record with her e-mail is her
        ((Author(email="bob@example.net"), CAROL), (Author(email="bob@example.net"), CAROL)),
        (
            (Author(name="B"), Author(name="A"), Author(name=" b ", email="b@x")),
            (Author(name="b", email="b@x"), Author(name="A")),  # the richer spelling
        ),
        ((Author(name="A  B"),), (Author(name="A B"),)),
        ((Author(name="A", email="", url=""),), (Author(name="A"),)),  # empty fields are no fields
        ((Author(name="", email="e@x"),), (Author(email="e@x"),)),
        ((Author(name=" ", email=""),), ()),  # one record with nothing in it is nobody
        ((CAROL,), (CAROL,)),
        ((), ()),
    ],
)
def test_merge_authors(authors: tuple[Author, ...], merged: tuple[Author, ...]) -> None:
    assert merge_authors(authors) == merged


AUTHOR_FEEDS = {
    "rss": (
        b'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>T</title>'
        b'<item><guid isPermaLink="false">1</guid><title>x</title>'
        b"<author>carol@example.net (Carol Nguyen)</author><dc:creator>Carol Nguyen</dc:creator>"
        b"</item></channel></rss>"
    ),
    "atom": (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:f</id><updated>2024-01-01T00:00:00Z</updated>'
        b"<entry><id>urn:1</id><title>x</title><updated>2024-01-01T00:00:00Z</updated>"
        b"<author><name>Carol Nguyen</name></author>"
        b"<author><name>carol nguyen</name><email>carol@example.net</email></author></entry></feed>"
    ),
    "json": (
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [{"id": "1", "title": "x",'
        b' "authors": [{"name": "Carol Nguyen"}, {"name": " Carol  Nguyen ", "url": "mailto:carol@example.net"}]}]}'
    ),
}


@pytest.mark.parametrize("fmt", AUTHOR_FEEDS)
def test_one_person_named_twice_is_one_author(fmt: str) -> None:
    parsed = parse_feed(AUTHOR_FEEDS[fmt], source_id="src", url=SOURCE.url, content_type=None)
    [article], _ = normalise_feed(parsed, source=SOURCE, now=NOW)
    [author] = article.authors
    assert (author.name.casefold(), author.email) == ("carol nguyen", "carol@example.net")  # type: ignore[union-attr]
