"""Every problem type the API answers with (RFC 9457): a stable ``type`` URI, status and title.

The docs page lists them (``/api/v1/docs#problems``); handlers raise :class:`ApiProblem`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.errors import TributaryError

TYPE_PREFIX = "urn:tributary:problem:"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    meaning: str

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.slug


PROBLEM_TYPES = {
    p.slug: p
    for p in (
        ProblemType("invalid-parameter", 400, "Invalid parameter", "a query parameter is malformed or unknown; "
                    "`parameter` names it and `errors` lists every one with the reason"),
        ProblemType("invalid-cursor", 400, "Invalid cursor", "the cursor was not issued by this server, was "
                    "altered, or belongs to another query; `parameter` is `cursor`"),
        ProblemType("limit-exceeded", 400, "Limit exceeded", "a documented limit was passed; `parameter` names "
                    "it and `limit` gives the maximum"),
        ProblemType("unauthorized", 401, "Unauthorized", "no valid API key: send `Authorization: Bearer <key>`"),
        ProblemType("forbidden", 403, "Forbidden", "the key may not read this feed"),
        ProblemType("not-found", 404, "Not found", "no such article, feed, source or endpoint (for this key)"),
        ProblemType("method-not-allowed", 405, "Method not allowed", "the API is read-only: GET, HEAD, OPTIONS"),
        ProblemType("cursor-expired", 410, "Cursor expired", "the cursor is older than the change log's retention: "
                    "take a new snapshot (GET /api/v1/articles) and follow its changes_cursor"),
        ProblemType("rate-limited", 429, "Too many requests", "the key's token bucket is empty; wait `Retry-After` "
                    "seconds"),
        ProblemType("internal", 500, "Internal error", "a bug on our side; it was logged"),
        ProblemType("unavailable", 503, "Service unavailable", "the store cannot be reached; try again shortly"),
    )
}  # fmt: skip


class ApiProblem(TributaryError):
    """Raised by the API's handlers; answered as ``application/problem+json``."""

    def __init__(self, slug: str, detail: str, *, headers: dict[str, str] | None = None, **extensions: Any) -> None:
        super().__init__(detail)
        self.type = PROBLEM_TYPES[slug]
        self.detail = detail
        self.headers = headers or {}
        self.extensions = {k: v for k, v in extensions.items() if v is not None}

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type.uri,
            "title": self.type.title,
            "status": self.type.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        return body | self.extensions


def bad_parameter(parameter: str, reason: str) -> ApiProblem:
    return ApiProblem(
        "invalid-parameter",
        f"{parameter}: {reason}",
        parameter=parameter,
        errors=[{"parameter": parameter, "reason": reason}],
    )
