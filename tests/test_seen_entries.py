"""A changed feed's poll reads only the entries that are new or changed: the others are known, by
key, to be stored unchanged (service/store/seen_entries.py, workers/parse/raw_keys.py,
workers/normalise/read.py). What is stored is the same as when every entry is read, over the
corpora too."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from lxml import etree
from redis.asyncio import Redis

from service import keys
from service.config import SanitiseConfig, Settings
from service.models import Article
from service.store.seen_entries import KEY_BYTES, SeenEntry, article_digest, decode, encode
from tests.conftest import CORPORA, CORPUS_FEED_URL, CorpusInput, ManualClock
from tests.feedserver import FeedServer
from tests.pollkit import poll_settings, resources
from workers.ingest import drain as ingest
from workers.normalise.read import FeedRead, read_feed
from workers.poll.batch import poll_batch
from workers.poll.publisher_hints import feed_hints
from workers.resources import Resources

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rss(newest: int, count: int = 5) -> bytes:
    """``count`` items, newest first, the newest numbered ``newest``; item n's text never changes."""
    items = "".join(
        f"<item><guid>item-{n}</guid><title>Item {n}</title><link>https://news.example.com/{n}</link>"
        f'<description>Body of &lt;a href="/more/{n}"&gt;item {n}&lt;/a&gt;.</description>'
        f"<pubDate>Tue, 24 Nov 2026 {n % 24:02d}:00:00 GMT</pubDate></item>"
        for n in range(newest, newest - count, -1)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://news.example.com/</link>'
        f"{items}</channel></rss>"
    ).encode()


def read(
    body: bytes,
    settings: Settings,
    seen: Mapping[bytes, SeenEntry] | None,
    content_type: str = "application/rss+xml",
) -> FeedRead:
    return read_feed(
        body,
        source=settings.sources[0],
        settings=settings,
        now=NOW,
        content_type=content_type,
        headers={},
        seen=seen,
    )


def recorded(read_: FeedRead, keys_: Iterable[bytes] | None = None) -> dict[bytes, SeenEntry]:
    """What a poll would record of ``read_``: every key it gave (or ``keys_``)."""
    return {key: read_.records[key] for key in (read_.records if keys_ is None else keys_)}


def test_known_entries_are_passed_over_and_the_others_give_what_a_full_read_gives() -> None:
    settings = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    first = read(rss(10), settings, {})
    assert len(first.articles) == 5 and not first.unchanged_keys
    known = recorded(first)

    second = read(rss(11), settings, known)  # one new item; four known
    full = read(rss(11), settings, None)
    assert [a.title for a in second.articles] == ["Item 11"]
    assert second.articles[0] == full.articles[0]
    assert len(second.unchanged_keys) == 4 and set(second.unchanged_keys) <= known.keys()
    assert not full.keys and not full.unchanged_keys  # no keys asked for: none computed
    # Keyed from their bytes, the known entries were not even parsed; their dates stand in.
    assert len(second.feed.entries) == 1 and len(second.feed.known) == 4
    assert feed_hints(second.feed, 50) == feed_hints(full.feed, 50)

    changed = rss(11).replace(b'Body of &lt;a href="/more/9"', b'Body, corrected, of &lt;a href="/more/9"')
    third = read(changed, settings, known)
    assert sorted(a.title for a in third.articles) == ["Item 11", "Item 9"]


def test_only_the_newest_are_read_with_known_entries_ranked_by_their_recorded_dates() -> None:
    base = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    settings = base.model_copy(update={"limits": base.limits.model_copy(update={"items_per_poll": 3})})
    first = read(rss(10), settings, {})  # items 10, 9 and 8: the newest three of five
    assert [a.title for a in first.articles] == ["Item 10", "Item 9", "Item 8"]
    second = read(rss(11, count=6), settings, recorded(first))  # 11 is new; 10, 9 and 8 known
    full = read(rss(11, count=6), settings, None)
    assert [a.title for a in full.articles] == ["Item 11", "Item 10", "Item 9"]
    assert [a.title for a in second.articles] == ["Item 11"] and second.articles[0] == full.articles[0]
    assert len(second.feed.known) == 2 and second.feed.skipped == full.feed.skipped == 3  # 8 ranks out now


