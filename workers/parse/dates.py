"""Date strings from feeds and pages → aware UTC datetimes.

Called once per entry date, so the common shapes go through the standard library first:

1. ISO 8601 / W3C-DTF / RFC 3339 via :meth:`datetime.fromisoformat`;
2. RFC 822 / 2822 via :func:`email.utils.parsedate_tz`, with the zone token taken off and
   resolved here first: ``parsedate_tz`` reports every zone it does not know ("HKT", "JST",
   "CEST", …) as offset 0, the same as "GMT", so trusting it would silently shift those dates;
3. a forgiving scan for page formats such as ``2023-09-20 HKT 01:12`` or
   ``Last updated: 2023-09-20 HKT 09:10``: a year-first or month-name date, a time and a zone
   (name, numeric offset or ``Z``) anywhere around them. English words around them are
   ignored; non-ASCII words make it give up (they may be a localised "PM").

A date that names no zone, or one this module does not know, is read in ``default_tz`` (the
source's configured timezone is the best guess available). Anything unreadable gives ``None``;
:func:`parse_date` never raises on bad input.

A date that is readable but impossible is refused, never repaired: a year outside 1000–9999
(``0001``, a signed or five-digit year: ``parsedate_tz`` would read ``0001`` as 2001), a day the
month does not have (Feb 30 is not Mar 1), an hour past 23, an offset beyond ±14:00 (no zone on
Earth is further out; ``+9999`` is a typo, not a place). :func:`read_date` says so with
:class:`InvalidDate`, so a caller with a fallback parser (feedparser's ``*_parsed``, which rolls
such dates over) knows not to ask it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_tz
from types import MappingProxyType

__all__ = ["ZONE_OFFSETS", "InvalidDate", "parse_date", "read_date"]

MIN_YEAR, MAX_YEAR = 1000, 9999
MAX_OFFSET = timedelta(hours=14)
"""UTC+14 (Line Islands) and UTC-12 are the extremes in use; anything further is an error."""


class InvalidDate(ValueError):
    """A date this module can read names an impossible moment; refused rather than guessed."""


def _h(hours: float) -> timedelta:
    return timedelta(hours=hours)


ZONE_OFFSETS = MappingProxyType(
    {
        # Universal.
        "GMT": _h(0),
        "UT": _h(0),
        "UTC": _h(0),
        "Z": _h(0),
        # North America (RFC 822 names).
        "EST": _h(-5),
        "EDT": _h(-4),
        "CST": _h(-6),  # US Central, not China Standard Time: RFC 822 defines it so.
        "CDT": _h(-5),
        "MST": _h(-7),
        "MDT": _h(-6),
        "PST": _h(-8),
        "PDT": _h(-7),
        "AKST": _h(-9),
        "AKDT": _h(-8),
        "HST": _h(-10),
        # South America.
        "BRT": _h(-3),
        "ART": _h(-3),
        # Europe.
        "WET": _h(0),
        "WEST": _h(1),
        "BST": _h(1),  # British Summer Time.
        "CET": _h(1),
        "CEST": _h(2),
        "EET": _h(2),
        "EEST": _h(3),
        "MSK": _h(3),
        # Africa.
        "WAT": _h(1),
        "CAT": _h(2),
        "SAST": _h(2),
        "EAT": _h(3),
        # Asia.
        "PKT": _h(5),
        "IST": _h(5.5),  # India; Irish and Israel Standard Time share the name and lose.
        "NPT": _h(5.75),
        "ICT": _h(7),
        "WIB": _h(7),
        "HKT": _h(8),
        "SGT": _h(8),
        "MYT": _h(8),
        "PHT": _h(8),
        "WITA": _h(8),
        "AWST": _h(8),
        "JST": _h(9),
        "KST": _h(9),
        "WIT": _h(9),
        # Oceania.
        "ACST": _h(9.5),
        "ACDT": _h(10.5),
        "AEST": _h(10),
        "AEDT": _h(11),
        "NZST": _h(12),
        "NZDT": _h(13),
    }
)
"""Zone abbreviations and their UTC offsets.

