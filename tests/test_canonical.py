"""workers.normalise.canonical: one spelling per article URL. Table-driven, pure."""

from __future__ import annotations

import pytest

from service.config import CanonicalConfig
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