@pytest.mark.parametrize(
    ("why", "changes"),
    [
        ("a namespace declared in an entry", [(b"<item><guid>item-9", b'<item xmlns:x="urn:x"><guid>item-9')]),
        ("a feed-level element after the entries", [(b"</channel>", b"<ttl>60</ttl></channel>")]),
        (
            "an entry nested elsewhere",
            [(b"<title>T</title>", b"<title>T</title><x><item><title>odd</title></item></x>")],
        ),
        (
            "an entry named otherwise",
            [
                (b"<item><guid>item-9</guid>", b"<Item><guid>item-9</guid>"),
                (b"</pubDate></item><item><guid>item-8", b"</pubDate></Item><item><guid>item-8"),
            ],
        ),
        ("an entry in an entry", [(b"<title>Item 9</title>", b"<title>Item 9</title><Item><title>odd</title></Item>")]),
        (
            "an element named item the reader does not take for an entry",
            [(b'<rss version="2.0">', b'<rss version="2.0" xmlns:x="urn:x">'), (b"</channel>", b"<x:item/></channel>")],
        ),
    ],
)
def test_documents_whose_entries_bytes_cannot_stand_for_them_are_keyed_as_parsed(
    why: str, changes: list[tuple[bytes, bytes]]
) -> None:
    settings = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    body = rss(10)
    for change in changes:
        body = body.replace(*change)
    first = read(body, settings, {})
    assert first.feed.entry_keys is None, why
    assert first.articles == read(body, settings, None).articles
    second = read(body, settings, recorded(first))
    assert second.articles == [] and len(second.unchanged_keys) == len(first.keys)  # known as parsed
    assert second.feed.entries and not second.feed.known  # ... so parsed all the same


def test_raw_keys_change_with_the_document_around_the_entries_and_only_their_own_bytes() -> None:
    settings = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    keys_ = read(rss(10), settings, {}).feed.entry_keys
    assert keys_ is not None and len(set(keys_)) == 5
    retitled = read(rss(10).replace(b"<title>T</title>", b"<title>U</title>", 1), settings, {}).feed.entry_keys
    assert retitled is not None and set(retitled).isdisjoint(keys_)
    changed = rss(10).replace(b"<title>Item 9</title>", b"<title>Item nine</title>")
    one = read(changed, settings, {}).feed.entry_keys
    assert one is not None and [a == b for a, b in zip(one, keys_, strict=True)] == [True, False, True, True, True]
    as_atom_lang = read(rss(10), settings, {}, content_type="application/rss+xml; charset=utf-8").feed.entry_keys
    assert as_atom_lang == keys_  # the same document decoded the same way: the same keys


def _first_of_each_id(articles: list[Article]) -> dict[str, Article]:
    kept: dict[str, Article] = {}
    for article in articles:
        kept.setdefault(article.id, article)
    return kept


def _corpus_keyed(corpus_inputs: list[CorpusInput]) -> list[tuple[str, bytes]]:
    return [
        (str(item.path), (CORPORA / item.path).read_bytes())
        for item in corpus_inputs
        if item.feed is not None and item.path.suffix.lower() != ".json"
    ]


def test_over_the_corpora_passing_over_known_entries_gives_what_a_full_read_gives(
    corpus_inputs: list[CorpusInput],
) -> None:
    settings = poll_settings([{"id": "corpus", "url": CORPUS_FEED_URL}])
    rng = random.Random(14)
    keyed = 0
    differing: list[str] = []
    for path, body in _corpus_keyed(corpus_inputs):
        full = read(body, settings, None, content_type="application/xml")
        first = read(body, settings, {}, content_type="application/xml")
        assert first.articles == full.articles, path  # keying reads nothing differently
        if first.feed.entry_keys is None:
            continue
        keyed += 1
        known = recorded(first, [key for key in first.records if rng.random() < 0.5])
        second = read(body, settings, known, content_type="application/xml")
        # What a poll queues (an id's first article) is the full read's, and every article of the
        # full read is either queued or stored unchanged (passed over as known).
        full_kept, second_kept = _first_of_each_id(full.articles), _first_of_each_id(second.articles)
        queued_or_known = {article_digest(i) for i in second_kept}
        queued_or_known.update(second.records[key].article for key in second.unchanged_keys)
        if (
            any(full_kept.get(i) != a for i, a in second_kept.items())
            or queued_or_known != {article_digest(i) for i in full_kept}
            or not set(second.unchanged_keys) <= known.keys()
            or feed_hints(second.feed, 50) != feed_hints(full.feed, 50)
        ):
            differing.append(path)
        # Every key recorded known: nothing read, or (an id listed twice) everything read again.
        every = read(body, settings, recorded(first), content_type="application/xml")
        if every.articles not in ([], full.articles) or feed_hints(every.feed, 50) != feed_hints(full.feed, 50):
            differing.append(f"{path} (every entry known)")
    print(f"\nraw keys over the corpora: {keyed} documents keyed from their bytes, each read with half known")
    assert differing == []
    assert keyed >= 20


