"""The fast paths of parse and normalise give what the straightforward ones give: over every corpus
document the fast RSS/Atom reader (workers/parse/fast_xml.py) accepts, the same articles; over
every HTML value of the corpora, feedparser's resolved HTML; over random URLs, urllib's joins and
the general canonical rewrite; over the corpus articles, pydantic's dump for the content hash."""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urljoin

import feedparser
import pytest
from feedparser.urls import _urljoin, resolve_relative_uris
from lxml import etree

from service.config import CanonicalConfig, SourceConfig
from service.errors import ParseError
from service.models import Article, Author, Enclosure, Image
from service.urls import join_url, relative_join
from tests.conftest import CORPORA, CORPUS_FEED_URL, CorpusInput
from workers.normalise.canonical import _rebuild, _rewrite
from workers.normalise.entry import _BLOCKS, SUMMARY_TEXT_CHARS, _leading_text, html_to_text, normalise_feed
from workers.parse import fast_xml, parse_feed
from workers.parse.fast_xml import fallback_reason
from workers.parse.html_links import resolve_html_links
from workers.parse.xml_adapter import _sentinel

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
SOURCE = SourceConfig(id="corpus", url=CORPUS_FEED_URL)
HEADERS = {"content-type": "application/xml", "content-location": _sentinel(CORPUS_FEED_URL)}

# Documents where the two paths may differ because feedparser is wrong, path -> why. Keep it tiny.
FEEDPARSER_BUGS: dict[str, str] = {}


def _outcome(body: bytes, *, fast: bool) -> object:
    try:
        feed = parse_feed(body, source_id="corpus", url=CORPUS_FEED_URL, content_type="application/xml", fast=fast)
    except ParseError as exc:
        return ("error", exc.kind, str(exc))
    articles, warnings = normalise_feed(feed, source=SOURCE, now=NOW)
    return feed, [article.model_dump() for article in articles], warnings


def _xml_inputs(corpus_inputs: list[CorpusInput]) -> list[CorpusInput]:
    return [item for item in corpus_inputs if item.path.suffix.lower() != ".json"]


def test_every_document_the_fast_reader_accepts_gives_the_feedparser_articles(
    corpus_inputs: list[CorpusInput],
) -> None:
    reasons: Counter[str] = Counter()
    differing = []
    for item in _xml_inputs(corpus_inputs):
        body = (CORPORA / item.path).read_bytes()
        reason = fallback_reason(body, HEADERS)
        reasons[(reason or "fast").split(":")[0]] += 1
        if reason is not None or str(item.path) in FEEDPARSER_BUGS:
            continue
        fast, slow = _outcome(body, fast=True), _outcome(body, fast=False)
        if fast != slow:
            differing.append(str(item.path))
    print(f"\nfast reader over {sum(reasons.values())} XML corpus documents: {dict(reasons.most_common())}")
    assert differing == []
    # Most of the corpora are feeds the fast reader should take; a drop means a regression.
    assert reasons["fast"] >= 0.7 * sum(reasons.values())


def test_documented_feedparser_bugs_still_differ() -> None:
    for path in FEEDPARSER_BUGS:
        body = (CORPORA / path).read_bytes()
        assert _outcome(body, fast=True) != _outcome(body, fast=False), f"{path} agrees now: drop it"


def test_documents_the_fast_reader_cannot_vouch_for_fall_back() -> None:
    cases = {
        b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x "y">]><rss version="2.0"><channel/></rss>': "DOCTYPE",
        b'<?xml version="1.1"?><rss version="2.0"><channel/></rss>': "XML version",
        b'<rss version="2.0"><channel><item><title>x</item></channel></rss>': "not well-formed",
        b'<feed xmlns="http://www.w3.org/2005/Atom"><entry><content type="xhtml"><div/></content></entry></feed>': (
            "unsupported: inline XHTML"
        ),
        b'<rss version="2.0" xmlns:georss="http://www.georss.org/georss"><channel><item>'
        b"<georss:point>1 2</georss:point></item></channel></rss>": "unsupported: georss_point",
        b'<rss version="2.0"><channel><item><description>a <b>b</b></description></item></channel></rss>': (
            "unsupported: markup inside a text element"
        ),
    }
    for body, reason in cases.items():
        assert fallback_reason(body, HEADERS) == reason, body


