"""The OpenAPI 3.1 document of ``/api/v1/``, generated from the pydantic models (components and
query parameters) and the route table: nothing here is a hand-kept copy of a schema."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from service.api.problems import PROBLEM_TYPES
from service.api.schemas import DEFAULT_LIMIT, MAX_IDS, MAX_LIMIT, MAX_SCAN, MAX_WAIT_SECONDS, Problem
from service.web.api.routes import OPERATIONS, Operation

VERSION = "1.0.0"
REF = "#/components/schemas/{model}"
PROBLEM_MEDIA = "application/problem+json"
RATE_HEADERS = {
    "RateLimit-Limit": "requests the key's bucket holds",
    "RateLimit-Remaining": "requests left now",
    "RateLimit-Reset": "seconds until the bucket is full",
    "RateLimit-Policy": "the bucket as `limit;w=60`",
}


def _query_parameters(operation: Operation) -> list[dict[str, Any]]:
    schema = operation.query.model_json_schema()
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        prop = dict(prop)
        description = prop.pop("description", "")
        prop.pop("title", None)
        # Optional parameters are absent, not null: keep the non-null branch of `T | None`.
        branches = [b for b in prop.pop("anyOf", []) if b.get("type") != "null"]
        if branches:
            prop = {**branches[0], **prop}
        if prop.get("default") is None:
            prop.pop("default", None)
        parameters.append(
            {"name": name, "in": "query", "required": name in required, "description": description, "schema": prop}
        )
    return parameters


def _responses(operation: Operation) -> dict[str, Any]:
    headers = {name: {"description": text, "schema": {"type": "string"}} for name, text in RATE_HEADERS.items()}
    if operation.conditional:
        headers["ETag"] = {"description": "strong validator of the body", "schema": {"type": "string"}}
    if operation.paged:
        headers["Link"] = {"description": 'the next page, rel="next"', "schema": {"type": "string"}}
    if operation.response is not None:
        content = {operation.media_type: {"schema": {"$ref": REF.format(model=operation.response.__name__)}}}
    else:
        shape = "object" if operation.media_type == "application/json" else "string"
        content = {operation.media_type: {"schema": {"type": shape}}}
    responses: dict[str, Any] = {
        "200": {"description": "OK", "content": content, **({} if operation.public else {"headers": headers})}
    }
    if operation.conditional:
        responses["304"] = {"description": "Not modified (If-None-Match matched the ETag)"}
    for status in (*operation.problems, *(() if operation.public else (500, 503))):
        titles = ", ".join(p.slug for p in PROBLEM_TYPES.values() if p.status == status)
        responses[str(status)] = {
            "description": f"problem: {titles}",
            "content": {PROBLEM_MEDIA: {"schema": {"$ref": REF.format(model="Problem")}}},
        }
    return responses


def _operation(operation: Operation) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "path", "required": True, "description": text, "schema": schema}
        for name, (schema, text) in operation.path_params.items()
    ]
    parameters += [
        {"name": name, "in": "header", "required": False, "description": text, "schema": schema}
        for name, (schema, text) in operation.header_params.items()
    ]
    parameters += _query_parameters(operation)
    if operation.conditional:
        parameters.append(
            {
                "name": "If-None-Match",
                "in": "header",
                "required": False,
                "description": "an ETag of a previous answer: 304 when unchanged",
                "schema": {"type": "string", "maxLength": 200},
            }
        )
    spec: dict[str, Any] = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "parameters": parameters,
        "responses": _responses(operation),
    }
    if operation.description:
        spec["description"] = operation.description
    if operation.public:
        spec["security"] = []
    return spec


def build_document(base_path: str = "/api/v1") -> dict[str, Any]:
    models: set[type[BaseModel]] = {o.response for o in OPERATIONS if o.response is not None} | {Problem}
    _, top = models_json_schema(
        [(m, "serialization") for m in sorted(models, key=lambda m: m.__name__)], ref_template=REF
    )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tributary partner API",
            "version": VERSION,
            "description": (
                f"Versioned JSON for partner sites. Limits (part of v1, never lowered within it): limit <= {MAX_LIMIT} "
                f"(default {DEFAULT_LIMIT}), ids <= {MAX_IDS}, wait <= {MAX_WAIT_SECONDS} s, {MAX_SCAN} index entries "
                "examined per page. Errors are RFC 9457 problem details. Guide: docs/partners.md."
            ),
        },
        "servers": [{"url": base_path}],
        "security": [{"bearer": []}],
        "paths": {o.path: {"get": _operation(o)} for o in OPERATIONS},
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "an API key"}},
        },
    }
