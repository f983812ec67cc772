"""Relative links inside an RSS/Atom HTML value made absolute, exactly as feedparser's
``resolve_relative_uris`` does it, in a fraction of its time.

feedparser's resolver re-writes the whole fragment through an SGML tokenizer: tag and attribute
names lower-cased, attributes de-duplicated (the last wins), sorted, ``rel``/``type`` values
lower-cased, values re-escaped, void elements written ``<br />``, character references
normalised, and the URL attributes it knows resolved with ``make_safe_absolute_uri``. Its
output (attribute order included) is what the sanitiser has always been given, so it is what
every stored article's HTML derives from; a faster resolver must give the same string.

:func:`resolve_html_links` tokenizes a fragment with a strict grammar (double-quoted attributes,
plain tag names, no comments, declarations or raw-text elements) and, where the whole fragment
fits it, applies the same rewrites token by token. Anything outside the grammar goes to
feedparser's resolver itself, so the result is feedparser's in every case (tests compare the
two over the feed corpora).
"""

from __future__ import annotations

import html.entities
import re

from feedparser.html import _cp1252
from feedparser.urls import RelativeURIResolver, make_safe_absolute_uri, resolve_relative_uris

from service.urls import plain_join

__all__ = ["resolve_html_links"]

_URL_ATTRIBUTES = frozenset(RelativeURIResolver.relative_uris)
_VOID = frozenset(RelativeURIResolver.elements_no_end_tag)
_KNOWN_ENTITIES = frozenset(html.entities.name2codepoint) | {"apos"}


def _any_of(names: frozenset[str]) -> str:
    """A regex alternation of ``names`` grouped by first letter, so sre tries the few names of one
    letter at each position instead of all of them (a flat alternation of 250 names is no faster
    than finding every reference and looking each up)."""
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(name[0], []).append(re.escape(name[1:]))
    return "|".join(f"{first}(?:{'|'.join(rests)})" for first, rests in groups.items())


# feedparser's own pre-pass (feedparser.html._BaseHTMLProcessor.feed); its other step, escaping
# "<!", never applies: such fragments leave the grammar.
_SHORTTAG = re.compile(r"<([^<>\s]+?)\s*/>")

# The grammar's tokens: a start tag, an end tag, a character reference, an entity reference
# (sgmllib's: the name ends at any non-alphanumeric character, which is consumed only when it is
# ";"). Text between tokens, and a "&" that starts no reference, is written back as it is.
# Possessive (*+, ++): what a name or attribute consumed is never given back, which cannot change
# a match here (what follows each starts with a character it could not take) but saves sre
# trying every shorter split at each "<".
_NAME = r"[a-zA-Z][a-zA-Z0-9]*+"
_ATTRIBUTES = r'(?:\s++[a-zA-Z_][-:.a-zA-Z_0-9]*+="[^"<>]*+")'
# A "<" that opens no tag of the grammar: a start or end tag, holding no other "<".
_OUTSIDE_GRAMMAR = re.compile(rf"<(?!{_NAME}{_ATTRIBUTES}*+\s*+/?>|/{_NAME}\s*+>)")
# A reference the resolver may write differently: a character reference, or an entity reference
# (as sgmllib reads one, see above) other than a known name closed by ";".
_ODD_REFERENCE = re.compile(rf"&(?:#|(?!(?:{_any_of(_KNOWN_ENTITIES)});)[a-zA-Z][-.a-zA-Z0-9]*(?:;|(?=[^a-zA-Z0-9])))")
# Only the tokens the resolver writes differently: tags with attributes (sorted, re-escaped, URLs
# resolved), tags not already lower-case and tight, void elements, references. (A space after a
# lower-case run that is no name is harmless: the name the tag patterns want next is not there.)
_NEEDS_WORK = rf"(?=[a-z0-9]*+[A-Z\s]|(?:{_any_of(_VOID)})[\s/>])"
_REWRITE_TAGS = (
    rf"<(?P<start>{_NAME})(?P<attrs>{_ATTRIBUTES}++)\s*+(?P<slash>/?)>"
    rf"|<{_NEEDS_WORK}(?P<bare>{_NAME})\s*+(?P<bslash>/?)>"
    rf"|</{_NEEDS_WORK}(?P<end>{_NAME})\s*+>"
)
_REWRITE_REFERENCES = (
    r"|&#(?P<char>[0-9]+|[xX][0-9a-fA-F]+);"
    r"|&(?P<entity>[a-zA-Z][-.a-zA-Z0-9]*)(?:;|(?=[^a-zA-Z0-9]))"
)
_TOKENS = re.compile(_REWRITE_TAGS)
_TOKENS_AND_REFERENCES = re.compile(_REWRITE_TAGS + _REWRITE_REFERENCES)
_ATTRIBUTE = re.compile(r'\s+([a-zA-Z_][-:.a-zA-Z_0-9]*)="([^"<>]*)"')
_VALUE_REF = re.compile(r"&(?:([a-zA-Z][-.a-zA-Z0-9]*)|#([0-9]+))(;?)")
_BARE_AMPERSAND = re.compile(r"&(?!#\d+;|#x[0-9a-fA-F]+;|\w+;)")


