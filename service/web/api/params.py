"""Query strings into the pydantic query models, or a 400 naming every parameter at fault.

A parameter given twice, an unknown one, or a value past its documented size is refused, never
silently cut or ignored; ``limit`` past its maximum is the ``limit-exceeded`` problem.
"""

from __future__ import annotations

from typing import TypeVar

from aiohttp import web
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from service.api.problems import ApiProblem
from service.api.schemas import MAX_IDS, MAX_LIMIT, Query

Q = TypeVar("Q", bound=Query)


def parse(request: web.Request, model: type[Q]) -> Q:
    values: dict[str, str] = {}
    errors: list[dict[str, str]] = []
    for name, value in request.query.items():
        if name in values:
            errors.append({"parameter": name, "reason": "given more than once"})
        values[name] = value
    ids = values.get("ids", "")
    if ids.count(",") >= MAX_IDS:
        raise ApiProblem("limit-exceeded", f"ids: at most {MAX_IDS} ids per request", parameter="ids", limit=MAX_IDS)
    if not errors:
        try:
            return model.model_validate(values)
        except ValidationError as exc:
            errors = [_reason(error) for error in exc.errors()]
    first = errors[0]
    if first["parameter"] == "limit" and first.get("type") == "less_than_equal":
        raise ApiProblem("limit-exceeded", f"limit: at most {MAX_LIMIT} per page", parameter="limit", limit=MAX_LIMIT)
    for error in errors:
        error.pop("type", None)
    detail = "; ".join(f"{e['parameter']}: {e['reason']}" for e in errors)
    raise ApiProblem("invalid-parameter", detail, parameter=first["parameter"], errors=errors)


def _reason(error: ErrorDetails) -> dict[str, str]:
    parameter = str(error["loc"][0]) if error["loc"] else "?"
    kind = error["type"]
    reason = "unknown parameter" if kind == "extra_forbidden" else error["msg"]
    return {"parameter": parameter, "reason": reason, "type": kind}