Abbreviations are ambiguous (IST, CST, BST each name several zones); this table picks the
reading most common in English-language news feeds and is the single place to change it.
Extend it rather than special-casing a source.
"""

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = (
    r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)

# The zone token that ends an RFC 822 date: a name, a numeric offset, or GMT+8-style.
_RFC_TRAILING_COMMENT = re.compile(r"\s*\([^()]*\)\s*$")
_RFC_ZONE = re.compile(
    r"\s+(?:"
    r"(?P<name>[A-Za-z]{1,5})"
    r"|(?:(?:GMT|UTC|UT)\s*)?(?P<sign>[+-])(?P<hh>\d{1,2}):?(?P<mm>\d{2})?"
    r")$"
)
_AM_PM = re.compile(r"\b[ap]\.?m\.?$", re.IGNORECASE)
# The shape nearly every RSS date has ("Fri, 31 Oct 2025 21:36:00 +0000"): read field by field.
_RFC_MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RFC_MONTHS = {name: number for number, name in enumerate(_RFC_MONTH_NAMES, start=1)}
_RFC_PLAIN = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(?P<day>\d{1,2}) (?P<month>" + "|".join(_RFC_MONTH_NAMES) + r") "
    r"(?P<year>[1-9]\d{3}) (?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))? "
    r"(?:(?P<sign>[+-])(?P<hh>\d{2})(?P<mm>\d{2})|(?P<name>[A-Z]{1,5}))"
)

_YEAR_MONTH = re.compile(r"^(\d{4})(?:-(\d{2}))?$")
_DATE_YMD = re.compile(r"(?<!\d)(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?!\d)")
_DATE_DAY_MONTH = re.compile(
    r"(?<![\d\w])(\d{1,2})(?:st|nd|rd|th)?[\s-]+" + _MONTH + r",?[\s-]+(\d{4})(?!\d)", re.IGNORECASE
)
_DATE_MONTH_DAY = re.compile(r"(?<![\w])" + _MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)", re.IGNORECASE)
_TIME = re.compile(
    r"(?<![\d:])(\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,6})\d*)?)?(?!\d)(?:\s*([ap])\.?m\b\.?)?",
    re.IGNORECASE,
)
_OFFSET = re.compile(
    r"(?:(?<![A-Za-z])(?:GMT|UTC|UT)\s*(?P<sign1>[+-])(?P<hh1>\d{1,2})(?::?(?P<mm1>\d{2}))?(?!\d))"
    r"|(?:(?<![\w+-])(?P<sign2>[+-])(?P<hh2>\d{2}):?(?P<mm2>\d{2})(?!\d))"
)
_ZONE_NAME = re.compile(r"(?<![A-Za-z])([A-Z]{1,5})(?![A-Za-z])")
# Years no four-digit field can spell: signed ("-0001-01-01") or expanded ("10000-01-01") ISO
# years, and a zero-padded RFC 822 year ("01 Jan 0001", which parsedate_tz reads as 2001).
_EXPANDED_YEAR = re.compile(r"(?<![\w.])(?:[+-]\d{4,}|\d{5,})-\d{1,2}(?:-\d{1,2})?(?!\d)")
_PADDED_YEAR = re.compile(r"(?<![\d:])0\d{3}(?![\d:])")


def parse_date(text: object, default_tz: tzinfo = UTC) -> datetime | None:
    """Read a date string as an aware UTC datetime, or ``None`` if it cannot be read (or is impossible)."""
    try:
        return read_date(text, default_tz)
    except InvalidDate:
        return None


def read_date(text: object, default_tz: tzinfo = UTC) -> datetime | None:
    """Like :func:`parse_date`, but an impossible date raises :class:`InvalidDate` instead of
    giving ``None``, so the caller can tell "refused" from "not a shape this module reads"."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    # Real dates are short; bounding the input keeps the regex scan cheap on junk.
    if not text or len(text) > 200:
        return None
    if _EXPANDED_YEAR.search(text):
        raise InvalidDate(f"year out of range in {text!r}")
    try:
        parsed = _parse_iso(text, default_tz) or _parse_rfc822(text, default_tz) or _parse_loose(text, default_tz)
        if parsed is None:
            return None
        _check(parsed, text)
        return parsed.astimezone(UTC)
    except InvalidDate:
        raise
    except (ValueError, OverflowError):
        return None


def _check(value: datetime, text: str) -> None:
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise InvalidDate(f"year {value.year} out of range in {text!r}")
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_OFFSET:
        raise InvalidDate(f"offset {offset} beyond ±14:00 in {text!r}")


def _fields(
    text: str,
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    micro: int = 0,
    *,
    tz: tzinfo,
) -> datetime:
    """The datetime of these fields; an impossible one (Feb 30, hour 25) raises :class:`InvalidDate`."""
    try:
        return datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
    except ValueError as exc:
        raise InvalidDate(f"{exc} in {text!r}") from exc


