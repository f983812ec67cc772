"""The partner API over HTTP against the real app and a real Redis: every endpoint and filter,
the limits, cursors (a tampered one too), keys and scopes, rate limits, ETags, CORS, problems."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from urllib.parse import quote

import pytest
from openapi_spec_validator import validate

from service.store.api_keys import ApiKeys
from service.store.articles import Store
from service.web.app import create_app
from tests.apikit import NOW, T0, ApiClient, api_settings, article

PROBLEM = "urn:tributary:problem:"


@pytest.fixture
async def api(redis, aiohttp_client):  # type: ignore[no-untyped-def]
    """(client with an unscoped key, store, keys) over a store of 3 sources."""
    settings = api_settings(api={"rate_per_minute": 10_000})
    store = Store(redis, settings)
    for n in range(1, 7):
        await store.upsert(article(n, "alpha", tags=("ai",) if n % 2 else ()), NOW)
    for n in range(7, 10):
        await store.upsert(article(n, "beta", language="en-GB"), NOW)
    await store.upsert(article(10, "gamma", title="Sponsored: buy now", language="fr"), NOW)
    keys = ApiKeys(redis)
    _, token = await keys.create("partner", NOW)
    client = await aiohttp_client(create_app(settings, redis=redis))
    return ApiClient(client, token), store, keys


def ids(body: dict) -> list[int]:  # type: ignore[type-arg]
    return [int(item["id"], 16) for item in body["items"]]


async def test_articles_newest_first_with_feeds_and_a_snapshot_position(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    status, body, headers = await client.get("/api/v1/articles")
    assert status == 200
    assert ids(body) == list(range(10, 0, -1))
    assert body["next_cursor"] is None and body["changes_cursor"]
    by_id = {int(i["id"], 16): i for i in body["items"]}
    assert by_id[1]["feeds"] == ["tech"] and by_id[7]["feeds"] == ["news"]
    assert by_id[10]["feeds"] == []  # gamma is in "news" by tag, but the feed's filter drops "sponsored"
    assert headers["ETag"] and headers["RateLimit-Limit"] == "10000"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("feed=tech", [6, 5, 4, 3, 2, 1]),
        ("feed=news", [9, 8, 7]),
        ("source=beta", [9, 8, 7]),
        ("feed=news&source=gamma", []),
        ("tag=ai", [5, 3, 1]),
        ("tag=news", [10, 9, 8, 7]),  # a source's tag counts
        ("q=story%205", [5]),
        ("q=sponsored", [10]),
        ("language=en", [9, 8, 7]),
        ("language=fr", [10]),
        (f"published_after={quote((T0 + timedelta(minutes=8)).isoformat())}", [10, 9]),
        (f"published_before={quote((T0 + timedelta(minutes=3)).isoformat())}", [2, 1]),
        (f"published_after={quote(T0.isoformat())}&published_before={quote((T0 + timedelta(minutes=3)).isoformat())}", [2, 1]),
        (f"ids={4:032x},{2:032x},{99:032x}", [4, 2]),
    ],
)  # fmt: skip
async def test_article_filters(api, query: str, expected: list[int]) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    status, body, _ = await client.get(f"/api/v1/articles?{query}")
    assert status == 200, body
    assert ids(body) == expected


async def test_updated_after_sees_content_updates_only(api) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = api
    later = NOW + timedelta(hours=1)
    await store.upsert(article(3, "alpha", title="Story 3, corrected", tags=("ai",)), later)
    await store.upsert(article(4, "alpha"), later)  # a re-poll: same content, nothing moves
    _, body, _ = await client.get(f"/api/v1/articles?updated_after={quote(NOW.isoformat())}")
    assert ids(body) == [3]


async def test_paging_is_stable_and_bound_to_its_query(api) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = api
    seen: list[int] = []
    status, body, headers = await client.get("/api/v1/articles?limit=3")
    first_position = body["changes_cursor"]
    await store.upsert(article(11, "alpha"), NOW)  # arrives mid-walk: newer than the walk, not in it
    while True:
        seen += ids(body)
        assert body["changes_cursor"] == first_position  # every page of one walk reports the first's
        if body["next_cursor"] is None:
            assert "Link" not in headers
            break
        assert headers["Link"].endswith('rel="next"') and "limit=3" in headers["Link"]
        status, body, headers = await client.get(f"/api/v1/articles?limit=3&cursor={body['next_cursor']}")
        assert status == 200
    assert seen == list(range(10, 0, -1))
    _, page, _ = await client.get("/api/v1/articles?limit=3")
    status, problem, _ = await client.get(f"/api/v1/articles?limit=3&feed=tech&cursor={page['next_cursor']}")
    assert status == 400 and problem["type"] == PROBLEM + "invalid-cursor" and problem["parameter"] == "cursor"


async def test_a_tampered_cursor_is_a_400_naming_cursor(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    _, page, _ = await client.get("/api/v1/articles?limit=2")
    body, _, tag = page["next_cursor"].partition(".")
    payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    forged = base64.urlsafe_b64encode(payload.replace("|", "|9", 1).encode()).rstrip(b"=").decode()
    # The tag's first character changed: its last one carries bits that base64 decoding ignores,
    # so changing the end could leave the tag the same (1 run in 256).
    altered_tag = ("B" if tag[0] == "A" else "A") + tag[1:]
    for cursor in (forged + "." + tag, "garbage", body + "." + altered_tag):
        status, problem, headers = await client.get(f"/api/v1/articles?limit=2&cursor={cursor}")
        assert status == 400 and headers["Content-Type"].startswith("application/problem+json")
        assert problem["type"] == PROBLEM + "invalid-cursor" and problem["parameter"] == "cursor"
    status, problem, _ = await client.get(f"/api/v1/changes?cursor={page['next_cursor']}")
    assert status == 400 and problem["parameter"] == "cursor"  # a listing's cursor is not a log position


@pytest.mark.parametrize(
    ("query", "slug", "parameter"),
    [
        ("limit=501", "limit-exceeded", "limit"),
        ("limit=0", "invalid-parameter", "limit"),
        ("limit=ten", "invalid-parameter", "limit"),
        ("limit=%C2%B2", "invalid-parameter", "limit"),  # "²": a Unicode digit
        ("limit=%D9%A1%D9%A2", "invalid-parameter", "limit"),  # Arabic-Indic "12"
        ("limit=%2B5", "invalid-parameter", "limit"),
        ("limit=1_0", "invalid-parameter", "limit"),
        ("limit=5&limit=6", "invalid-parameter", "limit"),
        ("colour=red", "invalid-parameter", "colour"),
        ("feed=nope", "invalid-parameter", "feed"),
        ("source=nope", "invalid-parameter", "source"),
        ("published_after=yesterday", "invalid-parameter", "published_after"),
        ("published_after=2026-01-01T00:00:00", "invalid-parameter", "published_after"),  # no zone: ambiguous
        ("language=e%20n", "invalid-parameter", "language"),
        (f"ids={1:032x}&tag=ai", "invalid-parameter", "tag"),
        ("ids=xyz", "invalid-parameter", "ids"),
        ("q=" + "x" * 201, "invalid-parameter", "q"),
    ],
)
async def test_bad_parameters_are_named_with_the_reason(api, query: str, slug: str, parameter: str) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    status, problem, headers = await client.get(f"/api/v1/articles?{query}")
    assert status == 400, problem
    assert headers["Content-Type"].startswith("application/problem+json")
    assert problem["type"] == PROBLEM + slug and problem["parameter"] == parameter
    assert problem["status"] == 400 and problem["title"] and parameter in problem["detail"]
    if slug == "limit-exceeded":
        assert problem["limit"] == 500


async def test_ids_up_to_500_and_not_one_more(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    many = ",".join(f"{n:032x}" for n in range(1, 501))
    status, body, _ = await client.get(f"/api/v1/articles?ids={many}")
    assert status == 200 and len(body["items"]) == 10
    status, problem, _ = await client.get(f"/api/v1/articles?ids={many},{501:032x}")
    assert status == 400 and problem["type"] == PROBLEM + "limit-exceeded" and problem["parameter"] == "ids"
    assert problem["limit"] == 500


async def test_one_article_with_provenance_and_revisions(api) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = api
    await store.upsert(article(3, "alpha", title="Story 3 v2", tags=("ai",)), NOW + timedelta(hours=1))
    await store.upsert(article(103, "beta", url="https://alpha.example/3"), NOW)  # beta's copy of it
    status, body, _ = await client.get(f"/api/v1/articles/{3:032x}")
    assert status == 200
    assert body["title"] == "Story 3 v2" and [r["title"] for r in body["revisions"]] == ["Story 3"]
    assert [s["id"] for s in body["sources"]] == ["alpha", "beta"] and body["feeds"] == ["tech", "news"]
    assert (await client.get(f"/api/v1/articles/{77:032x}"))[0] == 404
    status, problem, _ = await client.get("/api/v1/articles/not-an-id")
    assert status == 400 and problem["parameter"] == "id"


async def test_feeds_and_sources(api) -> None:  # type: ignore[no-untyped-def]
    client, _store, _ = api
    _, feeds, _ = await client.get("/api/v1/feeds")
    assert [f["name"] for f in feeds["feeds"]] == ["tech", "news"] and feeds["changes_cursor"]
    _, news, _ = await client.get("/api/v1/feeds/news")
    assert news["sources"] == ["beta", "gamma"] and news["exclude_keywords"] == ["sponsored"]
    assert news["urls"]["json"] == "http://feeds.test/feeds/news.json" and len(news["definition"]) == 16
    assert (await client.get("/api/v1/feeds/nope"))[0] == 404
    _, sources, _ = await client.get("/api/v1/sources")
    assert [(s["id"], s["articles"]) for s in sources["sources"]] == [("alpha", 6), ("beta", 3), ("gamma", 1)]
    _, beta, _ = await client.get("/api/v1/sources/beta")
    assert beta["feeds"] == ["news"] and beta["healthy"] is False and "last_error" not in beta
    assert (await client.get("/api/v1/sources/nope"))[0] == 404


async def test_every_collection_answers_304_to_its_etag(api) -> None:  # type: ignore[no-untyped-def]
    client, store, _ = api
    for path in (
        "/api/v1/articles",
        "/api/v1/feeds",
        "/api/v1/sources",
        "/api/v1/changes",
        f"/api/v1/articles/{1:032x}",
    ):
        status, _, headers = await client.get(path)
        assert status == 200
        status, body, again = await client.get(path, **{"If-None-Match": headers["ETag"]})
        assert status == 304 and body is None and again["ETag"] == headers["ETag"]
    _, _, headers = await client.get("/api/v1/articles")
    await store.upsert(article(12, "alpha"), NOW)
    assert (await client.get("/api/v1/articles", **{"If-None-Match": headers["ETag"]}))[0] == 200


async def test_keys_are_required_and_revocable(api) -> None:  # type: ignore[no-untyped-def]
    client, _, keys = api
    status, problem, headers = await client.get("/api/v1/articles", token="")
    client.token = ""
    status, problem, headers = await client.get("/api/v1/articles")
    assert (
        status == 401
        and problem["type"] == PROBLEM + "unauthorized"
        and headers["WWW-Authenticate"].startswith("Bearer")
    )
    status, problem, headers = await client.get("/api/v1/articles", token="trib_not-a-key")
    assert status == 401 and "invalid_token" in headers["WWW-Authenticate"]
    _, token = await keys.create("short-lived", NOW)
    assert (await client.get("/api/v1/feeds", token=token))[0] == 200
    assert await keys.revoke("short-lived")
    assert (await client.get("/api/v1/feeds", token=token))[0] == 401
    stored = json.dumps([k.model_dump(mode="json") for k in await keys.all()])
    assert token not in stored  # only the hash is kept
    assert (await client.get("/api/v1/openapi.json"))[0] == 200  # public
    assert (await client.get("/api/v1/docs"))[0] == 200


async def test_a_scoped_key_sees_only_its_feeds(api) -> None:  # type: ignore[no-untyped-def]
    client, _store, keys = api
    _, token = await keys.create("tech-only", NOW, feeds=["tech"])
    status, body, _ = await client.get("/api/v1/articles", token=token)
    assert ids(body) == [6, 5, 4, 3, 2, 1]
    status, problem, _ = await client.get("/api/v1/articles?feed=news", token=token)
    assert status == 403 and problem["type"] == PROBLEM + "forbidden" and problem["parameter"] == "feed"
    assert (await client.get(f"/api/v1/articles/{7:032x}", token=token))[0] == 404
    assert (await client.get(f"/api/v1/articles/{1:032x}", token=token))[0] == 200
    _, body, _ = await client.get(f"/api/v1/articles?ids={1:032x},{7:032x}", token=token)
    assert ids(body) == [1]
    _, feeds, _ = await client.get("/api/v1/feeds", token=token)
    assert [f["name"] for f in feeds["feeds"]] == ["tech"]
    assert (await client.get("/api/v1/feeds/news", token=token))[0] == 404
    _, sources, _ = await client.get("/api/v1/sources", token=token)
    assert [s["id"] for s in sources["sources"]] == ["alpha"]
    _, changes, _ = await client.get("/api/v1/changes?limit=500", token=token)
    assert {int(c["id"], 16) for c in changes["changes"]} == {1, 2, 3, 4, 5, 6}


async def test_rate_limit_answers_429_with_retry_after(api) -> None:  # type: ignore[no-untyped-def]
    client, _, keys = api
    _, token = await keys.create("slow", NOW, rate_per_minute=2)
    first = await client.get("/api/v1/feeds", token=token)
    second = await client.get("/api/v1/feeds", token=token)
    assert [first[0], second[0]] == [200, 200]
    assert [first[2]["RateLimit-Remaining"], second[2]["RateLimit-Remaining"]] == ["1", "0"]
    assert first[2]["RateLimit-Policy"] == "2;w=60"
    status, problem, headers = await client.get("/api/v1/feeds", token=token)
    assert status == 429 and problem["type"] == PROBLEM + "rate-limited"
    assert 1 <= int(headers["Retry-After"]) <= 30 and headers["RateLimit-Remaining"] == "0"
    assert (await client.get("/api/v1/feeds"))[0] == 200  # another key has its own bucket


async def test_cors_follows_each_keys_origins(api) -> None:  # type: ignore[no-untyped-def]
    client, _, keys = api
    _, token = await keys.create("site", NOW, origins=["https://partner.example"])
    response = await client.client.options(
        "/api/v1/articles",
        headers={"Origin": "https://partner.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "authorization"},
    )  # fmt: skip
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example"
    assert "Authorization" in response.headers["Access-Control-Allow-Headers"]
    response = await client.client.options(
        "/api/v1/articles", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert "Access-Control-Allow-Origin" not in response.headers
    _, _, headers = await client.get("/api/v1/feeds", token=token, Origin="https://partner.example")
    assert (
        headers["Access-Control-Allow-Origin"] == "https://partner.example"
        and "ETag" in headers["Access-Control-Expose-Headers"]
    )
    _, _, headers = await client.get("/api/v1/feeds", token=token, Origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in headers
    _, _, headers = await client.get("/api/v1/feeds", Origin="https://partner.example")  # a key without origins
    assert "Access-Control-Allow-Origin" not in headers


async def test_public_json_feed_cors_is_configurable(redis, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    plain = await aiohttp_client(create_app(api_settings(), redis=redis))
    response = await plain.get("/feeds/tech.json", headers={"Origin": "https://a.example"})
    assert response.status == 200 and "Access-Control-Allow-Origin" not in response.headers
    for allowed, expected in ((["*"], "*"), (["https://a.example"], "https://a.example")):
        client = await aiohttp_client(create_app(api_settings(api={"public_feed_cors": allowed}), redis=redis))
        response = await client.get("/feeds/tech.json", headers={"Origin": "https://a.example"})
        assert response.headers["Access-Control-Allow-Origin"] == expected
        response = await client.get("/feeds/tech.atom", headers={"Origin": "https://a.example"})
        assert "Access-Control-Allow-Origin" not in response.headers  # the JSON Feed only
    client = await aiohttp_client(
        create_app(api_settings(api={"public_feed_cors": ["https://a.example"]}), redis=redis)
    )
    response = await client.get("/feeds/tech.json", headers={"Origin": "https://b.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_unknown_paths_and_methods_are_problems_too(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    status, problem, _ = await client.get("/api/v1/nothing-here")
    assert status == 404 and problem["type"] == PROBLEM + "not-found"
    response = await client.client.post("/api/v1/articles", headers={"Authorization": f"Bearer {client.token}"})
    problem = await response.json(content_type=None)
    assert response.status == 405 and problem["type"] == PROBLEM + "method-not-allowed"
    assert response.content_type == "application/problem+json"


async def test_openapi_document_is_valid_31_and_generated_from_the_models(api) -> None:  # type: ignore[no-untyped-def]
    client, _, _ = api
    status, document, _ = await client.get("/api/v1/openapi.json", token="")
    assert status == 200 and document["openapi"] == "3.1.0"
    validate(document)  # raises on anything that is not valid OpenAPI 3.1
    from service.api.schemas import ArticlePage, ChangeRecord

    schemas = document["components"]["schemas"]
    assert set(ArticlePage.model_json_schema(mode="serialization")["properties"]) == set(
        schemas["ArticlePage"]["properties"]
    )
    assert set(ChangeRecord.model_fields) == set(schemas["ChangeRecord"]["properties"])
    limit = next(p for p in document["paths"]["/articles"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == 500
    response = await client.client.get("/api/v1/docs")
    page = await response.text()
    assert response.content_type == "text/html" and "/api/v1/changes" in page and "cursor-expired" in page
    assert "<script" not in page and "http" not in page.split("<body>")[0].replace("http-equiv", "")
