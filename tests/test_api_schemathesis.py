"""Schemathesis against /api/v1/openapi.json, inside the suite: requests generated from the
document hit the real app on a real Redis; no server error, no status, content type or body
that the document does not allow. Bounded: ``MAX_EXAMPLES`` per operation, derandomised."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import hypothesis
import pytest
import schemathesis
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from service.store.api_keys import ApiKeys
from service.store.articles import Store
from service.web.app import create_app
from tests.apikit import NOW, api_settings, article

MAX_EXAMPLES = 40
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
# An event stream never ends by itself; its handshake and errors are tested in test_changelog.py.
SKIPPED = {"/stream"}


def fuzz(document: dict[str, Any], base_url: str, token: str) -> list[str]:
    schema = schemathesis.openapi.from_dict(document)
    tested = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue

        @hypothesis.settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
            phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        )
        @hypothesis.given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)

        check()
        tested.append(operation.path)
    return tested


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(redis, aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    settings = api_settings(api={"rate_per_minute": 100_000})
    store = Store(redis, settings)
    # Every feed has records, so a generated /changes?wait= never has to wait.
    for n, source in enumerate(["alpha", "beta", "gamma", "alpha", "beta"], start=1):
        await store.upsert(article(n, source, language="en"), NOW)
    await store.remove_article(f"{5:032x}", NOW)
    _, token = await ApiKeys(redis).create("fuzz", NOW)
    server = await aiohttp_server(create_app(settings, redis=redis))
    base_url = f"http://127.0.0.1:{server.port}/api/v1"
    async with aiohttp.ClientSession() as session, session.get(f"{base_url}/openapi.json") as response:
        document = json.loads(await response.read())
    tested = await asyncio.to_thread(fuzz, document, base_url, token)
    assert set(tested) == set(document["paths"]) - SKIPPED


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
