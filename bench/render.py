"""Rendering cost: microseconds per item for each published format, on a realistic merged feed.

Builds one merged feed of N items (default 100) with ~2.7 KB HTML bodies, an author, two tags
and an enclosure each, and renders it as RSS, Atom, JSON Feed and the human HTML page, best of
``--repeat`` rounds of ``--number`` renders. This is what the feed cache pays once per change of
a feed (then it serves stored bytes), so it bounds how fast a changed feed is served again.

    python bench/render.py [--items 100] [--number 20] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.record import add_json_option, figure, record
from service.config import settings_from_dict
from service.feeds.merge import FORMATS, MergedFeed, build_merged_feed
from service.feeds.render import render
from service.feeds.render.html import render_feed_page
from service.models import Article, Author, Enclosure

BODY = "<p>Some <a href='https://x.example/'>linked</a> text &amp; more.</p>\n" * 40
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def merged_feed(items: int) -> MergedFeed:
    settings = settings_from_dict(
        {
            "server": {"base_url": "http://127.0.0.1:8080"},
            "sources": [{"id": "alpha", "url": "https://alpha.example/feed.xml", "name": "Alpha"}],
            "feeds": [{"name": "bench", "title": "Bench", "sources": ["alpha"], "limit": items}],
        }
    )
    enclosure = Enclosure(url="https://alpha.example/e.mp3", type="audio/mpeg", length=1)
    articles = [
        Article(
            id=f"{n:032x}",
            source_id="alpha",
            url=f"https://alpha.example/posts/{n}",
            title=f"Post {n}",
            summary=f"<p>Summary of <em>post</em> {n}</p>",
            content=BODY,
            authors=(Author(name="Jane"),),
            tags=("a", "b"),
            enclosures=(enclosure,),
            published=T0 + timedelta(hours=n),
            updated=T0 + timedelta(hours=n, minutes=30),
            first_seen=T0 + timedelta(hours=n),
        )
        for n in range(items)
    ]
    return build_merged_feed(settings, settings.feeds[0], articles)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--number", type=int, default=20, help="renders per round")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; the best one counts")
    add_json_option(parser)
    args = parser.parse_args()
    feed = merged_feed(args.items)
    renderers: dict[str, Callable[[], bytes]] = {fmt: partial(render, feed, fmt) for fmt in FORMATS}
    renderers["html"] = partial(render_feed_page, feed)
    print(f"one merged feed of {len(feed.items)} items, best of {args.repeat} x {args.number} renders")
    print(f"{'format':<7} {'µs/item':>9} {'ms/feed':>9} {'KiB':>7}")
    figures = []
    for name, renderer in renderers.items():
        seconds = min(timeit.repeat(renderer, number=args.number, repeat=args.repeat)) / args.number
        size = len(renderer()) / 1024
        print(f"{name:<7} {seconds * 1e6 / len(feed.items):9.1f} {seconds * 1e3:9.2f} {size:7.0f}")
        figures.append(
            figure(f"render {name}, {len(feed.items)}-item feed", seconds * 1e6 / len(feed.items), "µs/item")
        )
    record("render", figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