def test_entity_declarations_are_refused_before_either_reader() -> None:
    laughs = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><rss><channel/></rss>'
    for fast in (True, False):
        with pytest.raises(ParseError, match="entity declarations"):
            parse_feed(laughs, source_id="s", url=CORPUS_FEED_URL, content_type="application/rss+xml", fast=fast)


def _html_values(corpus_inputs: list[CorpusInput]) -> list[tuple[str, str]]:
    values = []
    for item in _xml_inputs(corpus_inputs):
        result = feedparser.parse(
            io.BytesIO((CORPORA / item.path).read_bytes()), resolve_relative_uris=False, sanitize_html=False
        )
        for entry in result.entries:
            details = [entry.get("summary_detail"), entry.get("title_detail"), *(entry.get("content") or ())]
            values += [(d["value"], d.get("type", "text/html")) for d in details if d and d.get("value")]
    return values


TRICKY_HTML = [
    '<p><img src="/a.png" alt="x" width="1"/><a href="b?x=1&amp;y=2" title="t">l</a></p>',
    '<A HREF="../up" REL="NoFollow" Type="Text/HTML">x</A><BR><br/><br /><p/><hr></hr>',
    '<a href="javascript:alert(1)">j</a><a href=" spaced ">s</a><a href="">e</a>',
    "caf&eacute; &amp; &copy 2025 &foo; &check; &#150; &#x96; &#X41; &#39;q&#34; & bare &#12x",
    '<a title="it\'s &quot;q&quot; &lt;b&gt;" href="x" title="dup">d</a><img src="a" src="b">',
    "<div>a<p>b</div>c</p><ul><li>one<li>two</ul>",
    "x < y and y > z; a<3 </ br>",
    "<script>if (a<b) {}</script><!-- c --><![CDATA[z]]><?pi?>",
    '<video poster="p.png" src="v.mp4"/><source src="s.webm" type="Video/WebM"><q cite="c">q</q>',
    '<a href="http://example.com/a;p?q#f">p</a><a href="//host/x">s</a><a href="?q">q</a><a href="#f">f</a>',
    "<p\n class='single'>x</p><p class=unquoted>y</p><p data-x = \"spaced\">z</p>",
]


@pytest.mark.parametrize("media_type", ["text/html", "application/xhtml+xml"])
def test_resolved_html_is_feedparsers_string_for_string(media_type: str) -> None:
    for base in ("https://relative.tributary.invalid/~tb0/~tbf", "http://example.org/a/b?c#d", "mailto:x@y"):
        for value in TRICKY_HTML:
            assert resolve_html_links(value, base, media_type) == resolve_relative_uris(
                value, base, "utf-8", media_type
            ), value


def test_resolved_html_of_the_corpora_is_feedparsers(corpus_inputs: list[CorpusInput]) -> None:
    values = _html_values(corpus_inputs)
    assert len(values) > 1000
    for value, media_type in values:
        for base in ("https://relative.tributary.invalid/~tb0/~tbf", "http://example.org/a/b"):
            assert resolve_html_links(value, base, media_type) == resolve_relative_uris(
                value, base, "utf-8", media_type
            ), value[:200]


def test_windows_1252_code_points_map_as_feedparser_maps_them() -> None:
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title><item>'
        "<title>a&#x93;q&#x94; \u00e9</title><guid>g</guid><description>x&#x80;y \u00e9 \u2014</description>"
        "</item></channel></rss>"
    ).encode()
    read = [
        parse_feed(body, source_id="s", url=CORPUS_FEED_URL, content_type="application/rss+xml", fast=fast).entries[0]
        for fast in (True, False)
    ]
    assert read[0] == read[1]
    assert (read[0].title, read[0].summary) == ("a\u201cq\u201d \u00e9", "x\u20acy \u00e9 \u2014")


