"""Body-text quality of our page extraction vs trafilatura called bare, on the Scrapinghub
article-extraction benchmark (181 news/blog pages with a hand-made ground-truth body).

    .venv/bin/python bench/extraction_eval.py [--corpus DIR] [--limit N] [--worst N]

Scoring follows the benchmark's own evaluate.py (described in the corpus' SOURCE.txt): tokens
are ``\\w+`` runs, compared as multisets of 4-token shingles; per page precision = tp/(tp+fp)
and recall = tp/(tp+fn) (1 when there is nothing to get wrong); the means over pages give P
and R, and F1 = 2PR/(P+R). The scorer is checked against the corpus' stored trafilatura
predictions, whose published F1 is 0.958.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

import lxml.html
import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.errors import ParseError
from workers.extract import extract_article

CORPUS_NAME = "scrapinghub-article-extraction-benchmark"
DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpora" / CORPUS_NAME  # ../shared/corpora
SHINGLE = 4
_TOKEN = re.compile(r"\w+")
_BLOCKS = (
    "p",
    "div",
    "li",
    "br",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
    "tr",
    "td",
    "th",
    "table",
    "ul",
    "ol",
)


@dataclass
class Score:
    name: str
    precision: list[float] = field(default_factory=list)
    recall: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    errors: int = 0
    per_page: dict[str, float] = field(default_factory=dict)

    def add(self, page_id: str, truth: str, predicted: str, seconds: float | None = None) -> None:
        precision, recall = precision_recall(truth, predicted)
        self.precision.append(precision)
        self.recall.append(recall)
        self.per_page[page_id] = f1(precision, recall)
        if seconds is not None:
            self.seconds.append(seconds)

    def row(self) -> str:
        p, r = statistics.fmean(self.precision), statistics.fmean(self.recall)
        timing = f"{1000 * statistics.fmean(self.seconds):8.1f} ms" if self.seconds else "       —   "
        return f"{self.name:<34} {p:9.3f} {r:9.3f} {f1(p, r):9.3f} {timing} {self.errors:7d}"


def shingles(text: str) -> Counter[tuple[str, ...]]:
    tokens = _TOKEN.findall(text)
    if len(tokens) < SHINGLE:
        return Counter([tuple(tokens)])
    return Counter(tuple(tokens[i : i + SHINGLE]) for i in range(len(tokens) - SHINGLE + 1))


def precision_recall(truth: str, predicted: str) -> tuple[float, float]:
    expected, got = shingles(truth), shingles(predicted)
    tp = sum((expected & got).values())
    fp = sum((got - expected).values())
    fn = sum((expected - got).values())
    if fp == 0 and fn == 0:
        return 1.0, 1.0
    if tp == 0:
        return 0.0, 0.0
    return tp / (tp + fp), tp / (tp + fn)


def f1(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def html_text(html: str | None) -> str:
    """Visible text of our content HTML with blocks on their own lines (tokens must not fuse)."""
    if not html:
        return ""
    wrapper = lxml.html.fragment_fromstring(html, create_parent="div")
    for element in wrapper.iter(*_BLOCKS):
        element.tail = "\n" + (element.tail or "")
    return wrapper.text_content()


def ours(html: bytes, url: str) -> str:
    try:
        return html_text(extract_article(html, url, None, UTC).content)
    except ParseError:
        return ""


def bare(html: bytes, url: str) -> str:
    return trafilatura.extract(html) or ""


def timed(extractor: Callable[[bytes, str], str], html: bytes, url: str) -> tuple[str, float]:
    start = time.perf_counter()
    text = extractor(html, url)
    return text, time.perf_counter() - start


def reference_predictions(corpus: Path, name: str) -> dict[str, str]:
    path = corpus / "output" / f"{name}.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    data = data.get("output", data) if isinstance(data, dict) and "output" in data else data
    return {page_id: item.get("articleBody") or "" for page_id, item in data.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=DEFAULT_CORPUS, help=f"folder of {CORPUS_NAME} (default: %(default)s)"
    )
    parser.add_argument("--limit", type=int, default=0, help="first N pages only")
    parser.add_argument("--worst", type=int, default=0, help="list the N pages where we trail bare trafilatura most")
    args = parser.parse_args()
    corpus = args.corpus
    if not (corpus / "ground-truth.json").exists():
        print(
            f"corpus {CORPUS_NAME} not found: expected {corpus / 'ground-truth.json'} (see --corpus)", file=sys.stderr
        )
        return 2
    truth = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    page_ids = sorted(truth)[: args.limit or None]

    ours_score = Score("tributary (selectors-free pipeline)")
    bare_score = Score(f"trafilatura {trafilatura.__version__} bare")
    references = {name: Score(f"stored output/{name}.json") for name in ("trafilatura", "readability", "newspaper")}
    stored = {name: reference_predictions(corpus, name) for name in references}
    for page_id in page_ids:
        html = gzip.decompress((corpus / "html" / f"{page_id}.html.gz").read_bytes())
        expected, url = truth[page_id]["articleBody"], truth[page_id].get("url") or "https://example.com/"
        for score, extractor in ((ours_score, ours), (bare_score, bare)):
            try:
                text, seconds = timed(extractor, html, url)
            except Exception as exc:
                score.errors += 1
                print(f"{score.name}: {page_id}: {type(exc).__name__}: {exc}", file=sys.stderr)
                text, seconds = "", 0.0
            score.add(page_id, expected, text, seconds)
        for name, score in references.items():
            if page_id in stored[name]:
                score.add(page_id, expected, stored[name][page_id])

    print(f"{len(page_ids)} pages of {corpus}")
    print(f"{'extractor':<34} {'precision':>9} {'recall':>9} {'F1':>9} {'time/page':>11} {'errors':>7}")
    for score in (ours_score, bare_score, *(s for s in references.values() if s.precision)):
        print(score.row())
    if args.worst:
        gaps = sorted(page_ids, key=lambda p: ours_score.per_page[p] - bare_score.per_page[p])[: args.worst]
        print("\npages where we trail bare trafilatura most (F1 ours / bare):")
        for page_id in gaps:
            ours_f1, bare_f1 = ours_score.per_page[page_id], bare_score.per_page[page_id]
            print(f"  {page_id[:16]}  {ours_f1:.3f} / {bare_f1:.3f}  {truth[page_id].get('url')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
