"""workers.normalise.sanitise: hostile HTML in, republishable HTML out. Table-driven, pure."""

from __future__ import annotations

import pytest

from service.config import SanitiseConfig
from workers.normalise.sanitise import first_image, resolve_srcset, sanitise_html

BASE = "https://news.example.com/2023/09/story.html"
REL = ' rel="noopener noreferrer"'

HOSTILE = [
    # (name, input, expected output)
    ("script", "<p>a</p><script>alert(1)</script>", "<p>a</p>"),
    ("script in svg", "<svg><script>alert(1)</script></svg>b", "b"),
    ("style element", "<style>body{display:none}</style><p>a</p>", "<p>a</p>"),
    ("style attribute", '<p style="position:fixed">a</p>', "<p>a</p>"),
    (
        "event handlers",
        '<img src="x.png" onerror="alert(1)"><b onclick="x()">b</b>',
        '<img src="https://news.example.com/2023/09/x.png"><b>b</b>',
    ),
    ("javascript href", '<a href="javascript:alert(1)">x</a>', f"<a{REL}>x</a>"),
    ("javascript mixed case", '<a href="JaVaScRiPt:alert(1)">x</a>', f"<a{REL}>x</a>"),
    ("javascript with tab entity", '<a href="jav&#x09;ascript:alert(1)">x</a>', f"<a{REL}>x</a>"),
    ("vbscript", '<a href="vbscript:msgbox(1)">x</a>', f"<a{REL}>x</a>"),
    ("data href", '<a href="data:text/html;base64,PHNjcmlwdD4=">x</a>', f"<a{REL}>x</a>"),
    ("data image refused by default", '<p><img src="data:image/png;base64,iVBORw0KGgo=" alt="x">a</p>', "<p>a</p>"),
    ("iframe of unknown host", '<iframe src="https://evil.example/x">fallback</iframe><p>a</p>', "<p>a</p>"),
    (
        "iframe of video host",
        '<iframe src="https://www.youtube.com/embed/abc" onload="x()" width="560">t</iframe>',
        '<iframe src="https://www.youtube.com/embed/abc" width="560"></iframe>',
    ),
    (
        "iframe protocol-relative",
        '<iframe src="//player.vimeo.com/video/1"></iframe>',
        '<iframe src="https://player.vimeo.com/video/1"></iframe>',
    ),
    ("iframe javascript", '<iframe src="javascript:alert(1)"></iframe>', None),
    ("object and embed", '<object data="x.swf"><embed src="x.swf"></object>ok', "ok"),
    ("form", '<form action="https://evil.example/"><input name="pw"><button>Go</button></form>', "Go"),
    ("meta refresh", '<meta http-equiv="refresh" content="0;url=https://evil.example/">a', "a"),
    (
        "base href",
        '<base href="https://evil.example/"><a href="x">x</a>',
        f'<a href="https://news.example.com/2023/09/x"{REL}>x</a>',
    ),
    ("comment", "a<!-- <script>alert(1)</script> -->b", "ab"),
    ("unclosed markup", "<p><b>bold <i>both", "<p><b>bold <i>both</i></b></p>"),
    (
        "target and existing rel",
        '<a href="/x" target="_blank" rel="opener">x</a>',
        f'<a href="https://news.example.com/x"{REL}>x</a>',
    ),
    (
        "relative links and tracking",
        '<a href="../a?id=1&amp;utm_source=rss#fn">x</a>',
        f'<a href="https://news.example.com/2023/a?id=1#fn"{REL}>x</a>',
    ),
    (
        "srcset",
        '<img srcset="a.png 1x, javascript:x 2x, /b.png 3x">',
        '<img srcset="https://news.example.com/2023/09/a.png 1x, https://news.example.com/b.png 3x">',
    ),
    (
        "video poster",
        '<video src="v.mp4" poster="p.jpg" autoplay controls></video>',
        '<video src="https://news.example.com/2023/09/v.mp4" poster="https://news.example.com/2023/09/p.jpg" controls=""></video>',
    ),
    ("markup in an attribute of a dropped image", '<img src="javascript:x" alt="a><script>alert(1)</script>">ok', "ok"),
    (
        "markup in an attribute of a kept image",
        '<img alt="a><script>alert(1)</script>" src="/i.png">',
        '<img alt="a&gt;&lt;script&gt;alert(1)&lt;/script&gt;" src="https://news.example.com/i.png">',
    ),
    (
        "markup in an iframe title",
        '<iframe title="x><script>alert(1)</script>" src="https://evil.example/"></iframe>ok',
        "ok",
    ),
    (
        "quotes in an attribute",
        '<img alt=\'say "hi" > <b>\' src="x.png">',
        '<img alt="say &quot;hi&quot; &gt; &lt;b&gt;" src="https://news.example.com/2023/09/x.png">',
    ),
    ("entities survive", "<p>Fish &amp; Chips &lt;3</p>", "<p>Fish &amp; Chips &lt;3</p>"),
    ("whitespace only", "  \n ", None),
    ("empty after cleaning is None", "<script>x</script>", None),
]


@pytest.mark.parametrize(("name", "html", "expected"), HOSTILE, ids=[case[0] for case in HOSTILE])
def test_hostile_html(name: str, html: str, expected: str | None) -> None:
    assert sanitise_html(html, BASE) == expected


def test_data_images_only_when_configured_and_only_images() -> None:
    config = SanitiseConfig(allow_data_images=True)
    img = '<img src="data:image/png;base64,iVBORw0KGgo=">'
    assert sanitise_html(img, BASE, config) == img
    assert sanitise_html('<a href="data:text/html,x">x</a>', BASE, config) == f"<a{REL}>x</a>"
    assert sanitise_html('<img src="data:text/html,x">', BASE, config) is None


def test_iframe_hosts_are_configurable() -> None:
    config = SanitiseConfig(iframe_hosts=["video.example.org"])
    assert sanitise_html('<iframe src="https://www.youtube.com/embed/a"></iframe>', BASE, config) is None
    kept = '<iframe src="https://video.example.org/e/1"></iframe>'
    assert sanitise_html(kept, BASE, config) == kept


def test_no_base_leaves_relative_links_relative() -> None:
    assert sanitise_html('<a href="x">x</a>', None) == f'<a href="x"{REL}>x</a>'


@pytest.mark.parametrize(
    ("html", "image"),
    [
        (
            '<p><img src="https://e.com/a.png?x=1&amp;y=2"><img src="https://e.com/b.png"></p>',
            "https://e.com/a.png?x=1&y=2",
        ),
        ('<img src="data:image/png;base64,AA"><img src="https://e.com/b.png">', "https://e.com/b.png"),
        ("<p>no image</p>", None),
        (None, None),
    ],
)
def test_first_image(html: str | None, image: str | None) -> None:
    assert first_image(html) == image


def test_resolve_srcset_handles_commas_in_data_urls() -> None:
    assert (
        resolve_srcset("data:image/png;base64,A,B 1x, c.png 2x", "https://e.com/")
        == "data:image/png;base64,A,B 1x, https://e.com/c.png 2x"
    )
