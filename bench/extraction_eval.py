"""Body-text quality and speed of our page extraction vs trafilatura called bare, on the Scrapinghub
article-extraction benchmark (181 news/blog pages with a hand-made ground-truth body), or on
trafilatura's own evaluation set.

    .venv/bin/python bench/extraction_eval.py [--corpus DIR] [--limit N] [--repeat N] [--worst N]
    .venv/bin/python bench/extraction_eval.py --trafilatura-eval [--corpus DIR] [--limit N] [--repeat N]

Scoring follows the benchmark's own evaluate.py (described in the corpus' SOURCE.txt): tokens
are ``\\w+`` runs, compared as multisets of 4-token shingles; per page precision = tp/(tp+fp)
and recall = tp/(tp+fn) (1 when there is nothing to get wrong); the means over pages give P
and R, and F1 = 2PR/(P+R). The scorer is checked against the corpus' stored trafilatura
predictions, whose published F1 is 0.958.

trafilatura-eval (its SOURCE.txt): each page lists text segments that must appear in the
extracted text and boilerplate that must not; P, R and F1 count segments over all pages, the
way upstream's eval_common.py does, for us and for trafilatura's two canonical settings.

Timing: each extractor runs ``--repeat`` times per page, interleaved, and the fastest run
counts: the steady cost of a long-running worker, without one-time library set-up (date and
stop-word tables load on first use) or another process's load spike. Compare the ratio of the
two columns measured in the same run, not absolute figures across runs.
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
from typing import Any

import lxml.html
import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.record import add_json_option, figure, record
from service.errors import ParseError
from workers.extract import extract_article

CORPUS_NAME = "scrapinghub-article-extraction-benchmark"
TRAFILATURA_EVAL = "trafilatura-eval"
CORPORA = Path(__file__).resolve().parents[2] / "shared" / "corpora"  # ../shared/corpora
DEFAULT_CORPUS = CORPORA / CORPUS_NAME
SHINGLE = 4
# trafilatura's canonical evaluation settings (upstream tests/eval_common.py), fast and with fallback.
EVAL_OPTIONS: dict[str, Any] = {"include_comments": False, "include_tables": True, "include_formatting": False}
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

Extractor = Callable[[bytes, str], str]


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

    def f1(self) -> float:
        return f1(statistics.fmean(self.precision), statistics.fmean(self.recall))

    def row(self) -> str:
        p, r = statistics.fmean(self.precision), statistics.fmean(self.recall)
        timing = f"{1000 * statistics.fmean(self.seconds):8.1f} ms" if self.seconds else "       —   "
        return f"{self.name:<36} {p:9.3f} {r:9.3f} {f1(p, r):9.3f} {timing} {self.errors:7d}"


@dataclass
class SegmentScore:
    """trafilatura-eval counts: segments found that should be (tp) or should not be (fp), and missed (fn)."""

    name: str
    tp: int = 0
    fp: int = 0
    fn: int = 0
    seconds: list[float] = field(default_factory=list)
    errors: int = 0

    def add(self, item: dict[str, Any], predicted: str, seconds: float) -> None:
        text = _spaced(predicted)
        found = sum(_spaced(segment) in text for segment in item["with"]) if text else 0
        self.tp += found
        self.fn += len(item["with"]) - found
        self.fp += sum(_spaced(segment) in text for segment in item["without"]) if text else 0
        self.seconds.append(seconds)

    def row(self) -> str:
        p, r = self.tp / ((self.tp + self.fp) or 1), self.tp / ((self.tp + self.fn) or 1)
        timing = f"{1000 * statistics.fmean(self.seconds):8.1f} ms" if self.seconds else "       —   "
        return f"{self.name:<36} {p:9.4f} {r:9.4f} {f1(p, r):9.4f} {timing} {self.errors:7d}"


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
    return str(wrapper.text_content()).replace("\u00ad", "")  # soft hyphens are invisible, not text


def ours(html: bytes, url: str) -> str:
    try:
        return html_text(extract_article(html, url, None, UTC).content)
    except ParseError:
        return ""


def bare(html: bytes, url: str) -> str:
    return trafilatura.extract(html) or ""


def trafilatura_fast(html: bytes, url: str) -> str:
    return trafilatura.extract(html, fast=True, **EVAL_OPTIONS) or ""


def trafilatura_fallback(html: bytes, url: str) -> str:
    return trafilatura.extract(html, **EVAL_OPTIONS) or ""


def timed(extractor: Extractor, html: bytes, url: str, repeat: int = 1) -> tuple[str, float]:
    """The extractor's text and its fastest time over ``repeat`` runs."""
    best = float("inf")
    text = ""
    for _ in range(max(repeat, 1)):
        start = time.perf_counter()
        text = extractor(html, url)
        best = min(best, time.perf_counter() - start)
    return text, best


