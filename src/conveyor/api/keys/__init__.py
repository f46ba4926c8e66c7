"""API keys: generated once, stored hashed next to the jobs, checked on every request.

A key looks like ``cvk_<key id>_<secret>``. The key id is public (it names the key in
``conveyor keys ls`` and in logs); the secret is 32 random bytes and only its SHA-256 is stored,
so a stolen database does not yield usable keys. A fast hash is right here: the secret has
256 bits of entropy, so there is nothing to brute-force (unlike a password).

The store lives in the same engine as the jobs (a table in SQLite/PostgreSQL, a hash in
Redis), so every API process on every machine sees the same keys and a revoke reaches all of
them (within the verifier's cache window). See docs/decisions/0001-api-keys.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

from conveyor.errors import ConfigError

SCOPES = ("submit", "read", "admin")
PREFIX = "cvk"


@dataclass(frozen=True)
class ApiKey:
    """What is stored about a key (never the secret itself)."""

    key_id: str
    name: str
    tenant: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: float
    revoked_at: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class KeyStore(Protocol):
    async def create(self, key: ApiKey) -> None: ...

    async def get(self, key_id: str) -> ApiKey | None: ...

    async def list(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: str, at: float) -> bool:
        """Mark the key revoked; False if it does not exist or was already revoked."""
        ...

    async def close(self) -> None: ...


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
    return tuple(dict.fromkeys(scopes))


def new_key(name: str, tenant: str, scopes: list[str] | tuple[str, ...]) -> tuple[ApiKey, str]:
    """A fresh key record and the full token to hand to the user (shown once)."""
    if not tenant or len(tenant) > 200:
        raise ConfigError("tenant must be a non-empty name of at most 200 characters")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(key_id, name or key_id, tenant, check_scopes(scopes), hash_secret(secret), time.time())
    return record, f"{PREFIX}_{key_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def secret_matches(record: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(record.secret_hash, hash_secret(secret))


def create_key_store(url: str) -> KeyStore:
    """The key store of the engine at ``url`` (the same URL the jobs use)."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from conveyor.api.keys.sqlite import SQLiteKeyStore

        return SQLiteKeyStore(url)
    if scheme in ("postgresql", "postgres"):
        from conveyor.api.keys.postgres import PostgresKeyStore

        return PostgresKeyStore(url)
    if scheme in ("redis", "rediss"):
        from conveyor.api.keys.redis import RedisKeyStore

        return RedisKeyStore(url)
    raise ConfigError(f"no API key store for URL scheme {scheme!r}")
