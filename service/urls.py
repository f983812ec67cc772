"""URLs and hosts, shared by config, parse, normalise, render, the hub and the fetcher. Pure.

RFC 3986 §3.2.2: a registered name that is not ASCII is written in its IDNA (punycode) form,
not percent-encoded. Article URLs are stored that way, and every URI a published feed carries
is written that way, so one host has one spelling in the store and in every format.

:func:`is_web_url` is the test of "a URL a reader may follow" (enclosures, images);
:func:`is_public_address` the one test of "an address anyone may reach" (the fetcher's SSRF
guard, the hub's refusal of private callbacks). "A URL Tributary may fetch" is
:func:`service.config.check_web_url`, beside the config it validates. :func:`join_url` is
``urljoin`` without its work for the plain absolute URLs feeds almost always write.
"""

from __future__ import annotations

import encodings.idna
import ipaddress
import re
from urllib.parse import unquote, urljoin, urlsplit

import idna

__all__ = ["WEB_SCHEMES", "ascii_host", "is_public_address", "is_web_url", "join_url", "plain_join", "relative_join"]

WEB_SCHEMES = frozenset({"http", "https"})

# An absolute http(s) URL that urllib hands back unchanged whatever the base: lower-case scheme,
# a plain ASCII host (no userinfo, no IPv6 brackets), and none of what urlsplit drops or rewrites
# (tab, CR, LF, a ";" in the path, an empty "?" or "#", leading or trailing spaces).
_PLAIN_ABSOLUTE = re.compile(r"https?://[A-Za-z0-9.:_~%!$&'()*+,=-]+(?:[/?#][!-~]*)?")
_PLAIN_BASE = re.compile(r"[a-z][a-z0-9+.-]*://[!-~]*")
# A relative reference urljoin only appends (plain segments: no dot or empty segment, no ":",
# params, query, fragment or space; "/" first or not), and an http(s) base whose path it keeps
# as it is (the same kind of segments, no userinfo or IPv6 brackets, nothing after the path).
_SEGMENT = r"[A-Za-z0-9_~!$&'()*+,=@%-][A-Za-z0-9._~!$&'()*+,=@%-]*"
_RELATIVE = re.compile(rf"/?{_SEGMENT}(?:/{_SEGMENT})*/?")
_RELATIVE_BASE = re.compile(rf"https?://[A-Za-z0-9.:_~-]+(?P<path>(?:/{_SEGMENT})*/?)")


def join_url(base: str, url: str) -> str:
    """``urllib.parse.urljoin(base, url)``, without the work where :func:`plain_join` or
    :func:`relative_join` knows the answer. Raises ``ValueError`` where urljoin does."""
    joined = plain_join(base, url) or relative_join(base, url)
    return urljoin(base, url) if joined is None else joined


def relative_join(base: str, url: str) -> str | None:
    """``urljoin(base, url)`` for a plain relative ``url`` (``item-55``, ``/news/1``) and a plain
    http(s) ``base``, where urljoin only appends it to the base's directory or origin (feeds'
    numeric guids, relative links); None for any other."""
    if not _RELATIVE.fullmatch(url):
        return None
    plain = _RELATIVE_BASE.fullmatch(base)
    if plain is None:
        return None
    origin, path = base[: plain.start("path")], plain["path"]
    if url[0] == "/":
        return origin + url
    return origin + path[: path.rfind("/") + 1] + url if path else origin + "/" + url


def plain_join(base: str, url: str) -> str | None:
    """``url`` when it is a plain absolute http(s) URL (what feeds write almost always), which
    ``urljoin(base, url)`` returns unchanged; None for any other (join it the long way)."""
    if (
        _PLAIN_ABSOLUTE.fullmatch(url)
        and (";" not in url or ";" not in url.partition("?")[0].partition("#")[0])
        and not url.endswith(("?", "#"))
        and "?#" not in url
        and _PLAIN_BASE.fullmatch(base)
        and "[" not in base
    ):
        return url
    return None


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


def is_web_url(url: str | None) -> bool:
    """True for an absolute http(s) URL with a host (what may reach a published enclosure or link)."""
    if not url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme.lower() in WEB_SCHEMES and bool(parts.netloc)


def is_public_address(address: str) -> bool:
    """True for globally routable unicast addresses; False for anything an SSRF could abuse."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_unspecified
        or ip.is_reserved
        or not ip.is_global
    )