def run(score: Score | SegmentScore, extractor: Extractor, html: bytes, url: str, repeat: int) -> tuple[str, float]:
    """:func:`timed`, a crash counting as an empty text (and an error of ``score``, reported)."""
    try:
        return timed(extractor, html, url, repeat)
    except Exception as exc:
        score.errors += 1
        print(f"{score.name}: {url}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return "", 0.0


def reference_predictions(corpus: Path, name: str) -> dict[str, str]:
    path = corpus / "output" / f"{name}.json"
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    data = data.get("output", data) if isinstance(data, dict) and "output" in data else data
    return {page_id: item.get("articleBody") or "" for page_id, item in data.items()}


def article_benchmark(corpus: Path, limit: int, repeat: int, worst: int, results: str | None = None) -> int:
    if not (corpus / "ground-truth.json").exists():
        print(f"corpus not found: expected {corpus / 'ground-truth.json'} (see --corpus)", file=sys.stderr)
        return 2
    truth = json.loads((corpus / "ground-truth.json").read_text(encoding="utf-8"))
    page_ids = sorted(truth)[: limit or None]

    ours_score = Score("tributary (selectors-free pipeline)")
    bare_score = Score(f"trafilatura {trafilatura.__version__} bare")
    references = {name: Score(f"stored output/{name}.json") for name in ("trafilatura", "readability", "newspaper")}
    stored = {name: reference_predictions(corpus, name) for name in references}
    our_texts: dict[str, str] = {}
    for page_id in page_ids:
        html = gzip.decompress((corpus / "html" / f"{page_id}.html.gz").read_bytes())
        expected, url = truth[page_id]["articleBody"], truth[page_id].get("url") or "https://example.com/"
        for score, extractor in ((ours_score, ours), (bare_score, bare)):
            text, seconds = run(score, extractor, html, url, repeat)
            score.add(page_id, expected, text, seconds)
            if score is ours_score:
                our_texts[page_id] = text
        for name, score in references.items():
            if page_id in stored[name]:
                score.add(page_id, expected, stored[name][page_id])

    print(f"{len(page_ids)} pages of {corpus}, fastest of {repeat} run(s) per page")
    print(f"{'extractor':<36} {'precision':>9} {'recall':>9} {'F1':>9} {'time/page':>11} {'errors':>7}")
    for score in (ours_score, bare_score, *(s for s in references.values() if s.precision)):
        print(score.row())
    time_ratio = statistics.fmean(ours_score.seconds) / statistics.fmean(bare_score.seconds)
    print(f"time ours / bare: {time_ratio:.2f}")
    ours_f1, bare_f1 = ours_score.f1(), bare_score.f1()
    record(
        "extraction_eval",
        [
            figure(
                f"extraction F1, {len(page_ids)} pages",
                ours_f1,
                "F1",
                ratio=ours_f1 / bare_f1,
                goal="vs bare trafilatura",
            ),
            figure(
                "extraction time per page",
                1000 * statistics.fmean(ours_score.seconds),
                "ms",
                ratio=time_ratio,
                goal="vs bare trafilatura",
            ),
        ],
        results,
    )
    if worst:
        alternatives = [bare_score, *(s for s in references.values() if s.precision)]
        _print_worst(page_ids, truth, our_texts, ours_score, alternatives, worst)
    return 0


def _print_worst(
    page_ids: list[str],
    truth: dict[str, dict[str, str]],
    our_texts: dict[str, str],
    ours_score: Score,
    alternatives: list[Score],
    count: int,
) -> None:
    """The pages where we do worst and where another extractor beats us most, with what we add or miss."""

    def best_alternative(page_id: str) -> tuple[float, str]:
        return max((s.per_page.get(page_id, 0.0), s.name) for s in alternatives)

    lowest = sorted(page_ids, key=lambda p: ours_score.per_page[p])[:count]
    trailing = sorted(page_ids, key=lambda p: ours_score.per_page[p] - best_alternative(p)[0])[:count]
    for title, chosen in (("lowest F1", lowest), ("largest gap to the best alternative", trailing)):
        print(f"\n{title} (F1 ours, best alternative; + first block we add, - first paragraph we miss):")
        for page_id in chosen:
            their_f1, their_name = best_alternative(page_id)
            print(
                f"  {page_id[:12]}  {ours_score.per_page[page_id]:.3f}  {their_f1:.3f} {their_name[:24]:<24} "
                f"{truth[page_id].get('url', '')[:90]}"
            )
            extra, missing = _first_differences(truth[page_id]["articleBody"], our_texts[page_id])
            for sign, line in (("+", extra), ("-", missing)):
                if line:
                    print(f"      {sign} {line[:110]}")


def _first_differences(expected: str, predicted: str) -> tuple[str, str]:
    """The first block of ``predicted`` mostly absent from ``expected``, and the first paragraph the other way round."""

    def first_foreign(blocks: list[str], other: str) -> str:
        known, words = shingles(other), " ".join(_TOKEN.findall(other))
        for block in blocks:
            tokens = _TOKEN.findall(block)
            if len(tokens) < SHINGLE:
                foreign = bool(tokens) and " ".join(tokens) not in words
            else:
                own = shingles(block)
                foreign = sum((own - known).values()) > sum(own.values()) / 2
            if foreign:
                return " ".join(block.split())
        return ""

    return first_foreign(predicted.split("\n"), expected), first_foreign(expected.split("\n"), predicted)


def trafilatura_eval(corpus: Path, limit: int, repeat: int) -> int:
    evaldata = corpus / "tests" / "evaldata.json"
    if not evaldata.exists():
        print(f"corpus not found: expected {evaldata} (see --corpus)", file=sys.stderr)
        return 2
    items = list(json.loads(evaldata.read_text(encoding="utf-8")).items())[: limit or None]
    version = trafilatura.__version__
    extractors: list[tuple[SegmentScore, Extractor]] = [
        (SegmentScore("tributary (selectors-free pipeline)"), ours),
        (SegmentScore(f"trafilatura {version} fast"), trafilatura_fast),
        (SegmentScore(f"trafilatura {version} with fallback"), trafilatura_fallback),
    ]
    pages = 0
    for url, item in items:
        html = _eval_page(corpus / "tests", item["file"])
        if html is None:
            continue
        pages += 1
        for score, extractor in extractors:
            score.add(item, *run(score, extractor, html, url, repeat))
    print(f"{pages} pages of {corpus}, fastest of {repeat} run(s) per page")
    print(f"{'extractor':<36} {'precision':>9} {'recall':>9} {'F1':>9} {'time/page':>11} {'errors':>7}")
    for score, _extractor in extractors:
        print(score.row())
    return 0


def _eval_page(folder: Path, name: str) -> bytes | None:
    for subfolder in ("cache", "eval"):
        path = folder / subfolder / f"{name}.gz"
        if path.exists():
            return gzip.decompress(path.read_bytes())
    return None


def _spaced(text: str) -> str:
    return " ".join(text.split())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help=f"corpus folder (default: {CORPORA}/<corpus name>)")
    parser.add_argument("--trafilatura-eval", action="store_true", help=f"score on {TRAFILATURA_EVAL} instead")
    parser.add_argument("--limit", type=int, default=0, help="first N pages only")
    parser.add_argument("--repeat", type=int, default=3, help="runs per page and extractor, the fastest counts")
    parser.add_argument("--worst", type=int, default=10, help="list the N pages where we do worst (0: none)")
    add_json_option(parser)
    args = parser.parse_args()
    if args.trafilatura_eval:
        return trafilatura_eval(args.corpus or CORPORA / TRAFILATURA_EVAL, args.limit, args.repeat)
    return article_benchmark(args.corpus or DEFAULT_CORPUS, args.limit, args.repeat, args.worst, args.json)


if __name__ == "__main__":
    sys.exit(main())
