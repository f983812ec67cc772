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
from service.errors import ErrorKind
from service.models import Article
from tests.conftest import CORPUS_FEED_URL, CorpusInput
from workers.normalise.canonical import canonical_url
from workers.normalise.entry import SUMMARY_TEXT_CHARS, normalise_feed

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.slow
def test_corpus_parses_and_normalises(corpus_inputs: list[CorpusInput]) -> None:
    source = SourceConfig(id="corpus", url=CORPUS_FEED_URL)
    articles = 0
    features: Counter[str] = Counter()
    errors: Counter[ErrorKind] = Counter()
    crashes: list[str] = []
    for each in corpus_inputs:
        if each.error is not None:
            errors[each.error.kind] += 1
            if each.error.kind == ErrorKind.INTERNAL:
                crashes.append(f"{each.path}: {each.error.message}")
            continue
        assert each.feed is not None
        parsed, _ = normalise_feed(each.feed, source=source, now=NOW)
        for article in parsed:
            assert Article.model_validate_json(article.model_dump_json()) == article, each.path
            check_schema_promises(article, each.path)
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
        f"\ncorpus: {len(corpus_inputs)} files, {articles} articles, {sum(errors.values())} parse errors "
        f"({', '.join(f'{kind}={count}' for kind, count in sorted(errors.items()))}); "
        f"articles with {', '.join(f'{name}={count}' for name, count in sorted(features.items()))}; "
        "all validate against the schema"
    )
    assert not crashes, "parser crashed on:\n" + "\n".join(crashes)
    assert corpus_inputs and articles > 0


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
