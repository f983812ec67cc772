"""Host spelling shared by normalise (canonical URLs) and render (published URIs). Pure.

RFC 3986 §3.2.2: a registered name that is not ASCII is written in its IDNA (punycode) form,
not percent-encoded. Article URLs are stored that way, and every URI a published feed carries
is written that way, so one host has one spelling in the store and in every format.
"""

from __future__ import annotations

import encodings.idna
from urllib.parse import unquote

import idna

__all__ = ["ascii_host"]


def ascii_host(host: str) -> str:
    """``host`` with each non-ASCII label in its IDNA A-label form (``bücher`` → ``xn--bcher-kva``).

    Percent-encoded UTF-8 (``%C3%BC``) is decoded first. Labels are mapped as browsers do (UTS #46,
    non-transitional: ``ß`` stays ``ß``), with IDNA 2003 as the fallback for labels IDNA 2008
    refuses (symbols such as ``☃``); a label neither accepts is returned as it came. ASCII hosts
    come back unchanged, so an IP literal or an ``_``-name is never touched.
    """
    if "%" in host:
        try:
            decoded = unquote(host, errors="strict")
        except UnicodeDecodeError:
            decoded = host
        if not decoded.isascii():
            host = decoded
    if host.isascii():
        return host
    return ".".join(_ascii_label(label) for label in host.split("."))


def _ascii_label(label: str) -> str:
    if label.isascii():
        return label
    try:
        return idna.alabel(idna.uts46_remap(label, std3_rules=False, transitional=False)).decode("ascii")
    except (idna.IDNAError, UnicodeError, ValueError):
        pass
    try:
        return encodings.idna.ToASCII(label).decode("ascii")
    except UnicodeError:
        return label
