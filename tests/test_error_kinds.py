"""Failure kinds an operator reads: one per HTTP status class, and old stored names still load."""

from __future__ import annotations

import pytest

from service.errors import ErrorKind, kind_for_status
from service.models import SourceState


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (404, ErrorKind.NOT_FOUND),
        (410, ErrorKind.GONE),
        (429, ErrorKind.RATE_LIMITED),
        (400, ErrorKind.CLIENT_ERROR),
        (418, ErrorKind.CLIENT_ERROR),
        (451, ErrorKind.CLIENT_ERROR),
        (500, ErrorKind.SERVER),
        (503, ErrorKind.SERVER),
        (599, ErrorKind.SERVER),
        (300, ErrorKind.BAD_REDIRECT),
        (302, ErrorKind.BAD_REDIRECT),  # only reaches here without a Location
    ],
)
def test_kind_for_status(status: int, kind: ErrorKind) -> None:
    assert kind_for_status(status) is kind


@pytest.mark.parametrize(
    ("stored", "status", "kind"),
    [
        ("http_4xx", 404, ErrorKind.NOT_FOUND),
        ("http_4xx", 403, ErrorKind.AUTH),
        ("http_4xx", 410, ErrorKind.GONE),
        ("http_4xx", 418, ErrorKind.CLIENT_ERROR),
        ("http_4xx", 302, ErrorKind.CLIENT_ERROR),  # too many redirects was stored as http_4xx too
        ("http_4xx", None, ErrorKind.CLIENT_ERROR),
        ("http_5xx", 503, ErrorKind.SERVER),
        ("parse_error", 200, ErrorKind.PARSE),
        ("timeout", None, ErrorKind.TIMEOUT),
        ("rate_limited", 429, ErrorKind.RATE_LIMITED),
        ("from-a-newer-version", None, None),
    ],
)
def test_stored_kinds_of_earlier_versions_still_load(stored: str, status: int | None, kind: ErrorKind | None) -> None:
    raw = f'{{"last_error_kind": "{stored}", "last_status": {"null" if status is None else status}, "etag": "e"}}'
    state = SourceState.model_validate_json(raw)
    assert state.last_error_kind is kind and state.etag == "e"
    assert SourceState.model_validate_json(state.model_dump_json()) == state
