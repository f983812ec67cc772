"""workers.parse.dates.parse_date: every supported shape, named zones, default zone, junk → None."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from workers.parse import dates
from workers.parse.dates import ZONE_OFFSETS, InvalidDate, parse_date, read_date


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


HKT_0112 = utc(2023, 9, 19, 17, 12)

CASES = [
    # RFC 822 / 2822
    ("Wed, 20 Sep 2023 01:12:00 HKT", HKT_0112),
    ("Wed, 20 Sep 2023 01:12:00 +0800", HKT_0112),
    ("Wed, 20 Sep 2023 01:12:00 +0800 (HKT)", HKT_0112),
    ("Wed, 20 Sep 2023 01:12:00 GMT+8", HKT_0112),
    ("Wed, 20 Sep 2023 01:12:00 hkt", HKT_0112),
    ("20 Sep 2023 01:12 HKT", HKT_0112),
    ("Wed, 20 Sep 23 01:12:00 HKT", HKT_0112),
    ("Wed, 20 Sep 2023 01:12:00 GMT", utc(2023, 9, 20, 1, 12)),
    ("Wed, 20 Sep 2023 01:12:00 -0000", utc(2023, 9, 20, 1, 12)),
    ("Wed, 20 Sep 2023 01:12:00 EDT", utc(2023, 9, 20, 5, 12)),
    ("Wed, 20 Sep 2023 01:12:00 PST", utc(2023, 9, 20, 9, 12)),
    ("Wed, 20 Sep 2023 01:12:00 IST", utc(2023, 9, 19, 19, 42)),
    ("Wed, 20 Sep 2023 01:12:00 ACST", utc(2023, 9, 19, 15, 42)),
    ("Wed, 20 Sep 2023 01:12:00 NZDT", utc(2023, 9, 19, 12, 12)),
    ("Wed, 20 Sep 2023 01:12:00 CEST", utc(2023, 9, 19, 23, 12)),
    ("Wed, 20 Sep 2023 23:59:60 GMT", utc(2023, 9, 20, 23, 59, 59)),
    ("Tue, 20 Sep 2023 1:12 pm", utc(2023, 9, 20, 13, 12)),
    ("Wed Sep 20 01:12:00 2023", utc(2023, 9, 20, 1, 12)),
    # ISO 8601 / W3C-DTF / RFC 3339
    ("2023-09-20T01:12:00+08:00", HKT_0112),
    ("2023-09-20T01:12:00.123456+08:00", HKT_0112.replace(microsecond=123456)),
    ("2023-09-19T17:12:00Z", HKT_0112),
    ("2023-09-20 01:12:00 +0800", HKT_0112),
    ("2023-09-20T01:12", utc(2023, 9, 20, 1, 12)),
    ("2023-09-20", utc(2023, 9, 20)),
    ("2023-09", utc(2023, 9, 1)),
    ("2023", utc(2023, 1, 1)),
    ("2023-09-19t17:12:00z", HKT_0112),
    # Page formats: a zone name between date and time, words around it.
    ("2023-09-20 HKT 01:12", HKT_0112),
    ("Last updated: 2023-09-20 HKT 09:10", utc(2023, 9, 20, 1, 10)),
    ("Posted 2023/09/20 01:12 JST", utc(2023, 9, 19, 16, 12)),
    ("Sep 20, 2023 1:12 PM EDT", utc(2023, 9, 20, 17, 12)),
    ("20th September 2023, 13:00 IST", utc(2023, 9, 20, 7, 30)),
    ("20 September 2023", utc(2023, 9, 20)),
    ("2023-09-20 01:12 UTC+05:30", utc(2023, 9, 19, 19, 42)),
    # Unreadable → None, never an exception.
    ("", None),
    ("   ", None),
    ("garbage", None),
    ("yesterday", None),
    ("Wed, 31 Feb 2023 01:12:00 GMT", None),
    ("2023-13-45", None),
    ("2023-09-20 25:61", None),
    ("0001-01-01T00:00:00+01:00", None),
    ("Wed, 20 Sep 2023 01:12:00 +2500", None),
    ("9" * 500, None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_parse_date(text: str, expected: datetime | None) -> None:
    parsed = parse_date(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC


TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-09-20 09:00", utc(2023, 9, 20)),
        ("2023-09-20", utc(2023, 9, 19, 15)),
        ("Wed, 20 Sep 2023 09:00:00", utc(2023, 9, 20)),
        ("Wed, 20 Sep 2023 09:00:00 XYZ", utc(2023, 9, 20)),  # unknown zone → default
        ("Wed, 20 Sep 2023 09:00:00 GMT", utc(2023, 9, 20, 9)),  # a stated zone wins
        ("2023-09-20T09:00:00Z", utc(2023, 9, 20, 9)),
    ],
)
def test_default_tz_applies_only_without_a_known_zone(text: str, expected: datetime) -> None:
    assert parse_date(text, TOKYO) == expected


@pytest.mark.parametrize(
    ("zone", "hours"),
    [
        ("HKT", 8),
        ("SGT", 8),
        ("JST", 9),
        ("KST", 9),
        ("IST", 5.5),
        ("CET", 1),
        ("CEST", 2),
        ("EET", 2),
        ("EEST", 3),
        ("WET", 0),
        ("WEST", 1),
        ("BST", 1),
        ("AEST", 10),
        ("AEDT", 11),
        ("ACST", 9.5),
        ("AWST", 8),
        ("NZST", 12),
        ("NZDT", 13),
        ("PHT", 8),
        ("WIB", 7),
        ("MSK", 3),
        ("EST", -5),
        ("EDT", -4),
        ("CST", -6),
        ("CDT", -5),
        ("MST", -7),
        ("MDT", -6),
        ("PST", -8),
        ("PDT", -7),
        ("AKST", -9),
        ("AKDT", -8),
        ("HST", -10),
        ("BRT", -3),
        ("ART", -3),
        ("WAT", 1),
        ("CAT", 2),
        ("SAST", 2),
        ("EAT", 3),
        ("PKT", 5),
        ("NPT", 5.75),
        ("ICT", 7),
        ("MYT", 8),
        ("WITA", 8),
        ("WIT", 9),
        ("ACDT", 10.5),
        ("GMT", 0),
        ("UT", 0),
        ("UTC", 0),
        ("Z", 0),
    ],
)
def test_zone_table(zone: str, hours: float) -> None:
    assert ZONE_OFFSETS[zone] == timedelta(hours=hours)
    assert parse_date(f"Wed, 20 Sep 2023 12:00:00 {zone}") == utc(2023, 9, 20, 12) - timedelta(hours=hours)


@pytest.mark.parametrize("value", [None, 20230920, b"2023-09-20"])
def test_non_strings_give_none(value: object) -> None:
    assert parse_date(value) is None  # type: ignore[arg-type]


def test_unreadable_words_are_not_silently_ignored() -> None:
    # "오후" means PM; ignoring it would be twelve hours off. feedparser's reading is the fallback.
    assert parse_date("2004-05-25 오후 11:23:17") is None


REFUSED = [
    # Years no four-digit field spells: never repaired (parsedate_tz reads "0001" as 2001).
    "0001-01-01T00:00:00Z",
    "-0001-01-01T00:00:00Z",
    "+2023-09-20T00:00:00Z",
    "10000-01-01T00:00:00Z",
    "0999-12-31",
    "0001",
    "Mon, 01 Jan 0001 00:00:00 GMT",
    "01 Jan 0999 00:00 GMT",
    "Jan 1, 0001",
    # Days and times the calendar does not have: never rolled over.
    "2024-02-30T00:00:00Z",
    "2023-02-29",
    "Fri, 30 Feb 2024 10:00:00 GMT",
    "2024-02-30 10:00 HKT",
    "2023-13",
    "2023-13-01T15:51:30-05:00",
    "2003-07-01T25:51:30-05:00",
    "2003-07-01T01:61:30-05:00",
    # Offsets beyond ±14:00, or with minutes past 59.
    "2024-01-01T00:00:00+99:99",
    "2024-01-01T00:00:00+23:00",
    "2024-01-01T00:00:00-14:30",
    "Mon, 01 Jan 2024 00:00:00 +9999",
    "Mon, 01 Jan 2024 00:00:00 +1500",
    "Wed, 20 Sep 2023 01:12:00 +0860",
    "2023-09-20 01:12 UTC+15",
]


@pytest.mark.parametrize("text", REFUSED)
def test_impossible_dates_are_refused_not_repaired(text: str) -> None:
    assert parse_date(text) is None
    with pytest.raises(InvalidDate):
        read_date(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Wed, 20 Sep 99 01:12:00 GMT", utc(1999, 9, 20, 1, 12)),  # RFC 2822 obs-year: two digits
        ("Wed, 20 Sep 23 01:12:00 GMT", utc(2023, 9, 20, 1, 12)),
        ("1000-01-01T00:00:00Z", utc(1000, 1, 1)),
        ("9999-12-31T00:00:00Z", utc(9999, 12, 31)),
        ("2024-02-29T00:00:00Z", utc(2024, 2, 29)),
        ("2024-01-01T00:00:00+14:00", utc(2023, 12, 31, 10)),
        ("2024-01-01T00:00:00-12:00", utc(2024, 1, 1, 12)),
        ("Mon, 01 Jan 2024 00:00:00 -1200", utc(2024, 1, 1, 12)),
    ],
)
def test_edges_that_are_real_dates_are_read(text: str, expected: datetime) -> None:
    assert read_date(text) == expected


def test_shapes_it_cannot_read_are_none_not_refused() -> None:
    assert read_date("2004-05-25 오후 11:23:17") is None
    assert read_date("garbage") is None


def test_the_plain_rfc822_shortcut_reads_as_the_general_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dates of the plain RFC 822 shape skip parsedate_tz: the same datetime, or the same refusal."""
    rnd = random.Random(5)
    days = ["Mon, ", "Sun, ", "Xyz, ", "mon, ", ""]
    months = ["Jan", "Feb", "Sep", "Dec", "oct", "Sept"]
    zones = ["+0000", "-0000", "+0530", "-1400", "+1401", "+0060", "GMT", "UT", "Z", "HKT", "XYZ", "PM", "+00:00", ""]
    cases = []
    for _ in range(20_000):
        day = str(rnd.choice([0, 1, 9, 28, 29, 30, 31, 32])).zfill(rnd.choice([1, 2]))
        year = rnd.choice(["2024", "2025", "1000", "9999", "0999", "10000", "25"])
        hh, mm, ss = (rnd.choice(["00", "09", "23", "24", "59", "60", "7"]) for _ in range(3))
        time = f"{hh}:{mm}:{ss}" if rnd.random() < 0.8 else f"{hh}:{mm}"
        cases.append(f"{rnd.choice(days)}{day} {rnd.choice(months)} {year} {time} {rnd.choice(zones)}".rstrip())
    zone = timedelta(hours=3)

    def outcomes() -> list[object]:
        found: list[object] = []
        for text in cases:
            try:
                found.append(read_date(text, timezone(zone)))
            except InvalidDate as exc:
                found.append(str(exc))
        return found

    shortcut = outcomes()
    assert sum(isinstance(found, datetime) for found in shortcut) > 2_000
    monkeypatch.setattr(dates, "_RFC_PLAIN", re.compile("(?!)"))
    assert shortcut == outcomes()
