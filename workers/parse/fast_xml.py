"""The fast way to read RSS and Atom: lxml reads the document and a port of feedparser's element
handlers fills the same result feedparser would, ~10x sooner.

feedparser spends most of its time in Python callbacks around expat (one per run of text: an
escaped HTML description costs hundreds). Here libxml2 builds the tree in C, and the handlers
run once per element, with the element's text already joined. What the handlers do is
feedparser's own logic (``feedparser/mixin.py``, ``namespaces/_base.py``, ``dc.py``,
``mediarss.py``, ``itunes.py``) ported for the elements feeds really use: the same keys, the
same quirks (which title wins, RSS ``<author>`` split into name and e-mail, an Atom ``<id>``
standing in for a missing link, UTF-8 read as Latin-1 repaired, Windows-1252 code points mapped,
xml:base and xml:lang scoping, ``rel``/``type`` lower-cased...). Encoding detection is
feedparser's own function. :mod:`workers.parse.xml_adapter` turns either result into a
:class:`~workers.parse.types.ParsedFeed` the same way.

The fall-back rule: :func:`read_feed` returns None, and feedparser reads the document, whenever
this reader cannot be sure to agree with it:

- the document is not well-formed to libxml2 (feedparser would switch to its lenient parser), or
  has a DOCTYPE, or an XML declaration other than version 1.0, or no encoding feedparser accepts;
- an element has a feedparser handler that is not ported here (GeoRSS, CDF, ``dcterms:valid``,
  Podlove chapters, ``xhtml:body``...);
- inline XHTML (``type="xhtml"``), base64 content, markup nested inside a text element, SVG or
  MathML anywhere;
- anything the port itself raises on.

tests/test_fast_parse.py checks over the feed corpora that every document read here gives the
articles the feedparser path gives, and counts how many are read here.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import uses_relative

import feedparser
from feedparser.encodings import convert_to_utf8
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin, make_safe_absolute_uri
from feedparser.util import FeedParserDict
from lxml import etree

from service.urls import plain_join, relative_join
from workers.parse.controls import has_c1
from workers.parse.raw_keys import raw_keys
from workers.parse.types import KnownEntry

__all__ = ["read_feed"]

_MATCH_NAMESPACES: dict[str, str] = {uri.lower(): prefix for uri, prefix in _FeedParserMixin.namespaces.items()}
_CAN_BE_RELATIVE = frozenset(_FeedParserMixin.can_be_relative_uri)
_HTML_TYPES = frozenset(_FeedParserMixin.html_types)
_COPIED_TO_SUMMARY = _HTML_TYPES | {"text/plain"}
_UNSUPPORTED_NAMESPACES = frozenset({"http://www.w3.org/2000/svg", "http://www.w3.org/1998/Math/MathML"})
_XLINK = "http://www.w3.org/1999/xlink"
_USERLAND = "http://backend.userland.com/rss"
_IMAGE_CHILDREN = frozenset({"title", "link", "description", "url", "href", "width", "height"})
_TEXTINPUT_CHILDREN = frozenset({"title", "link", "description", "name"})
_ENTITY_LIKE = re.compile("&([A-Za-z0-9_]+);")
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_XML_DECLARATION = re.compile(rb"^\s*<\?xml[^>]*?version\s*=\s*[\"']([^\"']*)[\"']")
_HEAD_BYTES = 4096
_MISSING: Any = object()
_AUTHOR_EMAIL = re.compile(  # feedparser's _sync_author_detail
    r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|(([a-zA-Z0-9\-]+\.)+))"
    r"([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?"
)
_OPAQUE = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):(?!//)[!-~]*")
# feedparser stores into FeedParserDicts, which rename some keys on the way in ("date" is kept as
# "updated"...); the reader stores into plain dicts, renaming where a name can be any element's.
_KEYMAP = {key: value[0] if isinstance(value, list) else value for key, value in FeedParserDict.keymap.items()}


class _Unsupported(Exception):
    """The document needs something this reader does not do: feedparser reads it."""


class _Rekey(Exception):
    """The entries keyed from their bytes are not the reader's: read the document again, unkeyed."""


def read_feed(
    body: bytes,
    headers: Mapping[str, str],
    *,
    known: Mapping[bytes, datetime | None] | None = None,
    salt: bytes = b"",
) -> FeedParserDict | None:
    """What ``feedparser.parse(io.BytesIO(body), response_headers=headers)`` returns (the parts
    :mod:`workers.parse.xml_adapter` reads: ``feed``, ``entries``, ``version``, ``bozo``), or None
    where this reader cannot vouch for that (the module docstring lists when).

    With ``known`` (entry keys and their dates), the entries are keyed from their bytes with
    ``salt`` (:mod:`workers.parse.raw_keys`): ``entry_keys`` lists the keys in the order of
    ``entries`` (None where the document cannot be keyed so), and an entry whose key is known is
    not read: it stands in ``entries`` as a :class:`~workers.parse.types.KnownEntry`.
    """
    result = _read(body, headers, known, salt)
    return result if isinstance(result, FeedParserDict) else None


def fallback_reason(body: bytes, headers: Mapping[str, str]) -> str | None:
    """Why :func:`read_feed` leaves ``body`` to feedparser; None when it reads it (for tests and
    benchmarks that count)."""
    result = _read(body, headers)
    return None if isinstance(result, FeedParserDict) else result


def _read(
    body: bytes,
    headers: Mapping[str, str],
    known: Mapping[bytes, datetime | None] | None = None,
    salt: bytes = b"",
) -> FeedParserDict | str:
    head = body[:_HEAD_BYTES]
    if _DOCTYPE.search(head):
        return "DOCTYPE"
    declaration = _XML_DECLARATION.match(head)
    if declaration and declaration[1] != b"1.0":
        return "XML version"
    result = FeedParserDict(bozo=False, entries=[], feed=FeedParserDict(), headers=dict(headers))
    try:
        data = convert_to_utf8(result["headers"], body, result)
        if not result["encoding"]:
            return "encoding"
        if _DOCTYPE.search(data[:_HEAD_BYTES]):
            return "DOCTYPE"
        location = result["headers"].get("content-location", "")
        base = make_safe_absolute_uri("", location) or make_safe_absolute_uri(location) or ""
        language = result["headers"].get("content-language")
        reader = _Reader(base, language)
        try:
            reader.read(data, known, salt)
        except _Rekey:
            reader = _Reader(base, language)
            reader.read(data)
    except _Unsupported as exc:
        return f"unsupported: {exc}"
    except etree.LxmlError:
        return "not well-formed"
    except Exception as exc:  # the port is unsure of itself: feedparser decides (and fails, if it must)
        return f"{type(exc).__name__}"
    result["feed"] = reader.feeddata
    result["entries"] = reader.entries
    result["version"] = reader.version
    result["namespaces"] = reader.namespaces_in_use
    result["entry_keys"] = reader.entry_keys
    return result


