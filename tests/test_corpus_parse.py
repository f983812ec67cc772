"""Smoke test: every feed-like file of the shared corpora through parse_feed → normalise_feed.

ParseError is an allowed outcome (the corpora hold deliberately broken and non-feed files) but
never of kind INTERNAL, which means a parser crashed. Everything that parses must normalise
into articles that validate against the schema (a JSON round trip through ``Article``) and keep
its promises: sanitised HTML, canonical URLs, plain titles, aware UTC dates.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.config import SourceConfig
from service.errors import ErrorKind, ParseError
from service.models import Article
from tests.conftest import corpus
from workers.normalise.canonical import canonical_url
from workers.normalise.entry import SUMMARY_TEXT_CHARS, normalise_feed
from workers.parse import parse_feed

SUITES = ("feedparser-tests/tests", "lemon24-reader-testdata", "w3c-feedvalidator-testcases/testcases")
SUFFIXES = {".xml", ".json", ".rss", ".atom", ".rdf"}
CONTENT_TYPES = {".json": "application/json"}
URL = "https://corpus.example.com/feeds/feed"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.slow
def test_corpus_parses_and_normalises() -> None:
    corpora = corpus()
    roots = [corpora / suite for suite in SUITES if (corpora / suite).is_dir()]
    if not roots:
        pytest.skip(f"none of {', '.join(SUITES)} under {corpora}")

    source = SourceConfig(id="corpus", url=URL)
    files = articles = 0
    features: Counter[str] = Counter()
    errors: Counter[ErrorKind] = Counter()
    crashes: list[str] = []
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in SUFFIXES and p.is_file()):
            files += 1
            try:
                feed = parse_feed(
                    path.read_bytes(),
                    source_id="corpus",
                    url=URL,
                    content_type=CONTENT_TYPES.get(path.suffix.lower(), "application/xml"),
                )
            except ParseError as exc:
                errors[exc.kind] += 1
                if exc.kind == ErrorKind.INTERNAL:
                    crashes.append(f"{path.relative_to(corpora)}: {exc.message}")
                continue
            parsed, _ = normalise_feed(feed, source=source, now=NOW)
            for article in parsed:
                assert Article.model_validate_json(article.model_dump_json()) == article, path
                check_schema_promises(article, path)
                features.update(
                    name
                    for name, present in (
                        ("html", bool(article.summary or article.content)),
                        ("image", article.image is not None),
                        ("enclosures", bool(article.enclosures)),
                        ("clamped", "date_clamped" in article.flags),
                    )
                    if present
                )
            articles += len(parsed)

    print(
        f"\ncorpus: {files} files, {articles} articles, {sum(errors.values())} parse errors "
        f"({', '.join(f'{kind}={count}' for kind, count in sorted(errors.items()))}); "
        f"articles with {', '.join(f'{name}={count}' for name, count in sorted(features.items()))}; "
        "all validate against the schema"
    )
    assert not crashes, "parser crashed on:\n" + "\n".join(crashes)
    assert files > 0 and articles > 0


UNSAFE = ("<script", "<style", " onerror=", " onload=", " onclick=", "javascript:", '<iframe src="http://')


def check_schema_promises(article: Article, path: Path) -> None:
    for html in (article.summary, article.content):
        if html:
            lowered = html.lower()
            assert not any(marker in lowered for marker in UNSAFE), (path, html[:200])
    if article.url:
        assert canonical_url(article.url) == article.url, (path, article.url)
    assert article.title == " ".join(article.title.split()), (path, article.title)
    if article.summary_text:
        assert len(article.summary_text) <= SUMMARY_TEXT_CHARS, path
    for value in (article.published, article.updated, article.first_seen):
        assert value.tzinfo is UTC, path
    assert article.updated >= article.published, path
    assert [ref.id for ref in article.sources] == [article.source_id], path
