"""Pure extraction: article links on listing pages and articles on their pages, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import lxml.html
import pytest

from service.config import PageSelectors
from service.errors import ParseError
from tests.conftest import DATA
from workers.extract import (
    MAX_PAGE_BYTES,
    DateSource,
    extract_article,
    extract_links,
    extract_page,
    split_credit,
)
from workers.extract.cleanup import clean_page, join_split_body
from workers.extract.stated_dates import stated_dates
from workers.extract.trim import trim_body
from workers.normalise.entry import html_to_text

PAGES = DATA / "pages"
HKT = ZoneInfo("Asia/Hong_Kong")
RTHK_URL = "https://news.rthk.hk/rthk/en/component/k2/1720002-20230920.htm"
CAPTION = 'Azerbaijan\'s defence ministry said it was using "high precision weapons on the front line and in depth".'
RTHK_SELECTORS = PageSelectors(
    links="a.ns2-title",
    title=".itemTitle",
    published=".createddate",
    updated=".lastUpdated",
    body=".itemFullText",
    image=".itemSlideShow img",
    caption=".itemImageCaption",
    remove=[".itemSocialSharing"],
)
NOISE = (
    "Share this story",
    "facebook",
    "Temperature",
    "Humidity",
    "Photo: AFP",
    "high precision weapons",
    "Related News",
    "Copyright",
    "Latest News",
    "News Archive",
    "Last updated",
)


@pytest.mark.parametrize(
    ("html", "selector", "expected"),
    [
        pytest.param(
            (PAGES / "listing.html").read_bytes(),
            "a.ns2-title",
            [
                "https://news.rthk.hk/rthk/en/component/k2/1720002-20230920.htm",
                "https://news.rthk.hk/rthk/en/1719999-20230919.htm?utm_source=list",
            ],
            id="relative-duplicate-fragment-javascript",
        ),
        pytest.param(
            (PAGES / "listing.html").read_bytes(),
            ".ns2-inner",
            [
                "https://news.rthk.hk/rthk/en/component/k2/1720002-20230920.htm",
                "https://news.rthk.hk/rthk/en/1719999-20230919.htm?utm_source=list",
            ],
            id="selector-matches-container",
        ),
        pytest.param(
            '<base href="https://cdn.example.test/news/"><a class="s" href="a.htm">a</a><a class="s" href="mailto:x@y">m</a>'
            '<a class="s">no href</a><a class="s" href="  ">blank</a><a class="s" href="//other.test/b">b</a>',
            "a.s",
            ["https://cdn.example.test/news/a.htm", "https://other.test/b"],
            id="base-href-mailto-empty-scheme-relative",
        ),
        pytest.param("<p>no links here</p>", "a.story", [], id="nothing-matches"),
        pytest.param(
            '<ul><li><a href="/3">3</a></li><li><a href="/1">1</a></li><li><a href="/2">2</a></li><li><a href="/1#x">1</a></li></ul>',
            "li a",
            ["https://news.rthk.hk/3", "https://news.rthk.hk/1", "https://news.rthk.hk/2"],
            id="page-order-kept",
        ),
    ],
)
def test_extract_links(html: bytes | str, selector: str, expected: list[str]) -> None:
    assert extract_links(html, "https://news.rthk.hk/rthk/en/world-news.htm", selector) == expected


def rthk(selectors: PageSelectors | None):  # type: ignore[no-untyped-def]
    return extract_page((PAGES / "rthk-article.html").read_bytes(), RTHK_URL, selectors, HKT)


def test_seed_page_with_selectors() -> None:
    extracted = rthk(RTHK_SELECTORS)
    entry = extracted.entry
    assert entry.title == "Azerbaijan sends troops into Nagorno-Karabakh"
    assert entry.published == datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
    assert entry.updated == datetime(2023, 9, 20, 1, 10, tzinfo=UTC)
    assert extracted.published_from is DateSource.SELECTOR
    assert entry.image is not None
    assert entry.image.url == "https://news.rthk.hk/assets/images/rthknews/20230920/20230920_011234_AFP.jpg"
    assert entry.image.caption == CAPTION
    assert entry.image.credit == "Photo: AFP"
    assert entry.link == RTHK_URL and entry.language == "en-gb"
    text = html_to_text(entry.content)
    assert text.startswith("Azerbaijan sent troops backed by artillery strikes")
    assert text.endswith("which resulted in injuries on both sides.")
    assert "Reuters could not verify either side's assertions." in text
    for noise in NOISE:
        assert noise not in text, noise


def test_seed_page_without_selectors_trafilatura_alone() -> None:
    """No selectors at all: trafilatura and the page's metadata still give a clean article."""
    extracted = rthk(None)
    entry = extracted.entry
    assert entry.title == "Azerbaijan sends troops into Nagorno-Karabakh"
    assert entry.image is not None and entry.image.credit == "Photo: AFP" and entry.image.caption == CAPTION
    # The times the page prints (its dateline, its "Last updated" line), read without selectors.
    assert extracted.published_from is DateSource.TEXT
    assert entry.published == datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
    assert entry.updated == datetime(2023, 9, 20, 1, 10, tzinfo=UTC)
    text = html_to_text(entry.content)
    assert text.startswith("Azerbaijan sent troops") and "Reuters could not verify" in text
    for noise in NOISE:
        assert noise not in text, noise