@lru_cache(maxsize=1024)
def _safe_base(base: str, reference: str) -> str:
    joined: str = make_safe_absolute_uri(base, reference)
    return joined or base


def _resolve(base: str, reference: str) -> str:
    """feedparser's ``_urljoin``."""
    joined = plain_join(base, reference) or relative_join(base, reference) or _opaque(base, reference)
    if joined is None:
        joined = _urljoin(base, reference)
    return joined


def _opaque(base: str, reference: str) -> str | None:
    """``reference`` when it is a URI of a scheme ``urljoin`` never joins (``urn:``, ``tag:``: the
    Atom ids of most feeds), which ``_urljoin`` hands back unchanged; None for any other.

    Unchanged because: no "://" for feedparser's slash fix, nothing ``urlsplit`` strips or
    removes (ASCII without spaces or controls), no netloc to check, and a ``base`` that
    ``urlsplit`` cannot refuse (ASCII, no brackets).
    """
    scheme = _OPAQUE.fullmatch(reference)
    if scheme is None or scheme[1].lower() in uses_relative or not base.isascii() or "[" in base or "]" in base:
        return None
    return reference


def _looks_like_html(text: str) -> bool:
    if "<" not in text and "&" not in text:  # no close tag nor reference: feedparser says no at once
        return False
    looks: bool = _FeedParserMixin.looks_like_html(text)
    return looks


def _map_content_type(content_type: str) -> str:
    mapped: str = _FeedParserMixin.map_content_type(content_type)
    return mapped


class _Frame:
    __slots__ = ("element", "expecting_text", "pieces")

    def __init__(self, element: str, expecting_text: Any) -> None:
        self.element = element
        self.expecting_text = expecting_text
        self.pieces: list[str] = []