@pytest.mark.parametrize(
    "author",
    [
        "carol@example.net (Carol Nguyen)",
        "Carol Nguyen <carol@example.net>",
        "Carol Nguyen &lt;carol@example.net&gt;",
        "carol@example.net",
        "Carol Nguyen",
        "(carol@example.net)",
        "x@[10.0.0.1] (X)",
        "mailto:carol@example.net?subject=Hi (C)",
    ],
)
def test_rss_authors_split_as_feedparser_splits_them(author: str) -> None:
    """The reader's port of feedparser's author/e-mail split, for each element that uses it."""
    escaped = author.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"'
        ' xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">'
        f"<channel><title>t</title><managingEditor>{escaped}</managingEditor><webMaster>{escaped}</webMaster>"
        f"<item><title>i</title><guid>g</guid><author>{escaped}</author><dc:creator>{escaped}</dc:creator>"
        f"</item><item><title>j</title><guid>h</guid><itunes:author>{escaped}</itunes:author></item>"
        "</channel></rss>"
    ).encode()
    assert fallback_reason(body, {}) is None
    fast = fast_xml.read_feed(body, {})
    slow = feedparser.parse(io.BytesIO(body), resolve_relative_uris=False, sanitize_html=False)
    assert fast is not None
    for key in ("author", "author_detail", "authors", "publisher", "publisher_detail"):
        assert fast["feed"].get(key) == slow["feed"].get(key), key
        for mine, theirs in zip(fast["entries"], slow["entries"], strict=True):
            assert mine.get(key) == theirs.get(key), key


def test_relative_join_is_urljoin_where_it_answers() -> None:
    """The fast path for plain relative references (numeric guids, ``/news/1``) against plain
    bases: what urljoin and feedparser's ``_urljoin`` give, wherever it gives anything."""
    alphabet = [*"ab.-_~/:@%?#;!$&'()*+,= 9", "..", "./", "//", "%2F", "\t", "é", "\\"]
    bases = ["http://a", "http://a/", "https://ex.com/b/c", "http://a:8080/b/", "http://A.B/x/y.html", "HTTP://a/b"]
    bases += [
        "http://u@a/b",
        "http://[::1]/b",
        "http://a/b?q",
        "http://a/b#f",
        "http://a/b;p",
        "http://a/./b",
        "http://a//b",
    ]
    rnd = random.Random(28)

    def text(most: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, most)))

    answered = 0
    for _ in range(100_000):
        base = rnd.choice(bases) if rnd.random() < 0.5 else "http://" + rnd.choice(["a", "ex.com", "a:1"]) + text(10)
        url = text(8)
        joined = relative_join(base, url)
        if joined is not None:
            answered += 1
            assert joined == urljoin(base, url) == _urljoin(base, url), (base, url)
    assert answered > 2_000
    assert relative_join("https://news.example.com/feed/", "item-55") == "https://news.example.com/feed/item-55"
    assert relative_join("https://news.example.com/feed", "/news/1") == "https://news.example.com/news/1"


def test_join_url_is_urljoin() -> None:
    bases = [
        "https://a.example/x/y",
        "http://b.example/",
        "https://relative.tributary.invalid/~tb0/~tbf",
        "file:///tmp/x",
        "mailto:x@y",
        "",
        "HTTP://Up.example/a",
        "https://[::1]/a",
        "https://x.example/a?q#f",
    ]
    parts = ["http://", "https://", "HTTP://", "http:/", "//", "/", "?", "#", ";", "a", "B", "x.example", "[::1]"]
    parts += [":80", "@", "%20", " ", "\t", "\n", "..", "./", "/p/q", "?a=1&b=2", "#frag", "é", "~", "'", "(", "*"]
    rnd = random.Random(14)
    for _ in range(50_000):
        url = "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 7)))
        if rnd.random() < 0.5:
            url = rnd.choice(["http://", "https://"]) + url
        base = rnd.choice(bases)
        try:
            expected = urljoin(base, url)
        except ValueError as exc:
            with pytest.raises(ValueError, match=re.escape(str(exc))):
                join_url(base, url)
        else:
            assert join_url(base, url) == expected, (base, url)