def _edited(body: bytes, rng: random.Random) -> list[tuple[str, bytes, bytes]]:
    """(edit, before, after): the document as lxml writes it, and after one edit of the kind a
    publisher makes between two polls. Everything else keeps its bytes."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        tree = etree.fromstring(body, parser)
    except etree.LxmlError:
        return []
    before = etree.tostring(tree, xml_declaration=True, encoding="utf-8")
    entries = list(tree.iter("{*}item", "{*}entry"))
    if len(entries) < 2:
        return []

    def edit(name: str, change: Callable[[Any, list[Any]], None]) -> tuple[str, bytes, bytes]:
        copy = etree.fromstring(before, parser)
        change(copy, list(copy.iter("{*}item", "{*}entry")))
        return name, before, etree.tostring(copy, xml_declaration=True, encoding="utf-8")

    i, j = rng.sample(range(len(entries)), 2)

    def drop(root: Any, found: list[Any]) -> None:
        found[i].getparent().remove(found[i])

    def swap(root: Any, found: list[Any]) -> None:
        parent = found[i].getparent()
        if found[j].getparent() is parent:
            low, high = sorted((parent.index(found[i]), parent.index(found[j])))
            first, second = parent[low], parent[high]
            parent.remove(second)
            parent.remove(first)
            parent.insert(low, second)
            parent.insert(high, first)

    def retitle(root: Any, found: list[Any]) -> None:
        texts = [e for e in found[i].iter() if isinstance(e.tag, str) and e.text and e.text.strip()]
        if texts:
            texts[0].text += " (corrected)"

    def repeat(root: Any, found: list[Any]) -> None:
        found[-1].addnext(copy_of(found[i]))

    def copy_of(element: Any) -> Any:
        return etree.fromstring(etree.tostring(element, with_tail=False))

    def feed_level(root: Any, found: list[Any]) -> None:
        parent = found[0].getparent()
        parent.insert(0, etree.Element("ttl"))
        parent[0].text = "60"

    return [
        edit(name, change)
        for name, change in (
            ("drop", drop),
            ("swap", swap),
            ("retitle", retitle),
            ("repeat", repeat),
            ("feed-level", feed_level),
        )
    ]


def test_over_the_corpora_a_publishers_next_version_read_with_the_last_ones_keys_stores_what_a_full_read_stores(
    corpus_inputs: list[CorpusInput],
) -> None:
    """The keys recorded at one poll stand for the articles stored then; the next version of the
    document, read with them known, must give what reading it in full gives."""
    settings = poll_settings([{"id": "corpus", "url": CORPUS_FEED_URL}])
    rng = random.Random(28)
    checked = passed_over = 0
    differing: list[str] = []
    for path, body in _corpus_keyed(corpus_inputs):
        for edit, before, after in _edited(body, rng):
            last = read(before, settings, {}, content_type="application/xml")
            if last.feed.entry_keys is None:
                break
            stored = {key: a for a_id, key in last.keys.items() for a in [_first_of_each_id(last.articles)[a_id]]}
            full = read(after, settings, None, content_type="application/xml")
            this = read(after, settings, recorded(last), content_type="application/xml")
            checked += 1
            passed_over += len(this.unchanged_keys)
            full_kept, this_kept = _first_of_each_id(full.articles), _first_of_each_id(this.articles)
            left_stored = {stored[key].id: stored[key] for key in this.unchanged_keys}
            if (
                any(full_kept.get(i) != a for i, a in this_kept.items())
                or any(full_kept.get(i) not in (None, a) for i, a in left_stored.items())
                or full_kept.keys() != this_kept.keys() | left_stored.keys()
                or feed_hints(this.feed, 50) != feed_hints(full.feed, 50)
                or (edit == "feed-level" and this.unchanged_keys)
            ):
                differing.append(f"{path} ({edit})")
    print(f"\nnext versions over the corpora: {checked} read with the last keys, {passed_over} entries passed over")
    assert differing == []
    assert checked >= 100 and passed_over >= 200


def test_keys_change_with_what_else_normalising_reads() -> None:
    base = poll_settings([{"id": "s", "url": "https://news.example.com/feed"}])
    keys_of = {
        name: set(read(rss(10), settings, {}).keys.values())
        for name, settings in {
            "base": base,
            "sanitising": base.model_copy(update={"sanitise": SanitiseConfig(allow_data_images=True)}),
            "source": poll_settings([{"id": "s", "url": "https://news.example.com/feed", "name": "Renamed"}]),
        }.items()
    }
    assert keys_of["base"].isdisjoint(keys_of["sanitising"])
    assert keys_of["base"].isdisjoint(keys_of["source"])
    moved = rss(10).replace(
        b"<link>https://news.example.com/</link>", b"<link>https://elsewhere.example.com/</link>", 1
    )
    assert set(read(moved, base, {}).keys.values()).isdisjoint(keys_of["base"])


def _one_source(redis: Redis, clock: ManualClock, feed_server: FeedServer) -> Resources:
    """One source serving ``rss(10)``, always in full (no validators), and a worker's resources."""
    url = feed_server.set("/feed", rss(10), conditional=False)
    return resources(poll_settings([{"id": "s", "url": url}]), redis, clock)


