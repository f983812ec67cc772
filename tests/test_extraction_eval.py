"""The extraction benchmark's scorer and our standing against trafilatura called bare."""

from __future__ import annotations

import gzip
import json
import statistics
import sys
from pathlib import Path

import pytest

from tests.conftest import corpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import extraction_eval as bench


@pytest.fixture(scope="module")
def bench_corpus() -> Path:
    return corpus(bench.CORPUS_NAME, "ground-truth.json").parent


@pytest.fixture(scope="module")
def truth(bench_corpus: Path) -> dict[str, dict[str, str]]:
    return json.loads((bench_corpus / "ground-truth.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("truth_text", "predicted", "expected"),
    [
        ("one two three four five", "one two three four five", (1.0, 1.0)),
        ("one two three four five", "", (0.0, 0.0)),
        ("", "", (1.0, 1.0)),
        ("a b c d e f", "a b c d", (1.0, 1 / 3)),
        ("a b c d", "x a b c d", (0.5, 1.0)),
    ],
)
def test_precision_recall(truth_text: str, predicted: str, expected: tuple[float, float]) -> None:
    assert bench.precision_recall(truth_text, predicted) == pytest.approx(expected)


def test_scorer_reproduces_published_trafilatura_f1(truth, bench_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    stored = bench.reference_predictions(bench_corpus, "trafilatura")
    score = bench.Score("trafilatura")
    for page_id, item in truth.items():
        score.add(page_id, item["articleBody"], stored.get(page_id, ""))
    p, r = statistics.fmean(score.precision), statistics.fmean(score.recall)
    assert bench.f1(p, r) == pytest.approx(0.958, abs=0.002)


@pytest.mark.slow
def test_ours_not_worse_than_bare_trafilatura(truth, bench_corpus: Path) -> None:  # type: ignore[no-untyped-def]
    ours, bare = bench.Score("ours"), bench.Score("bare")
    for page_id in sorted(truth)[:40]:
        html = gzip.decompress((bench_corpus / "html" / f"{page_id}.html.gz").read_bytes())
        url = truth[page_id]["url"]
        ours.add(page_id, truth[page_id]["articleBody"], bench.ours(html, url))
        bare.add(page_id, truth[page_id]["articleBody"], bench.bare(html, url))
    f1 = {s.name: bench.f1(statistics.fmean(s.precision), statistics.fmean(s.recall)) for s in (ours, bare)}
    print(f"\n40 benchmark pages: F1 ours {f1['ours']:.3f}, bare trafilatura {f1['bare']:.3f}")
    assert f1["ours"] >= f1["bare"] - 0.005
