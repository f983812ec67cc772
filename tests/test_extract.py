"""Pure extraction: article links on listing pages and articles on their pages, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

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
    # Only the day is on the page outside the selectors: a guess, flagged as such.
    assert extracted.published_from is DateSource.GUESS
    assert entry.published == datetime(2023, 9, 19, 16, 0, tzinfo=UTC)
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
