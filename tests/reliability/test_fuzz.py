"""Fuzzing parse -> normalise -> render: generated RSS, Atom and JSON Feed documents, and byte-level
mutations of the corpus feeds. Whatever goes in, nothing but ParseError comes out of parsing,
nothing at all out of normalising and rendering, and every rendering is well-formed XML or valid
JSON with every field within [limits].

Bounded by the "ci" hypothesis profile (tests/conftest.py: 40 examples a test, derandomised).
A longer hunt: ``pytest tests/reliability/test_fuzz.py --hypothesis-profile=fuzz-long``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import FeedConfig, LimitsConfig, Settings, SourceConfig
from service.errors import ParseError
from service.feeds.merge import build_merged_feed
from service.feeds.render import render
from service.feeds.render.html import render_feed_page
from tests.conftest import CORPORA, FEED_SUFFIXES, FEED_SUITES, corpus
from workers.normalise.entry import normalise_feed
from workers.parse import parse_feed

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
URL = "https://fuzz.example/feed.xml"
SOURCE = SourceConfig(id="fuzz", url=URL)
SETTINGS = Settings(sources=[SOURCE], feeds=[FeedConfig(name="f", title="F", sources=["fuzz"])])
# Small caps, so generated documents reach them and the cutting code runs too.
LIMITS = LimitsConfig(title_chars=40, summary_chars=300, content_chars=600, authors=2, tags=3, enclosures=2)
MAX_CORPUS_FILE = 64 * 1024

# -- the pipeline under test -------------------------------------------------------------------


def run_pipeline(body: bytes, content_type: str | None) -> None:
    try:
        feed = parse_feed(body, source_id="fuzz", url=URL, content_type=content_type, max_entries=20)
    except ParseError:
        return
    articles, _ = normalise_feed(feed, source=SOURCE, now=NOW, limits=LIMITS)
    for article in articles:
        assert len(article.title) <= LIMITS.title_chars
        assert article.summary is None or len(article.summary) <= LIMITS.summary_chars
        assert article.content is None or len(article.content) <= LIMITS.content_chars
        assert len(article.authors) <= LIMITS.authors and len(article.tags) <= LIMITS.tags
        assert all(e.url.lower().startswith(("http://", "https://")) for e in article.enclosures)
    merged = build_merged_feed(SETTINGS, SETTINGS.feeds[0], articles)
    for fmt in ("rss", "atom"):
        ET.fromstring(render(merged, fmt))
    json.loads(render(merged, "json"))
    render_feed_page(merged).decode("utf-8")


# -- generated documents -----------------------------------------------------------------------

# Text with what breaks naive handling: markup, entities, controls, surrogates, RTL, astral.
nasty_text = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "<b>bold</b> & <i>it</i>",
            "&amp;amp; &lt;script&gt;alert(1)&lt;/script&gt;",
            "]]><![CDATA[",
            "\x00\x0b\x1f\x7f\x85\ufffe",
            "שלום عربي 😀",
            "<!-- c --><!ENTITY x 'y'>",
            "a" * 500,
            "word " * 200,
        ]
    ),
)
dates = st.one_of(
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)).map(
        lambda d: d.strftime("%a, %d %b %Y %H:%M:%S +0000") if d.year >= 1900 else d.isoformat()
    ),
    st.sampled_from(
        ["0001-01-01T00:00:00Z", "-0001-01-01", "2024-02-30T00:00:00Z", "Mon, 01 Jan 2024 00:00:00 +9999", "soon", ""]
    ),
    st.text(max_size=30),
)
urls = st.one_of(
    st.sampled_from(
        [
            "https://fuzz.example/a",
            "/relative/path",
            "javascript:alert(1)",
            "data:text/html,<b>x</b>",
            "http://[::1/broken",
            "https://bücher.example/ü?q=1#f",
            "",
        ]
    ),
    st.text(max_size=40),
)
items = st.lists(
    st.fixed_dictionaries(
        {
            "title": nasty_text,
            "link": urls,
            "guid": st.one_of(st.none(), nasty_text),
            "summary": nasty_text,
            "date": dates,
            "enclosure": urls,
            "author": nasty_text,
            "tags": st.lists(nasty_text, max_size=5),
        }
    ),
    max_size=8,
)


def _x(text: str) -> str:
    """XML-escaped, and without what XML 1.0 cannot carry at all (the generator means well-formed)."""
    return escape("".join(c for c in text if c in "\t\n\r" or (" " <= c <= "\ud7ff") or ("\ue000" <= c <= "\ufffd")))


def rss(entries: list[dict[str, object]]) -> bytes:
    parts = []
    for e in entries:
        tags = "".join(f"<category>{_x(str(t))}</category>" for t in e["tags"])  # type: ignore[attr-defined]
        guid = f"<guid>{_x(str(e['guid']))}</guid>" if e["guid"] is not None else ""
        parts.append(
            f"<item><title>{_x(str(e['title']))}</title><link>{_x(str(e['link']))}</link>{guid}"
            f"<description>{_x(str(e['summary']))}</description><pubDate>{_x(str(e['date']))}</pubDate>"
            f"<enclosure url={quoteattr(_x(str(e['enclosure'])))} type='audio/mpeg' length='1'/>"
            f"<dc:creator>{_x(str(e['author']))}</dc:creator>{tags}</item>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/">'
        f"<channel><title>T</title><link>https://fuzz.example/</link>{''.join(parts)}</channel></rss>"
    ).encode()


def atom(entries: list[dict[str, object]]) -> bytes:
    parts = []
    for e in entries:
        tags = "".join(f"<category term={quoteattr(_x(str(t)))}/>" for t in e["tags"])  # type: ignore[attr-defined]
        parts.append(
            f"<entry><id>{_x(str(e['guid'] or e['link']))}</id><title type='html'>{_x(str(e['title']))}</title>"
            f"<link href={quoteattr(_x(str(e['link'])))}/>"
            f"<link rel='enclosure' href={quoteattr(_x(str(e['enclosure'])))}/>"
            f"<updated>{_x(str(e['date']))}</updated><author><name>{_x(str(e['author']))}</name></author>"
            f"<content type='html'>{_x(str(e['summary']))}</content>{tags}</entry>"
        )
    return f'<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>{"".join(parts)}</feed>'.encode()


def jsonfeed(entries: list[dict[str, object]]) -> bytes:
    items = [
        {
            "id": e["guid"] if e["guid"] is not None else 7,  # a wrong type now and then
            "url": e["link"],
            "title": e["title"],
            "content_html": e["summary"],
            "date_published": e["date"],
            "authors": [{"name": e["author"]}],
            "tags": e["tags"],
            "attachments": [{"url": e["enclosure"], "mime_type": "audio/mpeg"}],
        }
        for e in entries
    ]
    document = {"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": items}
    return json.dumps(document).encode("utf-8", "surrogatepass")


@given(entries=items, fmt=st.sampled_from(["rss", "atom", "json"]))
def test_generated_feeds(entries: list[dict[str, object]], fmt: str) -> None:
    body = {"rss": rss, "atom": atom, "json": jsonfeed}[fmt](entries)
    run_pipeline(body, "application/feed+json" if fmt == "json" else "application/xml")


# -- mutations of real feeds -------------------------------------------------------------------


@cache
def corpus_files() -> tuple[Path, ...]:
    roots = [CORPORA / suite for suite in FEED_SUITES if (CORPORA / suite).is_dir()]
    files = sorted(
        path
        for root in roots
        for path in root.rglob("*")
        if path.suffix.lower() in FEED_SUFFIXES and path.is_file() and path.stat().st_size <= MAX_CORPUS_FILE
    )
    return tuple(files[:: max(1, len(files) // 400)])  # an even spread of the suites, a few hundred files


mutations = st.lists(
    st.tuples(
        st.sampled_from(["delete", "insert", "replace", "duplicate", "truncate"]),
        st.floats(min_value=0, max_value=1),
        st.integers(min_value=1, max_value=64),
        st.binary(min_size=1, max_size=16)
        | st.sampled_from([b"<", b">", b"&", b"]]>", b"<!ENTITY x 'y'>", b"\x00", b"\xff\xfe", b"<![CDATA["]),
    ),
    min_size=1,
    max_size=6,
)


def mutate(body: bytes, edits: list[tuple[str, float, int, bytes]]) -> bytes:
    for op, where, size, chunk in edits:
        at = int(where * len(body))
        if op == "delete":
            body = body[:at] + body[at + size :]
        elif op == "insert":
            body = body[:at] + chunk + body[at:]
        elif op == "replace":
            body = body[:at] + chunk + body[at + len(chunk) :]
        elif op == "duplicate":
            body = body[:at] + body[at : at + size * 8] + body[at:]
        else:
            body = body[:at]
    return body


def test_mutated_corpus_feeds() -> None:
    corpus()  # skips, naming the path, where the corpora are absent
    files = corpus_files()
    if not files:
        pytest.skip(f"no feed files under {CORPORA}")

    @given(path=st.sampled_from(files), edits=mutations)
    def check(path: Path, edits: list[tuple[str, float, int, bytes]]) -> None:
        content_type = "application/json" if path.suffix.lower() == ".json" else "application/xml"
        run_pipeline(mutate(path.read_bytes(), edits), content_type)

    check()


def test_every_corpus_feed_unmutated() -> None:
    # The baseline for the mutations: the sampled files themselves go through cleanly.
    corpus()
    for path in corpus_files():
        run_pipeline(path.read_bytes(), "application/json" if path.suffix.lower() == ".json" else "application/xml")
