"""The human view: a merged feed (and the list of feeds) as a small server-rendered HTML page.

Every value is escaped; article HTML is shown as plain text (summaries only), never passed
through, so a page is safe even if upstream sanitising missed something. No scripts at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from string import Template

from service.feeds.merge import FORMATS, MergedFeed
from service.feeds.render.xmltext import article_source, rfc3339, web_uri
from service.text import plain_text, xml_safe

FORMAT_LABELS = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
SUMMARY_CHARS = 600

_PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
$head_links
<style>
body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{margin-bottom:.2rem}.meta,.subscribe{color:#666;font-size:.9rem}
article{border-top:1px solid #ddd;padding:.8rem 0}article h2{font-size:1.1rem;margin:0}
a{color:#0645ad}nav{margin-top:1rem}
</style>
</head>
<body>
<header>
<h1>$title</h1>
<p>$description</p>
<p class="subscribe">Subscribe: $subscribe</p>
</header>
<main>
$body
</main>
$nav
</body>
</html>
""")

_ITEM = Template("""<article>
<h2>$title</h2>
<p class="meta">$source · <time datetime="$published">$published_text</time></p>
$summary</article>
""")


def _text(value: str) -> str:
    return escape(xml_safe(value), quote=True)


def _link(href: str | None, label: str) -> str:
    """An anchor to an http(s) URL; any other scheme (javascript:, data:) is shown as text only."""
    url = web_uri(href)
    if url is None:
        return label
    return f'<a href="{escape(url, quote=True)}">{label}</a>'


def _subscribe_links(urls: dict[str, str]) -> str:
    return " · ".join(_link(urls[fmt], FORMAT_LABELS[fmt]) for fmt in ("atom", "rss", "json"))


def render_feed_page(feed: MergedFeed) -> bytes:
    items = []
    for article in feed.items:
        summary = plain_text(article.summary or article.content or "")
        if len(summary) > SUMMARY_CHARS:
            summary = summary[:SUMMARY_CHARS].rstrip() + "…"
        items.append(
            _ITEM.substitute(
                title=_link(article.url, _text(article.title or "(untitled)")),
                source=_text(article_source(feed, article).name),
                published=rfc3339(article.published),
                published_text=article.published.strftime("%Y-%m-%d %H:%M UTC"),
                summary=f"<p>{_text(summary)}</p>\n" if summary else "",
            )
        )
    head_links = "\n".join(
        f'<link rel="alternate" type="{FORMATS[fmt]}" title="{_text(feed.title)} ({FORMAT_LABELS[fmt]})" '
        f'href="{escape(feed.self_urls[fmt], quote=True)}">'
        for fmt in ("atom", "rss", "json")
    )
    nav = ""
    if feed.next_urls:
        older = feed.home_url + "?" + feed.next_urls["atom"].partition("?")[2]
        nav = f"<nav>{_link(older, 'Older items →')}</nav>"
    return _PAGE.substitute(
        title=_text(feed.title),
        description=_text(feed.description),
        subscribe=_subscribe_links(feed.self_urls),
        head_links=head_links,
        body="".join(items) or "<p>No items yet.</p>",
        nav=nav,
    ).encode("utf-8")


def render_index(site_title: str, opml_url: str, feeds: Iterable[tuple[str, str, str, dict[str, str]]]) -> bytes:
    """``feeds``: (title, description, page URL, format -> URL) per merged feed."""
    rows = [
        f"<article>\n<h2>{_link(page, _text(title))}</h2>\n<p>{_text(description)}</p>\n"
        f'<p class="subscribe">Subscribe: {_subscribe_links(urls)}</p>\n</article>\n'
        for title, description, page, urls in feeds
    ]
    return _PAGE.substitute(
        title=_text(site_title),
        description="Merged feeds published by this server.",
        subscribe=_link(opml_url, "OPML of all feeds"),
        head_links="",
        body="".join(rows) or "<p>No feeds configured.</p>",
        nav="",
    ).encode("utf-8")
