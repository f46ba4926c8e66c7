"""API keys in a Redis hash next to the jobs' keys (same ``?prefix=``)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from conveyor import serde
from conveyor.api.keys import ApiKey
from conveyor.errors import BackendUnavailable


class RedisKeyStore:
    """One hash ``<prefix>:api_keys`` mapping key id to the JSON record."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["conveyor"])[-1]
        self.hash = f"{prefix}:api_keys"
        self.url = urlunsplit(parts._replace(query=""))
        self._client: aioredis.Redis | None = None

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(self.url)
        return self._client

    async def _call(self, method: str, *args: Any) -> Any:
        try:
            return await getattr(self._redis(), method)(*args)
        except RedisError as exc:
            raise BackendUnavailable(f"Redis error: {exc}") from exc

    @staticmethod
    def _decode(raw: bytes | str) -> ApiKey:
        data = serde.loads(raw)
        data["scopes"] = tuple(data["scopes"])
        return ApiKey(**data)

    @staticmethod
    def _encode(key: ApiKey) -> str:
        return serde.dumps(
            {
                "key_id": key.key_id,
                "name": key.name,
                "tenant": key.tenant,
                "scopes": list(key.scopes),
                "secret_hash": key.secret_hash,
                "created_at": key.created_at,
                "revoked_at": key.revoked_at,
            }
        )

    async def create(self, key: ApiKey) -> None:
        await self._call("hset", self.hash, key.key_id, self._encode(key))

    async def get(self, key_id: str) -> ApiKey | None:
        raw = await self._call("hget", self.hash, key_id)
        return None if raw is None else self._decode(raw)

    async def list(self) -> list[ApiKey]:
        raw = await self._call("hgetall", self.hash)
        return sorted((self._decode(v) for v in raw.values()), key=lambda k: (k.created_at, k.key_id))

    async def revoke(self, key_id: str, at: float) -> bool:
        # read-modify-write is fine: revocation only ever sets revoked_at once and never clears it
        key = await self.get(key_id)
        if key is None or key.revoked_at is not None:
            return False
        revoked = ApiKey(key.key_id, key.name, key.tenant, key.scopes, key.secret_hash, key.created_at, at)
        await self._call("hset", self.hash, key_id, self._encode(revoked))
        return True

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