@pytest.mark.parametrize(
    ("html", "selectors", "expected"),
    [
        pytest.param(
            (PAGES / "geneva-article.html").read_bytes(),
            None,
            {
                "title": "Ceasefire talks planned in Geneva",
                "published": datetime(2023, 9, 19, 14, 40, tzinfo=UTC),
                "updated": datetime(2023, 9, 19, 15, 5, tzinfo=UTC),
                "authors": ["Jane Reporter"],
                "image": "https://img.example.test/geneva.jpg",
                "starts": "Diplomats said on Tuesday",
                "absent": ["Share this story", "Twitter", "Copyright"],
            },
            id="opengraph-metadata",
        ),
        pytest.param(
            '<html><head><title>T | Site</title><script type="application/ld+json">'
            '{"@context": "https://schema.org", "@graph": [{"@type": "NewsArticle", "datePublished": "2024-03-01T08:00:00Z",'
            ' "dateModified": "2024-03-02T09:30:00+01:00", "author": [{"name": "A. One"}, {"name": "B. Two"}]}]}'
            "</script></head><body><article><h1>Json-LD dated</h1><p>"
            + "Plain words in a paragraph. " * 20
            + "</p></article></body></html>",
            None,
            {
                "title": "Json-LD dated",
                "published": datetime(2024, 3, 1, 8, 0, tzinfo=UTC),
                "updated": datetime(2024, 3, 2, 8, 30, tzinfo=UTC),
                "authors": ["A. One", "B. Two"],
                "image": None,
                "starts": "Plain words in a paragraph.",
                "absent": [],
            },
            id="json-ld-graph",
        ),
        pytest.param(
            '<html><body><h1 class="hl">Headline</h1><time class="t" datetime="2024-05-06T07:08:00+09:00">6 May</time>'
            '<div class="story"><figure><img src="/i.jpg"><figcaption>Crowds outside. (Reuters)</figcaption></figure>'
            '<p>First paragraph of the story.</p><div class="ad-slot advert">Buy now</div>'
            '<p class="cap">Crowds outside.</p><p>Second paragraph.</p><script>track()</script></div></body></html>',
            PageSelectors(title=".hl", published="time.t", body=".story", image=".story figure"),
            {
                "title": "Headline",
                "published": datetime(2024, 5, 5, 22, 8, tzinfo=UTC),
                "updated": None,
                "authors": [],
                "image": "https://site.test/i.jpg",
                "starts": "First paragraph of the story.",
                "absent": ["Buy now", "Crowds outside", "track()"],
            },
            id="selectors-datetime-attribute-lead-figure-dropped",
        ),
    ],
)
def test_extract_article(html: bytes | str, selectors: PageSelectors | None, expected: dict) -> None:  # type: ignore[type-arg]
    entry = extract_article(html, "https://site.test/a/story", selectors, UTC)
    assert entry.title == expected["title"]
    assert entry.published == expected["published"]
    assert entry.updated == expected["updated"]
    assert [a.name for a in entry.authors] == expected["authors"]
    assert (entry.image.url if entry.image else None) == expected["image"]
    text = html_to_text(entry.content)
    assert text.startswith(expected["starts"]), text
    for absent in expected["absent"]:
        assert absent not in text


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        (CAPTION + " Photo: AFP", (CAPTION, "Photo: AFP")),
        (
            "Fans celebrate in Manila. Photograph: Jane Doe/Reuters",
            ("Fans celebrate in Manila.", "Photograph: Jane Doe/Reuters"),
        ),
        ("Fans celebrate (Image: EPA)", ("Fans celebrate", "Image: EPA")),
        ("The skyline at dusk. © Example Photo Agency", ("The skyline at dusk.", "© Example Photo Agency")),
        ("Photo: RTHK", ("", "Photo: RTHK")),
        ("Crowds outside. (Reuters)", ("Crowds outside.", "Reuters")),
        ("Rescuers at the site (AP Photo/Jane Doe)", ("Rescuers at the site", "AP Photo/Jane Doe")),
        ("Talks resumed (in Geneva)", ("Talks resumed (in Geneva)", None)),
        ("A caption without any credit.", ("A caption without any credit.", None)),
        ("  Spaced   out\n caption  Photo:  AFP ", ("Spaced out caption", "Photo: AFP")),
    ],
)
def test_split_credit(caption: str, expected: tuple[str, str | None]) -> None:
    assert split_credit(caption) == expected


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (b"", "text/html", "empty page"),
        (b"   \n\t ", "text/html", "empty page"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "text/html", "binary"),
        (b"%PDF-1.7 binary \x00\x01\x02", "application/pdf", "binary"),
        (b'{"not": "html"}', "application/json", "not an HTML page"),
        (b"<html><body>" + b"<p>x</p>" * (MAX_PAGE_BYTES // 8) + b"</body></html>", "text/html", "exceeds"),
        (b"<html><head><title></title></head><body><script>x()</script></body></html>", "text/html", "no article"),
    ],
    ids=["empty", "whitespace", "png", "pdf", "json", "huge", "no-article"],
)
def test_bad_pages_raise_parse_error(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(ParseError, match=message) as caught:
        extract_article(body, "https://site.test/bad", None, UTC, content_type=content_type)
    assert caught.value.source_id == "https://site.test/bad"


def test_mislabelled_html_is_still_read() -> None:
    html = b"<!DOCTYPE html><html><head><title>Mislabelled</title></head><body><p>Text.</p></body></html>"
    assert extract_article(html, "https://site.test/x", None, UTC, content_type="text/plain").title == "Mislabelled"


@pytest.mark.parametrize(
    ("value", "valid"),
    [("a.ns2-title", True), ("div > a[href]", True), ("a[", False), ("::nope(", False)],
)
def test_selectors_are_validated_at_config_load(value: str, valid: bool) -> None:
    from pydantic import ValidationError

    if valid:
        assert PageSelectors(links=value, remove=[value]).links == value
    else:
        with pytest.raises(ValidationError, match="invalid CSS selector"):
            PageSelectors(links=value)
        with pytest.raises(ValidationError, match="invalid CSS selector"):
            PageSelectors(remove=["p", value])


@pytest.mark.parametrize(
    ("html", "title", "text"),
    [
        pytest.param(
            '<html><head><meta charset="big5"><title>香港新聞</title></head><body><p>香港天文台今日發出警告。</p></body></html>'.encode(
                "big5"
            ),
            "香港新聞",
            "香港天文台今日發出警告。",
            id="big5-declared",
        ),
        pytest.param(
            '<html><head><meta charset="windows-1252"><title>Caf\xe9</title></head><body><p>Caf\xe9 \x93quoted\x94</p></body></html>'.encode(
                "latin-1"
            ),
            "Café",
            "Café “quoted”",
            id="windows-1252-declared",
        ),
        pytest.param(
            b'<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>X</title></head>'
            b"<body><p>Hello world paragraph.</p></body></html>",
            "X",
            "Hello world paragraph.",
            id="xhtml",
        ),
        pytest.param(
            b'<!DOCTYPE html [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b"<html><head><title>Bomb</title></head><body><p>&b;&b;&b; text</p></body></html>",
            "Bomb",
            "&b;&b;&b; text",
            id="entity-declarations-not-expanded",
        ),
        pytest.param(
            b"<html><body>" + b"<div>" * 20000 + b"<p>deep</p>" + b"</div>" * 20000 + b"</body></html>",
            None,
            None,
            id="nested-20000-deep",
        ),
        pytest.param(b"<!-- nothing -->", None, None, id="only-a-comment"),
        pytest.param(b"<html><frameset><frame src='a.htm'></frameset></html>", None, None, id="frameset"),
    ],
)
def test_hostile_and_encoded_pages(html: bytes, title: str | None, text: str | None) -> None:
    """Decoded by their declared charset; entities never expanded; odd pages raise ParseError, never crash."""
    if title is None:
        with pytest.raises(ParseError):
            extract_article(html, "https://site.test/h", None, UTC)
        return
    entry = extract_article(html, "https://site.test/h", None, UTC)
    assert entry.title == title
    assert text in html_to_text(entry.content)
    assert "aaaaaaaaaa" not in (entry.content or "")


# --- page cleaning before extraction, body trimming after it -----------------------------------

PROSE = "Officials said the talks would resume next week after a pause over the summer months. " * 4


def _page(body: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(f"<html><body>{body}</body></html>")


def _texts(tree: lxml.html.HtmlElement) -> list[str]:
    return [" ".join(e.text_content().split()) for e in tree.iter("p")]


@pytest.mark.parametrize(
    ("body", "kept", "dropped"),
    [
        pytest.param(
            '<p>Story.</p><div class="share-bar"><p>Share</p></div><div id="Weather"><p>Sunny</p></div>',
            ["Story."],
            ["Share", "Sunny"],
            id="widgets-by-class-or-id-any-case",
        ),
        pytest.param(
            '<p>Story.</p><div style="display: none"><p>Schema copy</p></div><div hidden><p>Sign in</p></div>'
            '<span style="VISIBILITY:hidden"><p>Menu</p></span>',
            ["Story."],
            ["Schema copy", "Sign in", "Menu"],
            id="hidden-blocks",
        ),
        pytest.param(
            f'<div style="display:none"><p>{PROSE}</p></div><p>Footer.</p>',
            [PROSE.strip(), "Footer."],
            [],
            id="page-hidden-whole-until-scripts-run-kept",
        ),
        pytest.param(
            f'<div id="socialicons-sticky"><p>{PROSE}</p><p>{PROSE}</p></div><div class="social"><p>{PROSE}</p>'
            f'<a href="/a">{PROSE}</a></div>',
            [PROSE.strip(), PROSE.strip()],
            [],
            id="article-text-in-a-widget-named-container-kept",
        ),
        pytest.param(
            '<p>Story.</p><div class="related-links"><p>A short teaser.</p></div><div class="x"><p>Kept.</p></div>',
            ["Story.", "Kept."],
            ["A short teaser."],
            id="short-related-teaser",
        ),
        pytest.param(
            '<div class="social-media-embed"><blockquote class="twitter-tweet"><p>Meth. We are on it.</p>'
            '</blockquote><script src="https://platform.twitter.com/widgets.js"></script></div>'
            '<div class="share"><p>Share</p></div>',
            ["Meth. We are on it."],
            ["Share"],
            id="embedded-tweet-unwrapped",
        ),
    ],
)
def test_clean_page(body: str, kept: list[str], dropped: list[str]) -> None:
    tree = _page(body)
    clean_page(tree, [])
    texts = _texts(tree)
    assert [t for t in texts if t in kept] == [" ".join(k.split()) for k in kept]
    for text in dropped:
        assert text not in texts


def test_clean_page_drops_configured_selectors_first() -> None:
    tree = _page('<p class="keep">Story.</p><p class="promo-box">Buy.</p><p class="legal">Terms.</p>')
    clean_page(tree, [".legal"])
    assert _texts(tree) == ["Story."]


CHUNK = f"<p>{PROSE}</p>"


@pytest.mark.parametrize(
    ("body", "joined"),
    [
        pytest.param(
            f'<article><div class="grid"><div class="article__body">{CHUNK}</div></div><div class="ad">Ad</div>'
            f'<div class="grid"><div class="article__body">{CHUNK}<p>End.</p></div></div></article>',
            True,
            id="body-cut-by-an-ad",
        ),
        pytest.param(
            f'<div class="post"><h2>First post</h2><div class="entry-content">{CHUNK}</div></div>'
            f'<div class="post"><h2>Second post</h2><div class="entry-content">{CHUNK}<p>End.</p></div></div>',
            False,
            id="blog-front-page-posts-under-their-headings",
        ),
        pytest.param(
            f'<article><div class="story-body">{CHUNK}</div></article>'
            f'<article><div class="story-body">{CHUNK}<p>End.</p></div></article>',
            False,
            id="next-article-appended",
        ),
        pytest.param(
            f'<div class="post-content">{CHUNK}</div><div class="post-content"><p>End.</p></div>',
            False,
            id="short-second-container",
        ),
    ],
)
def test_join_split_body(body: str, joined: bool) -> None:
    tree = _page(body)
    join_split_body(tree)
    first = tree.xpath("//*[contains(@class, 'body') or contains(@class, 'content')]")[0]
    assert ("End." in _texts(first)) is joined


TITLE = "Ceasefire talks planned in Geneva"
STANDFIRST = "Diplomats from both sides are to meet next week, the first direct talks in months."


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            f"<h1>{TITLE}: live</h1><h2>{STANDFIRST}</h2><p>{PROSE}</p><h2>Ceasefire talks planned</h2><p>More.</p>",
            [PROSE.strip(), "Ceasefire talks planned", "More."],
            id="headline-and-standfirst-before-the-text",
        ),
        pytest.param(
            f"<p>By Jane Reporter</p><h2>{TITLE}</h2><p>{PROSE}</p>",
            ["By Jane Reporter", PROSE.strip()],
            id="short-byline-before-the-headline",
        ),
        pytest.param(
            f"<p>{PROSE}</p><h3>Related</h3><ul><li><a href='/1'>Other story</a></li><li><a href='/2'>More</a></li></ul>"
            "<p>Follow us on Twitter</p><p>Comments</p><p>© 2019 Example News. All rights reserved.</p><p>___</p>",
            [PROSE.strip()],
            id="closing-boilerplate",
        ),
        pytest.param(
            f"<p>{PROSE}</p><ul><li>Bring water</li><li>Wear a <a href='/hat'>hat</a></li></ul>"
            "<p>Subscribers say the talks will fail, but the diplomats disagree with that.</p>",
            [
                PROSE.strip(),
                "Bring water",
                "Wear a hat",
                "Subscribers say the talks will fail, but the diplomats disagree with that.",
            ],
            id="closing-list-and-paragraph-of-the-article-kept",
        ),
    ],
)
def test_trim_body(body: str, expected: list[str]) -> None:
    wrapper = lxml.html.fragment_fromstring(body, create_parent="div")
    trim_body(wrapper, None, "https://site.test/a", (TITLE, STANDFIRST))
    blocks = wrapper.xpath(".//*[self::p or self::li or self::h1 or self::h2 or self::h3]")
    assert [" ".join(e.text_content().split()) for e in blocks] == [" ".join(e.split()) for e in expected]


