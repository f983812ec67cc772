"""The pure decision behind store writes, table-driven."""

from datetime import UTC, datetime, timedelta

from service.models import Article, ArticleFlag, UpsertOutcome
from service.store.upsert import decide_upsert

T0 = datetime(2023, 9, 19, 17, 12, tzinfo=UTC)
NOW = T0 + timedelta(days=1)


def article(**kw) -> Article:  # type: ignore[no-untyped-def]
    base = {
        "id": "a" * 32,
        "source_id": "s",
        "title": "t",
        "summary": "one",
        "published": T0,
        "updated": T0,
        "first_seen": T0,
    }
    return Article(**{**base, **kw})


def test_new() -> None:
    outcome, stored = decide_upsert(None, article(), NOW)
    assert outcome is UpsertOutcome.NEW and stored == article()


def test_same_hash_is_unchanged_even_with_other_dates() -> None:
    old = article()
    outcome, stored = decide_upsert(old, article(updated=NOW, first_seen=NOW), NOW)
    assert outcome is UpsertOutcome.UNCHANGED and stored is old


def test_changed_content_moves_updated_to_now_when_feed_gives_no_newer_date() -> None:
    outcome, stored = decide_upsert(article(), article(summary="two", first_seen=NOW), NOW)
    assert outcome is UpsertOutcome.UPDATED
    assert (stored.summary, stored.updated, stored.first_seen, stored.published) == ("two", NOW, T0, T0)


def test_changed_content_takes_feeds_newer_updated() -> None:
    feed_updated = T0 + timedelta(hours=2)
    _, stored = decide_upsert(article(), article(summary="two", updated=feed_updated), NOW)
    assert stored.updated == feed_updated


def test_invented_published_date_is_kept_from_first_sight() -> None:
    incoming = article(
        summary="two", published=NOW, updated=NOW, flags={ArticleFlag.PUBLISHED_MISSING, ArticleFlag.UPDATED_MISSING}
    )
    _, stored = decide_upsert(article(), incoming, NOW)
    assert stored.published == T0 and stored.updated == NOW


def test_updated_never_before_published() -> None:
    a = article(published=NOW, updated=T0)
    assert a.updated == NOW
