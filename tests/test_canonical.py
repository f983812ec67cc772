"""workers.normalise.canonical: one spelling per article URL. Table-driven, pure."""

from __future__ import annotations

import pytest

from service.config import CanonicalConfig
from service.urls import ascii_host
from workers.normalise.canonical import canonical_url, strip_tracking

UNWRAP = CanonicalConfig(unwrap_redirects=["news.google.com", "l.facebook.com"])


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://News.Example.COM/a/B?x=1", "https://news.example.com/a/B?x=1"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("https://example.com:8443/a", "https://example.com:8443/a"),
        ("http://example.com:443/a", "http://example.com:443/a"),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/a#comments", "https://example.com/a"),
        ("https://example.com/a?utm_source=rss&utm_medium=feed", "https://example.com/a"),
        ("https://example.com/a?id=7&utm_campaign=x&fbclid=abc", "https://example.com/a?id=7"),
        ("https://example.com/a?UTM_Source=x&id=7", "https://example.com/a?id=7"),
        ("https://example.com/a?gclid=1&mc_cid=2&mc_eid=3&igshid=4&msclkid=5", "https://example.com/a"),
        ("https://example.com/a?b=2&a=1", "https://example.com/a?b=2&a=1"),  # order kept by default
        ("https://example.com/a?q=%E9%A6%99%E6%B8%AF", "https://example.com/a?q=%E9%A6%99%E6%B8%AF"),  # escaping kept
        ("https://example.com/a?flag&utm_source=x", "https://example.com/a?flag="),
        ("https://user:pw@Example.com/a", "https://user:pw@example.com/a"),
        ("https://[2001:DB8::1]:443/a", "https://[2001:db8::1]/a"),
        ("mailto:a@b.c", "mailto:a@b.c"),
        ("http://[::1", "http://[::1"),
        ("/relative/path", "/relative/path"),
        # One spelling of a non-ASCII host: its IDNA form (RFC 3986 §3.2.2), percent-encoded or not.
        ("https://Bücher.Example/ä?q=ü", "https://xn--bcher-kva.example/ä?q=ü"),
        ("http://www.%E8%A9%B9%E5%A7%86%E6%96%AF.com/a", "http://www.xn--8ws00zhy3a.com/a"),
        ("https://faß.de:443/", "https://xn--fa-hia.de/"),  # UTS #46 non-transitional, as browsers
        # Redirect wrappers stay wrapped unless their host is configured.
        (
            "https://news.google.com/url?url=https://real.example/story?utm_source=gn",
            "https://news.google.com/url?url=https://real.example/story?utm_source=gn",
        ),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("https://news.google.com/url?url=https://Real.example/story?utm_source=gn#top", "https://real.example/story"),
        ("https://news.google.com/url?sa=t&q=https%3A%2F%2Freal.example%2Fa%3Fid%3D1", "https://real.example/a?id=1"),
        ("https://l.facebook.com/l.php?u=https%3A%2F%2Freal.example%2Fb&h=AT0", "https://real.example/b"),
        ("https://news.google.com/rss/articles/CBMiabc?oc=5", "https://news.google.com/rss/articles/CBMiabc?oc=5"),
        ("https://news.google.com/url?url=javascript:alert(1)", "https://news.google.com/url?url=javascript:alert(1)"),
        ("https://other.example/url?url=https://real.example/", "https://other.example/url?url=https://real.example/"),
    ],
)
def test_unwrap_redirects_only_for_configured_hosts(url: str, canonical: str) -> None:
    assert canonical_url(url, UNWRAP) == canonical


def test_configurable_params_and_sorting() -> None:
    config = CanonicalConfig(strip_params=["ref", "src_*"], sort_params=True)
    assert (
        canonical_url("https://e.com/a?z=1&ref=x&src_a=1&a=2&utm_source=kept", config)
        == "https://e.com/a?a=2&utm_source=kept&z=1"
    )


def test_strip_tracking_keeps_fragments() -> None:
    assert strip_tracking("https://E.com/a?utm_source=x#fn1") == "https://e.com/a#fn1"
    assert strip_tracking("https://e.com/a?id=1&fbclid=2#fn1") == "https://e.com/a?id=1#fn1"


def test_idempotent() -> None:
    for url in ("HTTPS://E.com:443/a?id=1&utm_source=x#f", "https://news.google.com/url?url=https://r.example/x"):
        once = canonical_url(url, UNWRAP)
        assert canonical_url(once, UNWRAP) == once


def test_strip_tracking_keeps_the_host_spelling() -> None:
    # It spells permalink guids, which are identities: a guid must not change with this rule.
    assert strip_tracking("https://bücher.example/a?utm_source=x#f") == "https://bücher.example/a#f"


@pytest.mark.parametrize(
    ("host", "ascii"),
    [
        ("example.com", "example.com"),
        ("Example.COM", "Example.COM"),  # ASCII hosts are never touched
        ("my_host.example", "my_host.example"),
        ("127.0.0.1", "127.0.0.1"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("my_host.bücher.example", "my_host.xn--bcher-kva.example"),  # label by label
        ("www.%E8%A9%B9%E5%A7%86%E6%96%AF.com", "www.xn--8ws00zhy3a.com"),
        ("%41.com", "%41.com"),  # decodes to ASCII: left alone
        ("%ff.com", "%ff.com"),  # not UTF-8: left alone (the renderer keeps it percent-encoded)
        ("☃.net", "xn--n3h.net"),  # refused by IDNA 2008, accepted by IDNA 2003
    ],
)
def test_ascii_host(host: str, ascii: str) -> None:
    assert ascii_host(host) == ascii