def _parse_iso(text: str, default_tz: tzinfo) -> datetime | None:
    if not text[0].isdigit():
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        # W3C-DTF allows the reduced precisions YYYY and YYYY-MM.
        match = _YEAR_MONTH.match(text)
        if not match:
            return None
        return _fields(text, int(match[1]), int(match[2] or 1), 1, tz=default_tz)
    return value if value.tzinfo else value.replace(tzinfo=default_tz)


def _parse_rfc822(text: str, default_tz: tzinfo) -> datetime | None:
    plain = _RFC_PLAIN.fullmatch(text)
    if plain is not None and (plain["sign"] or plain["name"] in ZONE_OFFSETS):
        return _plain_rfc822(text, plain)
    head = _RFC_TRAILING_COMMENT.sub("", text)
    zone: tzinfo | None = None
    match = _RFC_ZONE.search(head)
    if match:
        if match["name"]:
            offset = ZONE_OFFSETS.get(match["name"].upper())
            if match["name"].lower() in ("am", "pm"):
                return None  # 12-hour clock: parsedate_tz would read "pm" as a zone.
            zone = timezone(offset) if offset is not None else None
        else:
            zone = _offset_zone(match["sign"], match["hh"], match["mm"])
        head = head[: match.start()]
    if _AM_PM.search(head):
        return None
    parts = parsedate_tz(head)
    if parts is None:
        return None
    if _PADDED_YEAR.search(head):
        raise InvalidDate(f"year out of range in {text!r}")
    year, month, day, hour, minute, second = parts[:6]
    # parsedate_tz accepts a bare leap second; datetime does not.
    return _fields(text, year, month, day, hour, minute, min(second, 59), tz=zone or default_tz)


def _plain_rfc822(text: str, plain: re.Match[str]) -> datetime:
    """What the general reading in :func:`_parse_rfc822` makes of a date of the plain shape (its
    zone a numeric offset or a name of :data:`ZONE_OFFSETS`), without parsedate_tz's work."""
    if plain["sign"]:
        zone = _offset_zone(plain["sign"], plain["hh"], plain["mm"])
    else:
        zone = timezone(ZONE_OFFSETS[plain["name"]])
    day, month, year = int(plain["day"]), _RFC_MONTHS[plain["month"]], int(plain["year"])
    hour, minute, second = int(plain["hour"]), int(plain["minute"]), min(int(plain["second"] or 0), 59)
    return _fields(text, year, month, day, hour, minute, second, tz=zone)


def _parse_loose(text: str, default_tz: tzinfo) -> datetime | None:
    match = _DATE_YMD.search(text)
    if match:
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    else:
        match = _DATE_DAY_MONTH.search(text)
        if match:
            day, month, year = int(match[1]), _MONTHS[match[2].lower()], int(match[3])
        else:
            match = _DATE_MONTH_DAY.search(text)
            if not match:
                return None
            month, day, year = _MONTHS[match[1].lower()], int(match[2]), int(match[3])
    rest = text[: match.start()] + " " + text[match.end() :]

    hour = minute = second = micro = 0
    time_match = _TIME.search(rest)
    if time_match:
        hour, minute = int(time_match[1]), int(time_match[2])
        second = min(int(time_match[3] or 0), 59)
        micro = int((time_match[4] or "0").ljust(6, "0"))
        if time_match[5]:
            if not 1 <= hour <= 12:
                return None
            hour = hour % 12 + (12 if time_match[5].lower() == "p" else 0)
        rest = rest[: time_match.start()] + " " + rest[time_match.end() :]

    if any(char.isalpha() and not char.isascii() for char in rest):
        # Words we cannot read may change the meaning ("오후" is PM): better no date than a wrong one.
        return None
    return _fields(text, year, month, day, hour, minute, second, micro, tz=_find_zone(rest) or default_tz)


def _find_zone(rest: str) -> tzinfo | None:
    match = _OFFSET.search(rest)
    if match:
        if match["sign1"]:
            return _offset_zone(match["sign1"], match["hh1"], match["mm1"])
        return _offset_zone(match["sign2"], match["hh2"], match["mm2"])
    for name in _ZONE_NAME.findall(rest):
        offset = ZONE_OFFSETS.get(name)
        if offset is not None:
            return timezone(offset)
    return None


def _offset_zone(sign: str, hours: str, minutes: str | None) -> tzinfo:
    offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
    if int(minutes or 0) >= 60 or offset > MAX_OFFSET:
        raise InvalidDate(f"offset {sign}{hours}:{minutes or '00'} beyond ±14:00")
    return timezone(-offset if sign == "-" else offset)