def test_resolving_an_opaque_id_is_feedparsers_join() -> None:
    """The fast reader hands ``urn:``/``tag:`` references back without joining them: what
    feedparser's ``_urljoin`` gives, whatever the base."""
    bases = ["", "https://relative.tributary.invalid/~tb0/~tbf", "http://[::1]/x", "http://[bad/x", "http://h\u00e9/x"]
    bases += ["urn:x", "mailto:a@b", "HTTP://Up.example/a"]
    parts = ["urn", "URN", "tag", "http", "ftp", "svn+ssh", "mailto", "a.b-c", ":", "//", "/", "x", "[", "]", ","]
    parts += ["?", "#", "@", "%20", " ", "\t", "\n", "\u00e9", "uuid", "2020", "example.com"]
    rnd = random.Random(15)
    shortcut = 0
    for _ in range(50_000):
        reference = "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 7)))
        base = rnd.choice(bases)
        joined = fast_xml._opaque(base, reference)
        if joined is not None:
            shortcut += 1
            assert joined == _urljoin(base, reference), (base, reference)
        assert fast_xml._resolve(base, reference) == _urljoin(base, reference), (base, reference)
    assert shortcut > 300


def test_content_hash_is_the_hash_of_the_visible_fields_dump(corpus_inputs: list[CorpusInput]) -> None:
    """compute_content_hash writes the dump out by hand: it must stay what pydantic dumps."""
    fields = {"title", "url", "summary", "content", "authors", "tags", "image", "enclosures"}
    checked = 0
    for item in corpus_inputs:
        if item.feed is None:
            continue
        for article in normalise_feed(item.feed, source=SOURCE, now=NOW)[0]:
            dumped = json.dumps(article.model_dump(mode="json", include=fields), sort_keys=True).encode()
            assert article.content_hash == hashlib.sha256(dumped).hexdigest()
            checked += 1
    assert checked > 1000


def test_content_hash_agrees_with_the_dump_on_every_field_shape() -> None:
    """The fields the corpora leave empty: enclosures (with and without a length), an image with a
    caption and credit, several authors, tags; strings json must escape."""
    odd = 'q"\\ \t\n\x01 é \u2028 \ud800 </script>'
    fields = {"title", "url", "summary", "content", "authors", "tags", "image", "enclosures"}
    articles = [
        Article(
            id="0" * 32,
            source_id="s",
            title=odd,
            url=None,
            summary=None,
            content=odd,
            authors=(Author(name=odd), Author(email="a@b.example", url="https://a.example/")),
            tags=(odd, "b"),
            image=Image(url="https://i.example/x.png", caption=odd, credit="c"),
            enclosures=(Enclosure(url="https://e.example/a.mp3", type="audio/mpeg", length=0), Enclosure(url=odd)),
            published=NOW,
            updated=NOW,
            first_seen=NOW,
        ),
        Article(id="1" * 32, source_id="s", title="t", published=NOW, updated=NOW, first_seen=NOW),
    ]
    for article in articles:
        dumped = json.dumps(article.model_dump(mode="json", include=fields), sort_keys=True).encode()
        assert article.content_hash == hashlib.sha256(dumped).hexdigest()