async def _poll_and_store(res: Resources, clock: ManualClock) -> dict[str, int]:
    reports = await poll_batch(res, res.settings.sources)
    await ingest.drain(res.redis, res.store, res.clock, "test")
    clock.advance(600)
    report = reports[0]
    return {"new": report.new, "updated": report.updated, "unchanged": report.unchanged}


async def test_polls_record_what_is_stored_unchanged_and_store_what_a_full_read_stores(
    redis, clock: ManualClock, feed_server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    res = _one_source(redis, clock, feed_server)
    seen_key = keys.seen_entries("s")
    try:
        assert await _poll_and_store(res, clock) == {"new": 5, "updated": 0, "unchanged": 0}
        assert not await redis.exists(seen_key)  # a first read looks nothing up and records nothing

        feed_server.set("/feed", rss(11), conditional=False)
        assert await _poll_and_store(res, clock) == {"new": 1, "updated": 0, "unchanged": 4}
        assert len(decode(await redis.get(seen_key))) == 4  # the four found stored unchanged (item 11 is only queued)

        feed_server.set("/feed", rss(12), conditional=False)
        assert await _poll_and_store(res, clock) == {"new": 1, "updated": 0, "unchanged": 4}
        assert len(decode(await redis.get(seen_key))) == 4  # 11 now stored; 7 left the feed

        ids = [i.decode() for i in await redis.zrange(keys.source_index("s"), 0, -1)]
        stored = {
            a.id: a for a in [Article.model_validate_json(raw) for raw in await redis.mget(map(keys.article, ids))]
        }
        full = read(rss(12), res.settings, None).articles
        assert all(stored[a.id].content_hash == a.content_hash for a in full)
        assert len(stored) == 7  # items 6..12, each stored once
    finally:
        await res.session.close()


async def test_an_article_an_operator_removes_comes_back_from_the_feed_as_before(
    redis, clock: ManualClock, feed_server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    res = _one_source(redis, clock, feed_server)
    try:
        await _poll_and_store(res, clock)
        await _poll_and_store(res, clock)
        assert len(decode(await redis.get(keys.seen_entries("s")))) == 5
        removed = (await redis.zrange(keys.source_index("s"), -1, -1))[0].decode()
        assert await res.store.remove_article(removed, clock())
        assert not await redis.exists(keys.seen_entries("s"))
        assert await _poll_and_store(res, clock) == {"new": 1, "updated": 0, "unchanged": 4}
        assert await redis.zscore(keys.source_index("s"), removed) is not None
    finally:
        await res.session.close()


def test_the_record_keeps_keys_and_dates_and_reads_an_earlier_form_as_nothing_known() -> None:
    entries = {
        b"k" * KEY_BYTES: SeenEntry(NOW, b"a" * 8),
        b"m" * KEY_BYTES: SeenEntry(None, b"b" * 8),
        b"n" * KEY_BYTES: SeenEntry(datetime(1901, 1, 1, 0, 0, 0, 1, UTC), b"c" * 8),
    }
    record = encode(entries)
    assert len(record) == 1 + 3 * (KEY_BYTES + 16) and decode(record) == entries
    assert decode(b"") == {}
    assert decode(b"k" * KEY_BYTES * 3) == {}  # keys only, as before dates were kept
    assert decode(record[:-1]) == {}  # cut short
    assert decode(record[:1] + b"k" * KEY_BYTES + b"\x7f" * 8 + b"a" * 8) == {}  # no date this module wrote
