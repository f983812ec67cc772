"""URL canonicalisation: one spelling per article URL, so ids, hashes and dedup agree. Pure.

Rules (config ``[canonical]``, see docs/article-schema.md):

- scheme and host lower-cased, a non-ASCII host in its IDNA form (``xn--…``, RFC 3986 §3.2.2, as
  every published format writes it), default ports (``:80`` for http, ``:443`` for https)
  dropped, an empty path becomes ``/``, the fragment is dropped;
- tracking parameters are stripped (``strip_params``; an entry ending in ``*`` is a prefix, and
  names match case-insensitively); the remaining parameters keep their order and spelling
  unless ``sort_params`` is set: order can matter to the target server, and one feed always
  writes its links the same way;
- a redirect-wrapped link (``https://news.google.com/url?url=https://real.example/a``) is
  replaced by its target only when its host is listed in ``unwrap_redirects``: unwrapping an
  arbitrary ``?url=`` would turn a search page or a share link into something it is not.

Only http(s) URLs are touched; anything else (and anything unparseable) comes back unchanged.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from service.config import CanonicalConfig
from service.urls import ascii_host

__all__ = ["canonical_url", "strip_tracking"]

DEFAULT = CanonicalConfig()
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REDIRECT_PARAMS = ("url", "q", "u", "target", "dest")
_MAX_UNWRAP = 3
# A URL already in its canonical spelling but for the query and fragment: lower-case scheme and
# host, no port, no userinfo, a path, nothing urlsplit drops (spaces, an empty "?" or "#").
_PLAIN = re.compile(r"(?:http|https)://[a-z0-9][a-z0-9.-]*(?P<path>/[^?#\s]*)(?P<query>\?[^#\s]+)?(?P<fragment>#\S+)?")


def canonical_url(url: str, config: CanonicalConfig = DEFAULT) -> str:
    """The canonical spelling of an http(s) ``url`` (see the module docstring)."""
    for _ in range(_MAX_UNWRAP):
        target = _redirect_target(url, config)
        if target is None:
            break
        url = target
    return _rewrite(url, config, keep_fragment=False, idna=True)


def strip_tracking(url: str, config: CanonicalConfig = DEFAULT) -> str:
    """``url`` with tracking parameters stripped, fragment and everything else kept.

    For links inside article HTML, where a fragment may point at a footnote, and for permalink
    guids, whose host keeps its spelling (a guid is an identity: it must not change).
    """
    return _rewrite(url, config, keep_fragment=True, idna=False)


def _rewrite(url: str, config: CanonicalConfig, *, keep_fragment: bool, idna: bool) -> str:
    plain = _PLAIN.fullmatch(url)
    if plain and not config.sort_params and not (plain["query"] and _has_tracking(plain["query"][1:], config)):
        # What the general path below would rebuild, character for character.
        return url if keep_fragment or not plain["fragment"] else url[: plain.start("fragment")]
    return _rebuild(url, config, keep_fragment=keep_fragment, idna=idna)


def _rebuild(url: str, config: CanonicalConfig, *, keep_fragment: bool, idna: bool) -> str:
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            return url
        port = parts.port
    except ValueError:
        return url
    host = parts.hostname  # lower-cased by urlsplit; IPv6 loses its brackets
    if idna:
        host = ascii_host(host)
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    if parts.username is not None:
        userinfo = parts.username + (f":{parts.password}" if parts.password is not None else "")
        netloc = f"{userinfo}@{netloc}"
    query = _clean_query(parts.query, config)
    return urlunsplit((scheme, netloc, parts.path or "/", query, parts.fragment if keep_fragment else ""))


def _clean_query(query: str, config: CanonicalConfig) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    patterns = _tracking_patterns(tuple(config.strip_params))
    kept = [(name, value) for name, value in pairs if not _is_tracking(name, patterns)]
    if len(kept) == len(pairs) and not config.sort_params:
        return query  # untouched: keeps the source's own escaping
    if config.sort_params:
        kept.sort()
    return urlencode(kept)


def _has_tracking(query: str, config: CanonicalConfig) -> bool:
    """Whether ``parse_qsl(query)`` would name a tracking parameter."""
    patterns = _tracking_patterns(tuple(config.strip_params))
    for pair in query.split("&"):
        if pair:
            name = pair.split("=", 1)[0]
            if "+" in name or "%" in name:
                name = unquote(name.replace("+", " "))
            if _is_tracking(name, patterns):
                return True
    return False


def _is_tracking(name: str, patterns: tuple[frozenset[str], tuple[str, ...]]) -> bool:
    """Whether ``name`` is a tracking parameter by :func:`_tracking_patterns` (looked up once per URL)."""
    exact, prefixes = patterns
    name = name.lower()
    return name in exact or name.startswith(prefixes)


@lru_cache(maxsize=8)
def _tracking_patterns(strip_params: tuple[str, ...]) -> tuple[frozenset[str], tuple[str, ...]]:
    patterns = [pattern.lower() for pattern in strip_params]
    return frozenset(patterns), tuple(pattern[:-1] for pattern in patterns if pattern.endswith("*"))


def _redirect_target(url: str, config: CanonicalConfig) -> str | None:
    if not config.unwrap_redirects:
        return None
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if (parts.hostname or "") not in {h.lower() for h in config.unwrap_redirects}:
        return None
    params = dict(parse_qsl(parts.query))
    for name in _REDIRECT_PARAMS:
        target = params.get(name, "")
        if target.lower().startswith(("http://", "https://")):
            return target
    return None