def test_the_plain_url_shortcut_rewrites_as_the_general_path() -> None:
    configs = [CanonicalConfig(), CanonicalConfig(strip_params=["utm_*", "ref", "Fb+Clid"])]
    parts = ["https://", "http://", "HTTPS://", "a.example", "B.example", ":443", ":8080", "@", "/", "/p", "/p;x"]
    parts += ["?", "?a=1", "&b=2", "&utm_source=x", "&ref=y", "&fb%2Bclid=z", "&fb+clid=1", "&&", "=", "#", "#f"]
    parts += [" ", "\t", "é", "%41", "[::1]", "."]
    rnd = random.Random(3)
    for _ in range(30_000):
        url = "".join(rnd.choice(parts) for _ in range(rnd.randint(2, 8)))
        for config in configs:
            for keep_fragment, idna in ((True, False), (False, True)):
                expected = _rebuild(url, config, keep_fragment=keep_fragment, idna=idna)
                assert _rewrite(url, config, keep_fragment=keep_fragment, idna=idna) == expected, url


def _lxml_html_text(html: str) -> str:
    """html_to_text as it was written with lxml.html, the reference for the leaner reading."""
    import lxml.html

    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    try:
        wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return " ".join(html.split())
    for hidden in list(wrapper.iter("script", "style", "template")):
        hidden.drop_tree()
    for block in wrapper.iter(*_BLOCKS):
        block.text = " " + (block.text or "")
        block.tail = " " + (block.tail or "")
    return " ".join(wrapper.text_content().split())


def test_html_to_text_reads_what_lxml_html_read(corpus_inputs: list[CorpusInput]) -> None:
    values = [
        html
        for item in corpus_inputs
        if item.feed is not None
        for entry in item.feed.entries
        for html in (entry.title, entry.summary, entry.content)
        if html
    ]
    pieces = ["<p>", "</p>", "a", " ", "<b>", "</b>", "<br>", "<script>x</script>", "<style>y", "<template>z"]
    pieces += ["</template>", "&amp;", "&#x41;", "<!-- c -->", "<html>", "<body>", "<!doctype html>", "\n", "é"]
    pieces += ["<td>", "<table>", "<li>", "<title>t</title>", "<meta>", "<head>", "</body>", "<", ">", "\x00"]
    pieces += ["<?php p ?>", "<div>", "</div>", "<script>", "</script>", "<noscript>n</noscript>"]
    rnd = random.Random(11)
    values += ["".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12))) for _ in range(5_000)]
    for html in values:
        assert _text_or_error(html_to_text, html) == _text_or_error(_lxml_html_text, html), html[:300]


def _text_or_error(read: Callable[[str], str], html: str) -> str:
    try:
        return read(html)
    except AssertionError:  # lxml.html asserts one body ("<html>" has none): we read no text there
        return ""


def test_a_document_without_one_body_has_no_text_and_fails_nothing() -> None:
    for html in ("<html>", "<html><head></head></html>", "<!doctype html><html></html>"):
        assert html_to_text(html) == ""
    feed = parse_feed(
        b'<rss version="2.0"><channel><title>t</title><item><guid>1</guid><title>A</title>'
        b"<description>&lt;html&gt;</description></item><item><guid>2</guid><title>B</title></item></channel></rss>",
        source_id="s",
        url="https://example.org/feed.xml",
        content_type="application/rss+xml",
    )
    articles, _ = normalise_feed(feed, source=SOURCE, now=NOW)
    assert [a.title for a in articles] == ["A", "B"]


def test_summary_text_reads_only_the_head_of_long_html_and_says_the_same(corpus_inputs: list[CorpusInput]) -> None:
    values = [
        html
        for item in corpus_inputs
        if item.feed is not None
        for article in normalise_feed(item.feed, source=SOURCE, now=NOW)[0]
        for html in (article.summary, article.content)
        if html
    ]
    # Long inputs too: runs of consecutive corpus values, as a 2-3 KB description would be.
    values += ["".join(values[n : n + 40]) for n in range(0, len(values), 10)]
    long = 0
    for html in values:
        expected = html_to_text(html)
        got = _leading_text(html, SUMMARY_TEXT_CHARS)
        assert expected.startswith(got) and (got == expected or len(got) > SUMMARY_TEXT_CHARS), html[:300]
        long += got != expected
    assert long > 50
