"""Validators for the feeds we publish, shared by the renderer tests and the corpus render test.

Each ``*_errors`` function takes rendered bytes and returns one line per problem (empty: valid):

- Atom: the RFC 4287 RelaxNG schema plus the two Schematron rules it carries as annotations;
- JSON Feed: the JSON Feed 1.1 JSON schema;
- RSS 2.0: no published schema, so the rules are ours (:func:`rss_errors`).

All three also get the checks a schema cannot express: every URI is absolute RFC 3986 with its
host in ASCII (IDNA) form, and no text carries control characters (C0 other than tab/LF/CR, DEL,
C1). Schemas are read from ``../shared/corpora``; callers skip where it is absent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from jsonschema import Draft7Validator, FormatChecker
from lxml import etree

from tests.conftest import corpus

ATOM_NS = "http://www.w3.org/2005/Atom"
NS = {"a": ATOM_NS, "atom": ATOM_NS}

CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# RFC 3986: a scheme, then only unreserved, reserved and well-formed %XX.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
# RFC 7231 media type: type "/" subtype *( ";" parameter ), tokens per RFC 7230.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
MEDIA_TYPE = re.compile(rf'{_TOKEN}/{_TOKEN}(?:\s*;\s*{_TOKEN}=(?:{_TOKEN}|"(?:[^"\\]|\\.)*"))*')
# RFC 822 as RSS 2.0 uses it, with a four-digit year (RFC 2822).
_RFC822 = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (\d{4}) "
    r"(\d\d):(\d\d):(\d\d) ([+-]\d{4}|GMT|UT)"
)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@cache
def atom_schema() -> etree.RelaxNG:
    return etree.RelaxNG(etree.parse(str(corpus("atom-rfc4287-schema", "atom.rng"))))


@cache
def jsonfeed_validator() -> Draft7Validator:
    schema = corpus("jsonfeed-schema", "schema-v1.1.json")
    checker = FormatChecker()
    # jsonschema checks these only with optional packages (rfc3339-validator, rfc3987); stand in.
    rfc3339_re = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(lambda s: not isinstance(s, str) or bool(rfc3339_re.fullmatch(s)))
    if "uri" not in checker.checkers:
        checker.checks("uri")(lambda s: not isinstance(s, str) or not uri_errors(s))
    return Draft7Validator(json.loads(schema.read_text()), format_checker=checker)


def uri_errors(uri: str) -> list[str]:
    """Why ``uri`` is not an absolute URI with an ASCII (IDNA) host; empty when it is."""
    if not _ABSOLUTE_URI.fullmatch(uri):
        return [f"not an absolute RFC 3986 URI: {uri!r}"]
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError as exc:
        return [f"unparseable URI {uri!r}: {exc}"]
    host = parts.hostname or ""
    if "%" in host or not host.isascii():
        return [f"host not in IDNA form: {uri!r}"]
    return []


def text_errors(text: str) -> list[str]:
    match = CONTROL.search(text)
    return [f"control character U+{ord(match.group()):04X} in {text[:60]!r}"] if match else []


def _xml(data: bytes) -> tuple[etree._Element | None, list[str]]:
    try:
        return etree.fromstring(data), []
    except etree.XMLSyntaxError as exc:
        return None, [f"not well-formed: {exc}"]


def _xml_text_errors(root: etree._Element) -> list[str]:
    errors = []
    for element in root.iter():
        for text in (element.text, element.tail, *element.attrib.values()):
            if text:
                errors += text_errors(text)
    return errors


def _strings_at(element: etree._Element, xpath: str) -> list[str]:
    found = element.xpath(xpath, namespaces=NS)
    return [str(value) for value in found] if isinstance(found, list) else []


def _uris(values: list[Any]) -> list[str]:
    return [error for value in values for error in uri_errors(str(value))]


def atom_errors(data: bytes) -> list[str]:
    root, errors = _xml(data)
    if root is None:
        return errors
    schema = atom_schema()
    if not schema.validate(root):
        errors += [f"RelaxNG: {e.message} (line {e.line})" for e in schema.error_log]
    # The schema's Schematron rules, which RelaxNG alone does not enforce.
    if root.find("a:author", NS) is None and any(e.find("a:author", NS) is None for e in root.iterfind("a:entry", NS)):
        errors.append("an entry without an author in a feed without one")
    for entry in root.iterfind("a:entry", NS):
        if entry.find("a:link[@rel='alternate']", NS) is None and entry.find("a:content", NS) is None:
            errors.append("an entry with neither an alternate link nor content")
    errors += _uris(_strings_at(root, "//a:link/@href | //a:id/text() | //a:uri/text()"))
    return errors + _xml_text_errors(root)


def json_errors(data: bytes) -> list[str]:
    try:
        doc = json.loads(data)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    errors = [f"schema: {e.message}" for e in jsonfeed_validator().iter_errors(doc)]
    # The schema knows nothing of our extension; its URLs must be as good as the rest.
    for item in doc.get("items", ()):
        ext = item.get("_tributary", {})
        errors += _uris([ref["url"] for ref in (ext.get("source"), *ext.get("sources", ())) if ref and ref["url"]])
    return errors + [error for text in _strings(doc) for error in text_errors(text)]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, member in value.items():
            yield key
            yield from _strings(member)
    elif isinstance(value, list):
        for member in value:
            yield from _strings(member)


def rss_errors(data: bytes) -> list[str]:
    """RSS 2.0 (rssboard.org/rss-specification) as far as a reader depends on it.

    Required channel elements; at most one of each single-valued element; RFC 822 dates with the
    right weekday; items with a title or a description; enclosures with an absolute url, a
    non-negative integer length and a media type; a guid that is a URL unless
    ``isPermaLink="false"``; absolute URIs everywhere one is expected.
    """
    root, errors = _xml(data)
    if root is None:
        return errors
    if root.tag != "rss" or root.get("version") != "2.0":
        return [f"root is <{root.tag} version={root.get('version')!r}>, not <rss version='2.0'>"]
    channels = root.findall("channel")
    if len(channels) != 1:
        return [f"{len(channels)} <channel> elements"]
    channel = channels[0]
    for tag in ("title", "link", "description"):
        if channel.find(tag) is None:
            errors.append(f"channel without <{tag}>")
    errors += _single(channel, ("title", "link", "description", "lastBuildDate", "pubDate", "generator"))
    errors += _uris([link.text or "" for link in channel.findall("link")])
    errors += _uris(_strings_at(channel, "atom:link/@href"))
    errors += [e for date in _strings_at(channel, "lastBuildDate/text() | pubDate/text()") for e in rfc822_errors(date)]
    for index, item in enumerate(channel.iterfind("item")):
        errors += [f"item {index}: {error}" for error in _item_errors(item)]
    return errors + _xml_text_errors(root)


def _item_errors(item: etree._Element) -> list[str]:
    errors = _single(item, ("title", "link", "description", "guid", "pubDate", "source"))
    if item.find("title") is None and item.find("description") is None:
        errors.append("neither <title> nor <description>")
    errors += _uris([link.text or "" for link in item.findall("link")])
    errors += [e for date in item.findall("pubDate") for e in rfc822_errors(date.text or "")]
    for guid in item.findall("guid"):
        permalink = guid.get("isPermaLink", "true")
        if permalink not in ("true", "false"):
            errors.append(f"guid isPermaLink={permalink!r}")
        elif permalink == "true":
            errors += [f"permalink guid: {e}" for e in uri_errors(guid.text or "")]
        elif not (guid.text or "").strip():
            errors.append("empty guid")
    for enclosure in item.findall("enclosure"):
        errors += _uris([enclosure.get("url", "")])
        if not re.fullmatch(r"\d+", enclosure.get("length", "")):
            errors.append(f"enclosure length {enclosure.get('length')!r}")
        if not MEDIA_TYPE.fullmatch(enclosure.get("type", "")):
            errors.append(f"enclosure type {enclosure.get('type')!r} is not a media type")
    errors += _uris([source.get("url", "") for source in item.findall("source")])
    return errors


def _single(parent: etree._Element, tags: tuple[str, ...]) -> list[str]:
    return [f"<{tag}> {count} times" for tag in tags if (count := len(parent.findall(tag))) > 1]


def rfc822_errors(text: str) -> list[str]:
    match = _RFC822.fullmatch(text)
    if match is None:
        return [f"not an RFC 822 date: {text!r}"]
    day, dom, month, year, hour, minute, second, _ = match.groups()
    try:
        when = datetime(int(year), _MONTHS.index(month) + 1, int(dom), int(hour), int(minute), int(second))
    except ValueError:
        return [f"no such time: {text!r}"]
    return [] if _DAYS[when.weekday()] == day else [f"wrong weekday: {text!r}"]