class _Reader:
    """feedparser's ``_FeedParserMixin`` state machine, for the handlers in :data:`_START` and
    :data:`_END`. Method bodies follow feedparser's line by line; names say which one."""

    def __init__(self, baseuri: str, baselang: str | None) -> None:
        self.feeddata: dict[str, Any] = {}
        self.entries: list[Any] = []  # dicts, and a KnownEntry for each entry passed over
        self.entry_keys: list[bytes] | None = None
        self.version = ""
        self.namespaces_in_use: dict[str, str] = {}
        self.namespacemap: dict[str | None, str] = {}
        self.decls: dict[str, str] = {}
        self.names: dict[str, tuple[str, str]] = {}
        self.infeed = self.inentry = self.incontent = self.intextinput = self.inimage = 0
        self.inauthor = self.incontributor = self.inpublisher = self.insource = 0
        self.sourcedata: dict[str, Any] = {}
        self.contentparams: dict[str, Any] = {}
        self.summary_key: str | None = None
        self.elementstack: list[_Frame] = []
        self.basestack: list[str] = []
        self.langstack: list[str | None] = []
        self.title_depth = -1
        self.depth = 0
        self.has_content = 0
        self.guidislink: Any = 0
        self.property_depth_map: dict[int, dict[str, int]] = {}
        self.baseuri = baseuri
        self.lang = baselang
        if self.lang:
            self.feeddata["language"] = self.lang.replace("_", "-")

    # -- driving: lxml events in the order expat reports them -------------------------------

    def read(self, data: bytes, known: Mapping[bytes, datetime | None] | None = None, salt: bytes = b"") -> None:
        """Read the document ``data``; with ``known``, key its entries and pass over the known
        ones (:func:`read_feed`)."""
        # Per open element: the element and its last closed child, whose tail is the next text.
        open_elements: list[list[Any]] = []
        # The whole tree first, then a walk over it that gives the events an event parser would,
        # namespace declarations included: two thirds of the time of iterparse's events.
        parser = etree.XMLParser(
            remove_comments=True,
            remove_pis=True,
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        )
        tree = etree.fromstring(data, parser)
        found = None
        keyed: dict[int, bytes] = {}  # id of an entry's element -> its key
        if known is not None:
            found = raw_keys(tree, b"\0".join([salt, self.baseuri.encode(), (self.lang or "").encode()]))
            if found is not None:
                self.entry_keys = found.keys
                keyed = {id(entry): key for entry, key in zip(found.entries, found.keys, strict=True)}
        passed_over: set[int] = set()
        stack = self.elementstack  # handle_data and end_element inlined: they run for every element
        names = self.names
        walk = etree.iterwalk(tree, events=("start-ns", "start", "end"))
        for event, item in walk:
            if event == "start":
                if open_elements:
                    parent, previous = open_elements[-1]
                    text = previous.tail if previous is not None else parent.text
                    if text and stack:
                        stack[-1].pieces.append(text)
                open_elements.append([item, None])
                if keyed and id(item) in keyed:
                    self._start_keyed(item, keyed[id(item)], known, passed_over)
                    if id(item) in passed_over:
                        walk.skip_subtree()  # its "end" comes next
                    continue
                self.start_element(item)
            elif event == "end":
                _, last = open_elements.pop()
                if passed_over and id(item) in passed_over:
                    passed_over.discard(id(item))  # (read past: none of its text is the parent's)
                else:
                    text = last.tail if last is not None else item.text
                    if text and stack:
                        stack[-1].pieces.append(text)
                    known_names = names.get(item.tag)
                    self.unknown_endtag((known_names or self._names(item.tag))[1])
                if open_elements:
                    open_elements[-1][1] = item
            else:
                self.start_prefix_mapping(*item)
        if found is not None and len(self.entries) != len(found.entries):
            raise _Rekey  # an entry of an element not keyed

    def _start_keyed(self, element: Any, key: bytes, known: Any, passed_over: set[int]) -> None:
        """Start a keyed entry, or stand a known entry in for it, leaving the reader as reading
        it would have for what comes after it (only entries: :mod:`workers.parse.raw_keys`).
        Raises :class:`_Rekey` where the reader does not take the element for one entry."""
        if key not in known:
            before = len(self.entries)
            self.start_element(element)
            if len(self.entries) != before + 1:
                raise _Rekey
            return
        tag, handler = self.names.get(element.tag) or self._names(element.tag)
        if handler not in ("item", "entry"):
            raise _Rekey
        self.entries.append(KnownEntry(key=key, date=known[key]))
        passed_over.add(id(element))
        if ":" not in tag:  # unknown_starttag, for a plain name
            self.intextinput = self.inimage = 0
        self.inentry = self.has_content = 0  # _end_item

    def start_prefix_mapping(self, prefix: str, uri: str) -> None:
        if not uri:
            return
        self.track_namespace(prefix or None, uri)
        if prefix and uri == _XLINK:
            self.decls["xmlns:" + prefix] = uri

    def _qualified(self, tag: str) -> str:
        """feedparser's ``startElementNS`` name: canonical prefix, else the document's, lower-cased."""
        if tag[0] != "{":
            return tag.lower()
        namespace, localname = tag[1:].split("}", 1)
        if namespace in _UNSUPPORTED_NAMESPACES:
            raise _Unsupported(namespace)
        lowernamespace = namespace.lower()
        if "backend.userland.com/rss" in lowernamespace:
            namespace = lowernamespace = _USERLAND
        prefix = _MATCH_NAMESPACES.get(lowernamespace)
        if prefix:
            return (prefix.lower() + ":" + localname).lower()
        for name, value in self.namespaces_in_use.items():
            if name and value == namespace:
                return (name + ":" + localname).lower()
        return localname.lower()

    def _names(self, tag: str) -> tuple[str, str]:
        """The element's name as feedparser's ``unknown_starttag`` gets it, and its handler key."""
        names = self.names.get(tag)
        if names is None:
            qualified = self._qualified(tag)
            names = self.names[tag] = (qualified, self._handler_key(qualified))
        return names

    def start_element(self, element: Any) -> None:
        attrs, self.decls = self.decls, {}
        items = element.items()
        if items:
            qualified = False
            for key, value in items:
                if key[0] == "{":
                    qualified = True
                    namespace, localname = key[1:].split("}", 1)
                    prefix = _MATCH_NAMESPACES.get(namespace.lower(), "")
                    attrs[(prefix + ":" + localname if prefix else localname).lower()] = value
                else:
                    attrs[key.lower()] = value
            if qualified:  # expat's qnames: the local name again (for plain names, what is there)
                for key, value in items:
                    attrs[key.rsplit("}", 1)[-1].lower()] = value
        tag, key = self.names.get(element.tag) or self._names(element.tag)
        self.unknown_starttag(tag, key, attrs)

    # -- _FeedParserMixin ---------------------------------------------------------------------

    def unknown_starttag(self, tag: str, key: str, raw_attrs: dict[str, str]) -> None:
        self.depth += 1
        if raw_attrs:
            attrs_d = {
                key: value.lower() if key in ("rel", "type") and value else value for key, value in raw_attrs.items()
            }
            baseuri = attrs_d.get("xml:base", attrs_d.get("base")) or self.baseuri
            lang = attrs_d.get("xml:lang", attrs_d.get("lang"))
        else:
            attrs_d, baseuri, lang = raw_attrs, self.baseuri, None
        if self.baseuri:
            self.baseuri = _safe_base(self.baseuri, baseuri)
        else:
            self.baseuri = _resolve(self.baseuri, baseuri)
        if lang == "":
            lang = None
        elif lang is None:
            lang = self.lang
        if lang and tag in ("feed", "rss", "rdf:RDF"):  # sic: the tag is lower-cased, so never rdf:RDF
            self.feeddata["language"] = lang.replace("_", "-")
        self.lang = lang
        self.basestack.append(self.baseuri)
        self.langstack.append(lang)
        for prefix, uri in attrs_d.items():
            if prefix.startswith("xmlns:"):
                self.track_namespace(prefix[6:], uri)
            elif prefix == "xmlns":
                self.track_namespace(None, uri)
        if self.incontent:
            raise _Unsupported("markup inside a text element")  # feedparser would serialise it
        plain = ":" not in tag
        if plain and tag not in _TEXTINPUT_CHILDREN:
            self.intextinput = 0
        if plain and tag not in _IMAGE_CHILDREN:
            self.inimage = 0
        handler = _START.get(key)
        if handler is None:
            if "_start_" + key in _FEEDPARSER_METHODS:
                raise _Unsupported(key)
            self._unknown_start(key, attrs_d)
            return
        try:
            handler(self, attrs_d)
        except AttributeError:
            self._unknown_start(key, attrs_d)

    def _unknown_start(self, key: str, attrs_d: dict[str, str]) -> None:
        if not attrs_d:
            self.push(key, 1)
        else:
            self._get_context()[_KEYMAP.get(key, key)] = attrs_d

    def _handler_key(self, tag: str) -> str:
        if ":" in tag:
            prefix, suffix = tag.split(":", 1)
        else:
            prefix, suffix = "", tag
        prefix = self.namespacemap.get(prefix, prefix)
        return f"{prefix}_{suffix}" if prefix else suffix

    def unknown_endtag(self, key: str) -> None:
        handler = _END.get(key)
        if handler is None:
            if "_end_" + key in _FEEDPARSER_METHODS:
                raise _Unsupported(key)
            self.pop(key)
        else:
            try:
                handler(self)
            except AttributeError:
                self.pop(key)
        if self.basestack:
            self.basestack.pop()
            if self.basestack and self.basestack[-1]:
                self.baseuri = self.basestack[-1]
        if self.langstack:
            self.langstack.pop()
            if self.langstack:
                self.lang = self.langstack[-1]
        self.depth -= 1

    def track_namespace(self, prefix: str | None, uri: str) -> None:
        self.names.clear()  # names depend on the namespaces declared so far
        loweruri = uri.lower()
        if not self.version:
            if (prefix, loweruri) == (None, "http://my.netscape.com/rdf/simple/0.9/"):
                self.version = "rss090"
            elif loweruri == "http://purl.org/rss/1.0/":
                self.version = "rss10"
            elif loweruri == "http://www.w3.org/2005/atom":
                self.version = "atom10"
        if "backend.userland.com/rss" in loweruri:
            uri = loweruri = _USERLAND
        if loweruri in _MATCH_NAMESPACES:
            self.namespacemap[prefix] = _MATCH_NAMESPACES[loweruri]
            self.namespaces_in_use[_MATCH_NAMESPACES[loweruri]] = uri
        else:
            self.namespaces_in_use[prefix or ""] = uri

    def push(self, element: str, expecting_text: Any) -> None:
        self.elementstack.append(_Frame(element, expecting_text))

    def pop(self, element: str, strip_whitespace: int = 1) -> str | None:
        if not self.elementstack or self.elementstack[-1].element != element:
            return None
        frame = self.elementstack.pop()
        output = "".join(frame.pieces)
        if strip_whitespace:
            output = output.strip()
        if not frame.expecting_text:
            return output
        if element in _CAN_BE_RELATIVE and output and (element != "id" or self.guidislink):
            output = _resolve(self.baseuri or "", output)
        params = self.contentparams
        if params.get("type") == "text/plain" and not self.version.startswith("atom") and _looks_like_html(output):
            params["type"] = "text/html"
        self.contentparams.pop("mode", None)
        self.contentparams.pop("base64", None)
        if not output.isascii():
            with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):  # UTF-8 read as Latin-1, repaired
                output = output.encode("iso-8859-1").decode("utf-8")
            if has_c1(output):  # the table maps U+0080-U+009F only: a pass over the rest changes nothing
                output = output.translate(_cp1252)
        if element in ("category", "tags", "itunes_keywords"):
            return output
        if element == "title" and -1 < self.title_depth <= self.depth:
            return output
        if self.inentry and not self.insource:
            entry = self.entries[-1]
            if element == "content":
                entry.setdefault(element, [])
                params = dict(self.contentparams)
                params["value"] = output
                entry[element].append(params)
            elif element == "link":
                if not self.inimage:
                    if "&" in output:
                        output = _ENTITY_LIKE.sub(r"&\g<1>", output.replace("&amp;", "&"))
                    entry[element] = output
                    if output:
                        entry["links"][-1]["href"] = output
            else:
                if element == "description":
                    element = "summary"
                depths = self.property_depth_map.setdefault(id(entry), {})
                old_value_depth = depths.get(element)
                if old_value_depth is None or self.depth <= old_value_depth:
                    depths[element] = self.depth
                    entry[_KEYMAP.get(element, element)] = output
                if self.incontent:
                    params = dict(self.contentparams)
                    params["value"] = output
                    entry[_KEYMAP.get(element + "_detail", element + "_detail")] = params
        elif self.infeed or self.insource:
            context = self._get_context()
            if element == "description":
                element = "subtitle"
            context[_KEYMAP.get(element, element)] = output
            if element == "link":
                if "&" in output:
                    output = _ENTITY_LIKE.sub(r"&\g<1>", output)
                context[element] = output
                context["links"][-1]["href"] = output
            elif self.incontent:
                params = dict(self.contentparams)
                params["value"] = output
                context[_KEYMAP.get(element + "_detail", element + "_detail")] = params
        return output

    def push_content(self, tag: str, attrs_d: dict[str, str], default_content_type: str, expecting_text: Any) -> None:
        self.incontent += 1
        if self.lang:
            self.lang = self.lang.replace("_", "-")
        content_type = _map_content_type(attrs_d.get("type", default_content_type))
        if attrs_d.get("mode", "") == "base64" or not (
            content_type.startswith("text/") or content_type.endswith(("+xml", "/xml"))
        ):
            raise _Unsupported("base64 content")
        if content_type == "application/xhtml+xml":
            raise _Unsupported("inline XHTML")
        self.contentparams = {"type": content_type, "language": self.lang, "base": self.baseuri}
        self.contentparams["base64"] = 0
        self.push(tag, expecting_text)

    def pop_content(self, tag: str) -> str | None:
        value = self.pop(tag)
        self.incontent -= 1
        self.contentparams.clear()
        return value

    def _get_context(self) -> dict[str, Any]:
        if self.insource:
            return self.sourcedata
        if self.inimage and "image" in self.feeddata:
            context: dict[str, Any] = self.feeddata["image"]
            return context
        if self.intextinput:
            textinput: dict[str, Any] = self.feeddata["textinput"]
            return textinput
        if self.inentry:
            entry: dict[str, Any] = self.entries[-1]  # (never a KnownEntry: that is never entered)
            return entry
        return self.feeddata

    def _save(self, key: str, value: Any, overwrite: bool = False) -> None:
        context = self._get_context()
        key = _KEYMAP.get(key, key)
        if overwrite:
            context[key] = value
        else:
            context.setdefault(key, value)

    def _save_author(self, key: str, value: Any, prefix: str = "author") -> None:
        context = self._get_context()
        context.setdefault(prefix + "_detail", {})
        context[prefix + "_detail"][key] = value
        self._sync_author_detail()
        context.setdefault("authors", [{}])
        context["authors"][-1][key] = value

    def _save_contributor(self, key: str, value: Any) -> None:
        context = self._get_context()
        context.setdefault("contributors", [{}])
        context["contributors"][-1][key] = value

    def _sync_author_detail(self, key: str = "author") -> None:
        """feedparser's, its e-mail pattern compiled once and its empty default made only when used."""
        context = self._get_context()
        details = context.get(key + "s", _MISSING)
        detail = FeedParserDict() if details is _MISSING else details[-1]
        if detail:
            name = detail.get("name")
            email = detail.get("email")
            if name and email:
                context[key] = f"{name} ({email})"
            elif name:
                context[key] = name
            elif email:
                context[key] = email
            return
        author, email = context.get(key), None
        if not author:
            return
        emailmatch = _AUTHOR_EMAIL.search(author)
        if emailmatch:
            email = emailmatch.group(0)
            author = author.replace(email, "").replace("()", "").replace("<>", "").replace("&lt;&gt;", "").strip()
            if author and (author[0] == "("):
                author = author[1:]
            if author and (author[-1] == ")"):
                author = author[:-1]
            author = author.strip()
        if author or email:
            context.setdefault(key + "_detail", detail)
        if author:
            detail["name"] = author
        if email:
            detail["email"] = email

    def _add_tag(self, term: Any, scheme: Any, label: Any) -> None:
        context = self._get_context()
        tags = context.setdefault("tags", [])
        if (not term) and (not scheme) and (not label):
            return
        value = {"term": term, "scheme": scheme, "label": label}
        if value not in tags:
            tags.append(value)

    def resolve_uri(self, uri: str) -> str:
        return _resolve(self.baseuri or "", uri)

    # -- namespaces/_base.py ------------------------------------------------------------------

    def _start_rss(self, attrs_d: dict[str, str]) -> None:
        versionmap = {"0.91": "rss091u", "0.92": "rss092", "0.93": "rss093", "0.94": "rss094"}
        if not self.version or not self.version.startswith("rss"):
            attr_version = attrs_d.get("version", "")
            version = versionmap.get(attr_version)
            if version:
                self.version = version
            elif attr_version.startswith("2."):
                self.version = "rss20"
            else:
                self.version = "rss"

    def _start_channel(self, attrs_d: dict[str, str]) -> None:
        self.infeed = 1
        self._cdf_common(attrs_d)

    @staticmethod
    def _cdf_common(attrs_d: dict[str, str]) -> None:
        if "lastmod" in attrs_d or "href" in attrs_d:
            raise _Unsupported("CDF")

    def _start_feed(self, attrs_d: dict[str, str]) -> None:
        self.infeed = 1
        versionmap = {"0.1": "atom01", "0.2": "atom02", "0.3": "atom03"}
        if not self.version:
            version = versionmap.get(attrs_d.get("version", ""))
            self.version = version or "atom"

    def _end_channel(self) -> None:
        self.infeed = 0

    def _start_image(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        if not self.inentry:
            context.setdefault("image", {})
        self.inimage = 1
        self.title_depth = -1
        self.push("image", 0)

    def _end_image(self) -> None:
        self.pop("image")
        self.inimage = 0

    def _start_textinput(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        context.setdefault("textinput", {})
        self.intextinput = 1
        self.title_depth = -1
        self.push("textinput", 0)

    def _end_textinput(self) -> None:
        self.pop("textinput")
        self.intextinput = 0

    def _start_author(self, attrs_d: dict[str, str]) -> None:
        self.inauthor = 1
        self.push("author", 1)
        context = self._get_context()
        context.setdefault("authors", [])
        context["authors"].append({})

    def _end_author(self) -> None:
        self.pop("author")
        self.inauthor = 0
        self._sync_author_detail()

    def _start_contributor(self, attrs_d: dict[str, str]) -> None:
        self.incontributor = 1
        context = self._get_context()
        context.setdefault("contributors", [])
        context["contributors"].append({})
        self.push("contributor", 0)

    def _end_contributor(self) -> None:
        self.pop("contributor")
        self.incontributor = 0

    def _start_name(self, attrs_d: dict[str, str]) -> None:
        self.push("name", 0)

    def _end_name(self) -> None:
        value = self.pop("name")
        if self.inpublisher:
            self._save_author("name", value, "publisher")
        elif self.inauthor:
            self._save_author("name", value)
        elif self.incontributor:
            self._save_contributor("name", value)
        elif self.intextinput:
            self._get_context()["name"] = value

    def _start_width(self, attrs_d: dict[str, str]) -> None:
        self.push("width", 0)

    def _end_width(self) -> None:
        self._end_dimension("width")

    def _start_height(self, attrs_d: dict[str, str]) -> None:
        self.push("height", 0)

    def _end_height(self) -> None:
        self._end_dimension("height")

    def _end_dimension(self, name: str) -> None:
        value: Any = self.pop(name)
        try:
            value = int(value)  # None raises TypeError, as in feedparser
        except ValueError:
            value = 0
        if self.inimage:
            self._get_context()[name] = value

    def _start_url(self, attrs_d: dict[str, str]) -> None:
        self.push("href", 1)

    def _end_url(self) -> None:
        value = self.pop("href")
        if self.inauthor:
            self._save_author("href", value)
        elif self.incontributor:
            self._save_contributor("href", value)

    def _start_email(self, attrs_d: dict[str, str]) -> None:
        self.push("email", 0)

    def _end_email(self) -> None:
        value = self.pop("email")
        if self.inpublisher:
            self._save_author("email", value, "publisher")
        elif self.inauthor:
            self._save_author("email", value)
        elif self.incontributor:
            self._save_contributor("email", value)

    def _start_subtitle(self, attrs_d: dict[str, str]) -> None:
        self.push_content("subtitle", attrs_d, "text/plain", 1)

    def _end_subtitle(self) -> None:
        self.pop_content("subtitle")

    def _start_rights(self, attrs_d: dict[str, str]) -> None:
        self.push_content("rights", attrs_d, "text/plain", 1)

    def _end_rights(self) -> None:
        self.pop_content("rights")

    def _start_item(self, attrs_d: dict[str, str]) -> None:
        self.entries.append({})
        self.push("item", 0)
        self.inentry = 1
        self.guidislink = 0
        self.title_depth = -1
        about = attrs_d.get(self._map_to_standard_prefix("rdf:about"))
        if about:
            self._get_context()["id"] = about
        self._cdf_common(attrs_d)

    def _map_to_standard_prefix(self, name: str) -> str:
        prefix, _, suffix = name.partition(":")
        return self.namespacemap.get(prefix, prefix) + ":" + suffix

    def _end_item(self) -> None:
        self.pop("item")
        self.inentry = 0
        self.has_content = 0

    def _start_language(self, attrs_d: dict[str, str]) -> None:
        self.push("language", 1)

    def _end_language(self) -> None:
        self.lang = self.pop("language")

    def _start_webmaster(self, attrs_d: dict[str, str]) -> None:
        self.push("publisher", 1)

    def _end_webmaster(self) -> None:
        self.pop("publisher")
        self._sync_author_detail("publisher")

    def _start_published(self, attrs_d: dict[str, str]) -> None:
        self.push("published", 1)

    def _end_published(self) -> None:
        self._save("published_parsed", _date_text(self.pop("published")), overwrite=True)

    def _start_updated(self, attrs_d: dict[str, str]) -> None:
        self.push("updated", 1)

    def _end_updated(self) -> None:
        self._save("updated_parsed", _date_text(self.pop("updated")), overwrite=True)

    def _start_created(self, attrs_d: dict[str, str]) -> None:
        self.push("created", 1)

    def _end_created(self) -> None:
        self._save("created_parsed", _date_text(self.pop("created")), overwrite=True)

    def _start_expirationdate(self, attrs_d: dict[str, str]) -> None:
        self.push("expired", 1)

    def _end_expirationdate(self) -> None:
        self._save("expired_parsed", _date_text(self.pop("expired")), overwrite=True)

    def _start_category(self, attrs_d: dict[str, str]) -> None:
        term = attrs_d.get("term")
        scheme = attrs_d.get("scheme", attrs_d.get("domain"))
        label = attrs_d.get("label")
        self._add_tag(term, scheme, label)
        self.push("category", 1)

    def _end_category(self) -> None:
        value = self.pop("category")
        if not value:
            return
        tags = self._get_context()["tags"]
        if value and len(tags) and not tags[-1]["term"]:
            tags[-1]["term"] = value
        else:
            self._add_tag(value, None, None)

    def _start_cloud(self, attrs_d: dict[str, str]) -> None:
        self._get_context()["cloud"] = dict(attrs_d)

    def _start_link(self, attrs_d: dict[str, str]) -> None:
        attrs_d.setdefault("rel", "alternate")
        if attrs_d["rel"] == "self":
            attrs_d.setdefault("type", "application/atom+xml")
        else:
            attrs_d.setdefault("type", "text/html")
        context = self._get_context()
        attrs_d = _enforce_href(attrs_d)
        if "href" in attrs_d:
            attrs_d["href"] = self.resolve_uri(attrs_d["href"])
        expecting_text = self.infeed or self.inentry or self.insource
        context.setdefault("links", [])
        if not (self.inentry and self.inimage):
            context["links"].append(dict(attrs_d))
        if "href" in attrs_d:
            if attrs_d.get("rel") == "alternate" and _map_content_type(attrs_d.get("type", "")) in _HTML_TYPES:
                context["link"] = attrs_d["href"]
        else:
            self.push("link", expecting_text)

    def _end_link(self) -> None:
        self.pop("link")

    def _start_guid(self, attrs_d: dict[str, str]) -> None:
        self.guidislink = attrs_d.get("ispermalink", "true") == "true"
        self.push("id", 1)

    def _end_guid(self) -> None:
        value = self.pop("id")
        self._save("guidislink", self.guidislink and "link" not in self._get_context())
        if self.guidislink:
            self._save("link", value)

    def _start_title(self, attrs_d: dict[str, str]) -> None:
        self.push_content("title", attrs_d, "text/plain", self.infeed or self.inentry or self.insource)

    def _end_title(self) -> None:
        value = self.pop_content("title")
        if not value:
            return
        self.title_depth = self.depth

    def _start_description(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        if "summary" in context and not self.has_content:
            self.summary_key = "content"
            self._start_content(attrs_d)
        else:
            self.push_content("description", attrs_d, "text/html", self.infeed or self.inentry or self.insource)

    def _start_abstract(self, attrs_d: dict[str, str]) -> None:
        self.push_content("description", attrs_d, "text/plain", self.infeed or self.inentry or self.insource)

    def _end_description(self) -> None:
        if self.summary_key == "content":
            self._end_content()
        else:
            self.pop_content("description")
        self.summary_key = None

    def _start_info(self, attrs_d: dict[str, str]) -> None:
        self.push_content("info", attrs_d, "text/plain", 1)

    def _end_info(self) -> None:
        self.pop_content("info")

    def _start_generator(self, attrs_d: dict[str, str]) -> None:
        if attrs_d:
            attrs_d = _enforce_href(attrs_d)
            if "href" in attrs_d:
                attrs_d["href"] = self.resolve_uri(attrs_d["href"])
        self._get_context()["generator_detail"] = dict(attrs_d)
        self.push("generator", 1)

    def _end_generator(self) -> None:
        value = self.pop("generator")
        context = self._get_context()
        if "generator_detail" in context:
            context["generator_detail"]["name"] = value

    def _start_summary(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        if "summary" in context and not self.has_content:
            self.summary_key = "content"
            self._start_content(attrs_d)
        else:
            self.summary_key = "summary"
            self.push_content(self.summary_key, attrs_d, "text/plain", 1)

    def _end_summary(self) -> None:
        if self.summary_key == "content":
            self._end_content()
        else:
            self.pop_content(self.summary_key or "summary")
        self.summary_key = None

    def _start_enclosure(self, attrs_d: dict[str, str]) -> None:
        attrs_d = _enforce_href(attrs_d)
        context = self._get_context()
        attrs_d["rel"] = "enclosure"
        context.setdefault("links", []).append(dict(attrs_d))

    def _start_source(self, attrs_d: dict[str, str]) -> None:
        if "url" in attrs_d:
            self.sourcedata["href"] = attrs_d["url"]
        self.push("source", 1)
        self.insource = 1
        self.title_depth = -1

    def _end_source(self) -> None:
        self.insource = 0
        value = self.pop("source")
        if value:
            self.sourcedata["title"] = value
        self._get_context()["source"] = dict(self.sourcedata)
        self.sourcedata.clear()

    def _start_content(self, attrs_d: dict[str, str]) -> None:
        self.has_content = 1
        self.push_content("content", attrs_d, "text/plain", 1)
        src = attrs_d.get("src")
        if src:
            self.contentparams["src"] = src
        self.push("content", 1)

    def _start_content_encoded(self, attrs_d: dict[str, str]) -> None:
        self.has_content = 1
        self.push_content("content", attrs_d, "text/html", 1)

    def _end_content(self) -> None:
        copy_to_summary = _map_content_type(self.contentparams.get("type") or "") in _COPIED_TO_SUMMARY
        value = self.pop_content("content")
        if copy_to_summary:
            self._save("summary", value)

    def _start_newlocation(self, attrs_d: dict[str, str]) -> None:
        self.push("newlocation", 1)

    def _end_newlocation(self) -> None:
        url = self.pop("newlocation")
        context = self._get_context()
        if context is not self.feeddata:
            return
        context["newlocation"] = make_safe_absolute_uri(self.baseuri, (url or "").strip())

    # -- namespaces/mediarss.py ---------------------------------------------------------------

    def _start_media_category(self, attrs_d: dict[str, str]) -> None:
        attrs_d.setdefault("scheme", "http://search.yahoo.com/mrss/category_schema")
        self._start_category(attrs_d)

    def _end_media_keywords(self) -> None:
        for term in self.pop("media_keywords").split(","):  # type: ignore[union-attr]  # AttributeError is the contract
            if term.strip():
                self._add_tag(term.strip(), None, None)

    def _end_media_title(self) -> None:
        title_depth = self.title_depth
        self._end_title()
        self.title_depth = title_depth

    def _start_media_group(self, attrs_d: dict[str, str]) -> None:
        pass

    def _start_media_rating(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_rating", attrs_d)
        self.push("rating", 1)

    def _end_media_rating(self) -> None:
        rating = self.pop("rating")
        if rating is not None and rating.strip():
            self._get_context()["media_rating"]["content"] = rating

    def _start_media_credit(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        context.setdefault("media_credit", [])
        context["media_credit"].append(attrs_d)
        self.push("credit", 1)

    def _end_media_credit(self) -> None:
        credit = self.pop("credit")
        if credit is not None and credit.strip():
            self._get_context()["media_credit"][-1]["content"] = credit

    def _start_media_restriction(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_restriction", attrs_d)
        self.push("restriction", 1)

    def _end_media_restriction(self) -> None:
        restriction = self.pop("restriction")
        if restriction is not None and restriction.strip():
            countries = [cc.strip().lower() for cc in restriction.split(" ")]
            self._get_context()["media_restriction"]["content"] = countries

    def _start_media_license(self, attrs_d: dict[str, str]) -> None:
        self._get_context().setdefault("media_license", attrs_d)
        self.push("license", 1)

    def _end_media_license(self) -> None:
        license_ = self.pop("license")
        if license_ is not None and license_.strip():
            self._get_context()["media_license"]["content"] = license_

    def _start_media_content(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        context.setdefault("media_content", [])
        context["media_content"].append(attrs_d)

    def _start_media_thumbnail(self, attrs_d: dict[str, str]) -> None:
        context = self._get_context()
        context.setdefault("media_thumbnail", [])
        self.push("url", 1)
        context["media_thumbnail"].append(attrs_d)

    def _end_media_thumbnail(self) -> None:
        url = self.pop("url")
        context = self._get_context()
        if url is not None and url.strip() and "url" not in context["media_thumbnail"][-1]:
            context["media_thumbnail"][-1]["url"] = url

    def _start_media_player(self, attrs_d: dict[str, str]) -> None:
        self.push("media_player", 0)
        self._get_context()["media_player"] = dict(attrs_d)

    def _end_media_player(self) -> None:
        value = self.pop("media_player")
        self._get_context()["media_player"]["content"] = value

    # -- namespaces/itunes.py -----------------------------------------------------------------

    def _start_itunes_owner(self, attrs_d: dict[str, str]) -> None:
        self.inpublisher = 1
        self.push("publisher", 0)

    def _end_itunes_owner(self) -> None:
        self.pop("publisher")
        self.inpublisher = 0
        self._sync_author_detail("publisher")

    def _end_itunes_keywords(self) -> None:
        for term in self.pop("itunes_keywords").split(","):  # type: ignore[union-attr]  # AttributeError is the contract
            if term.strip():
                self._add_tag(term.strip(), "http://www.itunes.com/", None)

    def _start_itunes_category(self, attrs_d: dict[str, str]) -> None:
        self._add_tag(attrs_d.get("text"), "http://www.itunes.com/", None)
        self.push("category", 1)

    def _start_itunes_image(self, attrs_d: dict[str, str]) -> None:
        self.push("itunes_image", 0)
        if attrs_d.get("href"):
            self._get_context()["image"] = {"href": attrs_d.get("href")}
        elif attrs_d.get("url"):
            self._get_context()["image"] = {"href": attrs_d.get("url")}

    def _end_itunes_block(self) -> None:
        value = self.pop("itunes_block", 0)
        self._get_context()["itunes_block"] = 1 if value in ("yes", "Yes") else 0

    def _end_itunes_explicit(self) -> None:
        value = self.pop("itunes_explicit", 0)
        self._get_context()["itunes_explicit"] = (None, False, True)[(value == "yes" and 2) or value == "clean" or 0]


class _DateText(str):
    """A date element's text where feedparser keeps its ``_parse_date`` 9-tuple: the adapter
    parses the text itself first and asks for the tuple (:meth:`parsed`) only when that fails."""

    def parsed(self) -> Any:
        return feedparser.datetimes._parse_date(str(self))


def _date_text(value: str | None) -> _DateText | None:
    return None if value is None else _DateText(value)


def _enforce_href(attrs_d: dict[str, str]) -> dict[str, str]:
    href = attrs_d.get("url", attrs_d.get("uri", attrs_d.get("href")))
    if href:
        attrs_d.pop("url", None)
        attrs_d.pop("uri", None)
        attrs_d["href"] = href
    return attrs_d


_R = _Reader
# Every handler feedparser has: an element with one that is not ported below means fall back.
_FEEDPARSER_METHODS = frozenset(
    name for name in dir(feedparser.api.StrictFeedParser) if name.startswith(("_start_", "_end_"))
)

_START: dict[str, Callable[[_Reader, dict[str, str]], None]] = {
    "rss": _R._start_rss,
    "channel": _R._start_channel,
    "feed": _R._start_feed,
    "image": _R._start_image,
    "textinput": _R._start_textinput,
    "author": _R._start_author,
    "managingeditor": _R._start_author,
    "dc_author": _R._start_author,
    "dc_creator": _R._start_author,
    "itunes_author": _R._start_author,
    "contributor": _R._start_contributor,
    "name": _R._start_name,
    "itunes_name": _R._start_name,
    "width": _R._start_width,
    "height": _R._start_height,
    "url": _R._start_url,
    "homepage": _R._start_url,
    "uri": _R._start_url,
    "email": _R._start_email,
    "itunes_email": _R._start_email,
    "subtitle": _R._start_subtitle,
    "tagline": _R._start_subtitle,
    "itunes_subtitle": _R._start_subtitle,
    "rights": _R._start_rights,
    "copyright": _R._start_rights,
    "dc_rights": _R._start_rights,
    "item": _R._start_item,
    "entry": _R._start_item,
    "language": _R._start_language,
    "dc_language": _R._start_language,
    "webmaster": _R._start_webmaster,
    "dc_publisher": _R._start_webmaster,
    "published": _R._start_published,
    "issued": _R._start_published,
    "pubdate": _R._start_published,
    "dcterms_issued": _R._start_published,
    "updated": _R._start_updated,
    "modified": _R._start_updated,
    "lastbuilddate": _R._start_updated,
    "dc_date": _R._start_updated,
    "dcterms_modified": _R._start_updated,
    "created": _R._start_created,
    "dcterms_created": _R._start_created,
    "expirationdate": _R._start_expirationdate,
    "category": _R._start_category,
    "keywords": _R._start_category,
    "dc_subject": _R._start_category,
    "media_category": _R._start_media_category,
    "cloud": _R._start_cloud,
    "link": _R._start_link,
    "guid": _R._start_guid,
    "id": _R._start_guid,
    "title": _R._start_title,
    "dc_title": _R._start_title,
    "media_title": _R._start_title,
    "description": _R._start_description,
    "dc_description": _R._start_description,
    "media_description": _R._start_description,
    "abstract": _R._start_abstract,
    "info": _R._start_info,
    "feedburner_browserfriendly": _R._start_info,
    "generator": _R._start_generator,
    "summary": _R._start_summary,
    "itunes_summary": _R._start_summary,
    "enclosure": _R._start_enclosure,
    "source": _R._start_source,
    "content": _R._start_content,
    "content_encoded": _R._start_content_encoded,
    "fullitem": _R._start_content_encoded,
    "newlocation": _R._start_newlocation,
    "media_group": _R._start_media_group,
    "media_rating": _R._start_media_rating,
    "media_credit": _R._start_media_credit,
    "media_restriction": _R._start_media_restriction,
    "media_license": _R._start_media_license,
    "media_content": _R._start_media_content,
    "media_thumbnail": _R._start_media_thumbnail,
    "media_player": _R._start_media_player,
    "itunes_owner": _R._start_itunes_owner,
    "itunes_category": _R._start_itunes_category,
    "itunes_image": _R._start_itunes_image,
    "itunes_link": _R._start_itunes_image,
}

_END: dict[str, Callable[[_Reader], None]] = {
    "channel": _R._end_channel,
    "feed": _R._end_channel,
    "image": _R._end_image,
    "textinput": _R._end_textinput,
    "author": _R._end_author,
    "managingeditor": _R._end_author,
    "dc_author": _R._end_author,
    "dc_creator": _R._end_author,
    "itunes_author": _R._end_author,
    "contributor": _R._end_contributor,
    "name": _R._end_name,
    "itunes_name": _R._end_name,
    "width": _R._end_width,
    "height": _R._end_height,
    "url": _R._end_url,
    "homepage": _R._end_url,
    "uri": _R._end_url,
    "email": _R._end_email,
    "itunes_email": _R._end_email,
    "subtitle": _R._end_subtitle,
    "tagline": _R._end_subtitle,
    "itunes_subtitle": _R._end_subtitle,
    "rights": _R._end_rights,
    "copyright": _R._end_rights,
    "dc_rights": _R._end_rights,
    "item": _R._end_item,
    "entry": _R._end_item,
    "language": _R._end_language,
    "dc_language": _R._end_language,
    "webmaster": _R._end_webmaster,
    "dc_publisher": _R._end_webmaster,
    "published": _R._end_published,
    "issued": _R._end_published,
    "pubdate": _R._end_published,
    "dcterms_issued": _R._end_published,
    "updated": _R._end_updated,
    "modified": _R._end_updated,
    "lastbuilddate": _R._end_updated,
    "dc_date": _R._end_updated,
    "dcterms_modified": _R._end_updated,
    "created": _R._end_created,
    "dcterms_created": _R._end_created,
    "expirationdate": _R._end_expirationdate,
    "category": _R._end_category,
    "keywords": _R._end_category,
    "dc_subject": _R._end_category,
    "media_category": _R._end_category,
    "itunes_category": _R._end_category,
    "link": _R._end_link,
    "guid": _R._end_guid,
    "id": _R._end_guid,
    "title": _R._end_title,
    "dc_title": _R._end_title,
    "media_title": _R._end_media_title,
    "description": _R._end_description,
    "dc_description": _R._end_description,
    "media_description": _R._end_description,
    "abstract": _R._end_description,
    "info": _R._end_info,
    "feedburner_browserfriendly": _R._end_info,
    "generator": _R._end_generator,
    "summary": _R._end_summary,
    "itunes_summary": _R._end_summary,
    "source": _R._end_source,
    "content": _R._end_content,
    "content_encoded": _R._end_content,
    "fullitem": _R._end_content,
    "newlocation": _R._end_newlocation,
    "media_keywords": _R._end_media_keywords,
    "media_rating": _R._end_media_rating,
    "media_credit": _R._end_media_credit,
    "media_restriction": _R._end_media_restriction,
    "media_license": _R._end_media_license,
    "media_thumbnail": _R._end_media_thumbnail,
    "media_player": _R._end_media_player,
    "itunes_owner": _R._end_itunes_owner,
    "itunes_keywords": _R._end_itunes_keywords,
    "itunes_block": _R._end_itunes_block,
    "itunes_explicit": _R._end_itunes_explicit,
}
