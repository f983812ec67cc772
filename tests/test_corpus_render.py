"""Every corpus input that parses, rendered in all three formats, validates in all three.

The corpora are full of what real feeds get wrong (bad media types, IDN hosts, control
characters, odd dates), so this is where the renderers meet inputs nobody thought to write
down. Each input is parsed once per session (the ``corpus_inputs`` fixture), normalised, and
rendered once per format; :mod:`tests.feedcheck` holds the validators.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from service.config import FeedConfig, Settings, SourceConfig
from service.feeds.merge import FORMATS, build_merged_feed
from service.feeds.render import render
from tests.conftest import CORPUS_FEED_URL, CorpusInput
from tests.feedcheck import atom_errors, json_errors, rss_errors
from workers.normalise.entry import normalise_feed

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SOURCE = SourceConfig(id="corpus", url=CORPUS_FEED_URL, name="Corpus")
FEED = FeedConfig(name="corpus", title="Corpus", sources=["corpus"], limit=1000)
SETTINGS = Settings(sources=[SOURCE], feeds=[FEED])
CHECKS: dict[str, Callable[[bytes], list[str]]] = {"rss": rss_errors, "atom": atom_errors, "json": json_errors}
SHOWN = 5
"""Problems listed per format when the test fails; the summary line counts them all."""


@pytest.mark.slow
def test_every_corpus_input_renders_valid_in_every_format(corpus_inputs: list[CorpusInput]) -> None:
    assert CHECKS.keys() == FORMATS.keys()
    rendered = articles = 0
    errors: Counter[str] = Counter()
    documents: Counter[str] = Counter()
    failing: dict[str, list[str]] = {fmt: [] for fmt in FORMATS}
    for each in corpus_inputs:
        if each.feed is None:
            continue
        items, _ = normalise_feed(each.feed, source=SOURCE, now=NOW)
        if not items:
            continue
        feed = build_merged_feed(SETTINGS, FEED, items)
        rendered += 1
        articles += len(items)
        for fmt, check in CHECKS.items():
            problems = check(render(feed, fmt))
            errors[fmt] += len(problems)
            documents[fmt] += bool(problems)
            if problems and len(failing[fmt]) < SHOWN:
                failing[fmt].append(f"{each.path}: {problems[0]}")

    counts = ", ".join(f"{fmt} {errors[fmt]} in {documents[fmt]} documents" for fmt in FORMATS)
    print(f"\ncorpus render: {rendered} inputs ({articles} articles) rendered; validator errors: {counts}")
    assert rendered > 0
    assert not any(errors.values()), "\n".join(line for lines in failing.values() for line in lines)
