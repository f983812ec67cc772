"""Refusing XML that carries a DTD of its own, before any parser sees the document.

A feed has no use for a document type definition: an internal subset (``<!DOCTYPE rss [ … ]>``)
is how entity expansion (billion laughs) and external entities (file or network reads) get in.
So a document whose DOCTYPE has an internal subset, or that declares any entity, is refused
outright; a plain ``<!DOCTYPE rss PUBLIC "…" "…">`` (RSS 0.91 ships one) is accepted, and its
external DTD is never loaded.

The prolog is read by a real tokenizer, expat with no handler for external entities, stopped
at the root element's start, so a comment or processing instruction before the DOCTYPE cannot
hide it (a regex looking for "the first element" can be fooled by ``<!-- <a -->``). Parsers
decide the encoding in different ways (BOM, byte pattern, HTTP charset, the XML declaration,
then guesses), so the prolog is read in every encoding any of them could pick, and a document
is refused if any reading shows a DTD subset. A reading in which expat cannot get through the
prolog at all (junk before the root) is searched instead, conservatively: any ``<!ENTITY`` or
``<!DOCTYPE … [`` anywhere refuses it.

Pure and cheap (the prolog, not the document, in the common case): the XML adapter calls
:func:`reject_unsafe_doctype` first, and so must any other XML parse path.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from xml.parsers import expat

from service.errors import ErrorKind, ParseError

__all__ = ["doctype_problem", "reject_unsafe_doctype"]

CHUNK_BYTES = 64 * 1024

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16: the same first two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# The first bytes of "<?xm" or "<" in encodings that are not ASCII-compatible (XML 1.0 appendix F).
_PATTERNS = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
    (b"\x4c\x6f\xa7\x94", "cp037"),  # EBCDIC
)
_WIDE = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_DECLARED = re.compile(r"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z][A-Za-z0-9._-]{0,39})["']""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_SUSPECT = re.compile(r"<!ENTITY|<!DOCTYPE[^>\[]*\[", re.IGNORECASE)


class _RootReached(Exception):
    """Raised from expat's start-element handler: the prolog is over, stop reading."""


class _Unsafe(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def reject_unsafe_doctype(body: bytes, *, source_id: str, content_type: str | None = None) -> None:
    """Raise :class:`ParseError` when ``body`` has a DTD subset or declares entities."""
    problem = doctype_problem(body, content_type)
    if problem is not None:
        raise ParseError(source_id, ErrorKind.PARSE, f"DTD subsets and XML entity declarations are refused: {problem}")


def doctype_problem(body: bytes, content_type: str | None = None) -> str | None:
    """Why ``body`` must not be parsed as XML (a DOCTYPE internal subset, an entity declaration),
    or None. ``content_type`` is the response header: its charset is one reading to check."""
    if b"<!" not in body and not _maybe_wide(body):
        return None  # no declaration in any ASCII-compatible reading; wide ones are checked below
    for codec in _readings(body, content_type):
        problem = _prolog_problem(body, codec)
        if problem is not None:
            return problem
    return None


def _maybe_wide(body: bytes) -> bool:
    head = body[:1024]
    return b"\x00" in head or head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"\x4c\x6f\xa7\x94"))


def _readings(body: bytes, content_type: str | None) -> list[str]:
    """Every encoding a parser could read ``body`` in, each once (by its canonical codec name)."""
    names: list[str] = []
    names += [codec for bom, codec in _BOMS if body.startswith(bom)][:1]
    names += [codec for pattern, codec in _PATTERNS if body.startswith(pattern)][:1]
    if b"\x00" in body[:1024]:
        names += _WIDE
    if content_type and (match := _CHARSET.search(content_type)):
        names.append(match[1])
    names.append("latin-1")  # every ASCII-compatible encoding shows its markup this way
    head = body[:1024]
    for view in {head.decode("latin-1"), *(_decode_head(head, codec) for codec in names[:-1])}:
        if match := _DECLARED.search(view):
            names.append(match[1])
    unique: dict[str, str] = {}
    for name in names:
        try:
            canonical = codecs.lookup(name).name
        except LookupError:
            continue
        unique.setdefault(canonical, name)
    return list(unique.values())


def _decode_head(head: bytes, codec: str) -> str:
    try:
        return head.decode(codec, "replace")
    except LookupError:
        return ""


def _chunks(body: bytes, codec: str) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder(codec)("replace")
    for start in range(0, len(body), CHUNK_BYTES):
        yield decoder.decode(body[start : start + CHUNK_BYTES], final=start + CHUNK_BYTES >= len(body))


def _prolog_problem(body: bytes, codec: str) -> str | None:
    try:
        try:
            _tokenize_prolog(_chunks(body, codec))
        except _RootReached:
            return None
        except _Unsafe as unsafe:
            return unsafe.reason
        except expat.ExpatError:
            # expat could not read this far: search the whole reading, erring on the side of refusal.
            for chunk in _overlapping(_chunks(body, codec)):
                if match := _SUSPECT.search(chunk):
                    return f"declares a DTD or entities ({match[0][:10]}…) in a prolog that is not well-formed"
    except UnicodeError:
        pass  # not a reading any parser can make ("utf-16" without a BOM): the others cover it
    return None


def _overlapping(chunks: Iterator[str], overlap: int = 4096) -> Iterator[str]:
    """Chunks that each repeat the end of the previous one, so no match is split between two."""
    tail = ""
    for chunk in chunks:
        yield tail + chunk
        tail = chunk[-overlap:]


def _tokenize_prolog(chunks: Iterator[str]) -> None:
    """Feed the document to expat until the root element starts (:class:`_RootReached`)."""
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _doctype
    parser.EntityDeclHandler = _entity
    parser.UnparsedEntityDeclHandler = _unparsed_entity
    parser.StartElementHandler = _root
    first = True
    for chunk in chunks:
        if first:
            # Leading whitespace or junk before the first "<" (PHP warnings, a stray newline
            # before <?xml) is not what makes a document dangerous; parsers skip it, so does this.
            start = chunk.find("<")
            if start < 0:
                continue
            chunk, first = chunk[start:], False
        parser.Parse(chunk, False)
    parser.Parse("", True)


def _doctype(name: str | None, system_id: str | None, public_id: str | None, has_internal_subset: bool) -> None:
    if has_internal_subset:
        raise _Unsafe(f"a DOCTYPE with an internal subset (<!DOCTYPE {name} [ … ]>)")


def _entity(name: str, *_: object) -> None:
    raise _Unsafe(f"an entity declaration (<!ENTITY {name} …>)")


def _unparsed_entity(name: str, *_: object) -> None:
    raise _Unsafe(f"an unparsed entity declaration (<!ENTITY {name} … NDATA …>)")


def _root(name: str, attributes: object) -> None:
    raise _RootReached