@pytest.mark.parametrize(
    ("html", "published", "updated"),
    [
        # the seed page's dateline and its "Last updated" line, in the page's zone
        (
            "<h1>T</h1><div>2023-09-20 HKT 01:12</div><p>Body.</p><div>Last updated: 2023-09-20 HKT 09:10</div>",
            "2023-09-19T17:12:00+00:00",
            "2023-09-20T01:10:00+00:00",
        ),
        ("<p class='byline'>Published on: 20 September 2023 09:10</p>", "2023-09-20T01:10:00+00:00", None),
        (
            "<span>Updated 2023-09-21 10:00</span><span>Posted 2023-09-20 08:00</span>",
            "2023-09-20T00:00:00+00:00",
            "2023-09-21T02:00:00+00:00",
        ),
        ("<p>20 September 2023</p>", None, None),  # a day alone is no better than the guess
        ("<p>Updated 5 minutes ago</p>", None, None),
        # a sentence that happens to hold a date-time is body text, not a dateline
        (
            "<p>The talks, which began on 2023-09-20 at 09:10 in Geneva, ended without any agreement at all.</p>",
            None,
            None,
        ),
    ],
)
def test_dates_the_page_prints(html: str, published: str | None, updated: str | None) -> None:
    tree = lxml.html.document_fromstring(f"<html><body>{html}</body></html>")
    found = stated_dates(tree, ZoneInfo("Asia/Hong_Kong"))
    assert (found.published.isoformat() if found.published else None) == published
    assert (found.updated.isoformat() if found.updated else None) == updated


def test_a_label_beside_an_inline_time_counts() -> None:
    tree = lxml.html.document_fromstring(
        "<html><body><p>Last updated <time>2023-09-20 09:10</time></p><p>By A. Writer</p></body></html>"
    )
    assert stated_dates(tree, ZoneInfo("UTC")).updated == datetime(2023, 9, 20, 9, 10, tzinfo=UTC)
