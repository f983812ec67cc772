"""Partner API keys: created by the operator (``tributary keys``), stored hashed, sent as Bearer.

Layout (names in :mod:`service.keys`): ``api:keys`` hash name -> :class:`ApiKey` JSON;
``api:key-tokens`` hash sha256(token) -> name. A token is 32 random bytes, so a plain SHA-256
is enough to make a stolen database useless (no password stretching is needed for it).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from redis.asyncio import Redis

from service import keys
from service.config import ORIGIN, SLUG
from service.errors import TributaryError
from service.models import UtcDatetime

TOKEN_PREFIX = "trib_"  # noqa: S105 (a marker that makes leaked tokens greppable, not a secret)


class ApiKeyError(TributaryError):
    """A key cannot be created or found as asked; the message says why."""


class ApiKey(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=SLUG, max_length=64)
    token_hash: str
    feeds: tuple[str, ...] = ()
    """The merged feeds the key may read; empty: every article."""
    rate_per_minute: int | None = Field(None, ge=1)
    """Its own rate; None: ``[api] rate_per_minute``."""
    origins: tuple[str, ...] = ()
    """Browser origins allowed to use the key (CORS); ``*`` for any."""
    created: UtcDatetime

    def allows_origin(self, origin: str) -> bool:
        return "*" in self.origins or origin in self.origins


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiKeys:
    def __init__(self, redis: Redis):
        self.redis = redis

    async def create(
        self,
        name: str,
        created: UtcDatetime,
        *,
        feeds: Sequence[str] = (),
        rate_per_minute: int | None = None,
        origins: Sequence[str] = (),
    ) -> tuple[ApiKey, str]:
        """A new key and its token (shown once: only its hash is kept)."""
        for origin in origins:
            if origin != "*" and not re.fullmatch(ORIGIN, origin):
                raise ApiKeyError(f"not an origin (scheme://host[:port]): {origin!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            key = ApiKey(
                name=name,
                token_hash=token_hash(token),
                feeds=tuple(feeds),
                rate_per_minute=rate_per_minute,
                origins=tuple(origins),
                created=created,
            )
        except ValueError as exc:
            raise ApiKeyError(f"invalid key {name!r}: {exc}") from exc
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(keys.API_KEYS, name, key.model_dump_json())
            pipe.hset(keys.API_KEY_TOKENS, key.token_hash, name)
            created_new, _ = await pipe.execute()
        if not created_new:
            await self.redis.hdel(keys.API_KEY_TOKENS, key.token_hash)
            raise ApiKeyError(f"a key named {name!r} exists already (revoke it first)")
        return key, token

    async def all(self) -> list[ApiKey]:
        raws = await self.redis.hgetall(keys.API_KEYS)
        return sorted((ApiKey.model_validate_json(raw) for raw in raws.values()), key=lambda k: k.name)

    async def get(self, name: str) -> ApiKey | None:
        raw = await self.redis.hget(keys.API_KEYS, name)
        return ApiKey.model_validate_json(raw) if raw else None

    async def revoke(self, name: str) -> bool:
        key = await self.get(name)
        if key is None:
            return False
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.API_KEYS, name)
            pipe.hdel(keys.API_KEY_TOKENS, key.token_hash)
            await pipe.execute()
        return True

    async def authenticate(self, token: str) -> ApiKey | None:
        """The key a Bearer token belongs to, if any (compared by hash: no timing oracle on tokens)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        name = await self.redis.hget(keys.API_KEY_TOKENS, token_hash(token))
        return await self.get(name.decode()) if name else None


async def cursor_secret(redis: Redis, configured: str | None) -> bytes:
    """``[api] cursor_secret``, else the random one kept in Redis (made by whoever asks first)."""
    if configured:
        return configured.encode()
    await redis.set(keys.API_CURSOR_SECRET, secrets.token_hex(32), nx=True)
    return bytes(await redis.get(keys.API_CURSOR_SECRET))