def resolve_html_links(value: str, base: str, media_type: str) -> str:
    """``value`` as ``feedparser.urls.resolve_relative_uris(value, base, "utf-8", media_type)``
    returns it."""
    if "<" not in value and "&" not in value:
        return value
    fast = _rewrite(value, base, xhtml=media_type == "application/xhtml+xml")
    if fast is not None:
        return fast
    resolved: str = resolve_relative_uris(value, base, "utf-8", media_type)
    return resolved


def _rewrite(value: str, base: str, *, xhtml: bool) -> str | None:
    """The resolver's output for a fragment within the strict grammar; None for any other."""
    if "<!" in value or "<?" in value:
        return None
    data = _SHORTTAG.sub(_shorttag, value) if "/>" in value else value
    if "&#" in data:
        data = data.replace("&#39;", "'").replace("&#34;", '"')
    if _OUTSIDE_GRAMMAR.search(data):  # every "<" must open a tag of the grammar; else the slow path
        return None

    def token(match: re.Match[str]) -> str:
        if (name := match["start"] or match["bare"]) is not None:
            name = name.lower()
            written = _start_tag(name, match["attrs"], base)
            if xhtml and (match["slash"] or match["bslash"]) and name not in _VOID:
                written += f"</{name}>"  # the resolver closes <x/> when told the type is XHTML
            return written
        if (name := match["end"]) is not None:
            name = name.lower()
            return "" if name in _VOID else f"</{name}>"
        if (ref := match["char"]) is not None:
            return _charref(ref)
        name = match["entity"]
        return f"&{name};" if name in _KNOWN_ENTITIES else f"&amp;{name}"

    # Known entities written out in full come back as they are: skip them when all are such.
    return (_TOKENS_AND_REFERENCES if _ODD_REFERENCE.search(data) else _TOKENS).sub(token, data)


def _shorttag(match: re.Match[str]) -> str:
    tag = match[1]
    return f"<{tag} />" if tag in _VOID else f"<{tag}></{tag}>"


def _charref(ref: str) -> str:
    ref = ref.lower()
    code = int(ref[1:], 16) if ref.startswith("x") else int(ref)
    if code in _cp1252:
        return f"&#{hex(ord(_cp1252[code]))[1:]};"
    return f"&#{ref};"


def _start_tag(name: str, raw_attributes: str | None, base: str) -> str:
    if not raw_attributes:
        return f"<{name} />" if name in _VOID else f"<{name}>"
    attributes: dict[str, str] = {}
    for key, raw in _ATTRIBUTE.findall(raw_attributes):
        # Only a numeric reference without its ";" is written differently.
        attributes[key.lower()] = _VALUE_REF.sub(_value_ref, raw) if "&#" in raw else raw
    pieces = []
    for key in sorted(attributes):
        value = attributes[key]
        if key in ("rel", "type"):
            value = value.lower() or value
        if (name, key) in _URL_ATTRIBUTES:
            # Only a joined URL can hold what the grammar keeps out of values.
            value = _absolute(base, value.strip()) or value
            value = value.replace(">", "&gt;").replace("<", "&lt;").replace('"', "&quot;")
        if "&" in value:
            value = _BARE_AMPERSAND.sub("&amp;", value)
        pieces.append(f' {key}="{value}"')
    attrs = "".join(pieces)
    return f"<{name}{attrs} />" if name in _VOID else f"<{name}{attrs}>"


def _value_ref(match: re.Match[str]) -> str:
    # feedparser's processor writes references in attribute values back as it read them,
    # save for a missing ";" after a numeric one.
    if match[2]:
        return f"&#{match[2]};"
    if match[3]:
        return f"&{match[1]};"
    return f"&{match[1]}"


def _absolute(base: str, reference: str) -> str:
    # feedparser's make_safe_absolute_uri: an http(s) URL is always a safe one
    absolute = plain_join(base, reference) if base else None
    if absolute is None:
        absolute = make_safe_absolute_uri(base, reference)
    return absolute
