"""Keys of a document's entries from their bytes, before reading them. Pure.

A changed feed usually brings one new entry among dozens that its source's last read found
stored unchanged (:mod:`service.store.seen_entries`). Reading each of those again, the fast
reader's handlers and then the adapter, was most of a changed poll's CPU. An entry's raw key is a
digest of the entry element as libxml2 serialises it and of everything else its reading depends
on: the document with its entries taken out (the feed's link and language, xml:base, the
namespaces declared), and the caller's ``salt`` (the feed URL, the headers the reader reads, the
reading and normalising code, the source's settings). Equal keys, equal articles: the fast reader
passes over an entry whose key is known (:func:`workers.parse.fast_xml.read_feed`).

There are keys only where passing over an entry cannot change how anything else is read:

- every element named ``item`` or ``entry`` (in any namespace) is a child of one parent, and
  after the first of them that parent holds nothing but entries, and its ancestors nothing after
  it (the reader's state after an entry, such as the depth of the last title, would otherwise
  decide how a later feed-level element reads);
- no namespace is declared below that parent (a prefix declared in one entry names the elements
  of later ones);
- the reader takes each of those elements for one entry, and no other element for one (an
  ``<Item>``, an element of an unknown namespace named ``item``): it checks that as it reads, and
  reads the document again unkeyed where it finds otherwise.

Elsewhere :func:`raw_keys` gives None, and the caller keys entries as parsed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from lxml import etree

from service.store.seen_entries import KEY_BYTES

__all__ = ["RawKeys", "raw_keys"]

_ENTRY_TAGS = ("{*}item", "{*}entry")  # in any namespace or none


@dataclass(frozen=True, slots=True)
class RawKeys:
    entries: list[Any]
    """The entry elements, in document order."""
    keys: list[bytes]
    """Their keys, in the same order."""


def raw_keys(root: Any, salt: bytes) -> RawKeys | None:
    """The keys of the entries of the document ``root``, or None where they cannot stand for
    what reading the entries gives (see the module docstring)."""
    entries = list(root.iter(*_ENTRY_TAGS))
    if not entries:
        return None
    parent = entries[0].getparent()
    if parent is None:
        return None
    children = list(parent)
    first = children.index(entries[0])
    if children[first:] != entries:  # (elements compare by identity) nested, or something else after
        return None
    chain = [parent, *parent.iterancestors()][::-1]  # the root first
    if any(ancestor[-1] is not below for ancestor, below in pairwise(chain)):
        return None
    if _declarations(root) != sum(_declared_at(element) for element in chain):
        return None
    document = hashlib.sha256(salt)
    for depth, ancestor in enumerate(chain):
        document.update(f"\0{depth}\0{ancestor.tag}\0{sorted(ancestor.attrib.items())}\0".encode())
        document.update(f"{sorted((k or '', v) for k, v in ancestor.nsmap.items())}\0{ancestor.text or ''}".encode())
        below = chain[depth + 1] if depth + 1 < len(chain) else None
        for child in ancestor if below is not None else children[:first]:
            if below is not None and child is below:  # (its tail: text the ancestor reads)
                document.update(b"\0<next>" + (below.tail or "").encode())
            else:
                document.update(b"\0" + etree.tostring(child, encoding="utf-8"))
    keys = []
    for entry in entries:
        digest = document.copy()
        digest.update(b"\0" + etree.tostring(entry, encoding="utf-8"))  # the tail too: text the parent reads
        keys.append(digest.digest()[:KEY_BYTES])
    return RawKeys(entries, keys)


def _declarations(root: Any) -> int:
    """Namespace declarations anywhere in the document (walked in C: only these events surface)."""
    return sum(1 for _ in etree.iterwalk(root, events=("start-ns",)))


def _declared_at(element: Any) -> int:
    """Namespace bindings ``element`` adds to those in scope at its parent."""
    parent = element.getparent()
    inherited = set(parent.nsmap.items()) if parent is not None else set()
    return len(set(element.nsmap.items()) - inherited)
