"""Who is calling: API keys with scopes and a tenant, checked on every request.

A key arrives as ``Authorization: Bearer cvk_...`` (or ``X-API-Key``), or as the dashboard's
``conveyor_key`` cookie (SameSite=Strict, set by the dashboard login page). Scopes:

* ``read``: list and look at the tenant's jobs, tasks and queues, stream events, download artifacts;
* ``submit``: submit and cancel the tenant's jobs;
* ``admin``: everything above for every tenant, plus dead letters, redrive, metrics, dashboard.

Another tenant's job answers 404, exactly like a job that does not exist, so ids leak nothing.
Verified keys are cached for ``CACHE_SECONDS``: a revoke reaches every API process within that.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from fastapi import Request

from conveyor.api.keys import SCOPES, ApiKey, KeyStore, secret_matches, split_token
from conveyor.api.problems import ProblemError
from conveyor.types import DEFAULT_TENANT

CACHE_SECONDS = 5.0
COOKIE = "conveyor_key"


@dataclass(frozen=True)
class Principal:
    tenant: str
    scopes: frozenset[str]
    key_id: str | None = None

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    def allows(self, scope: str) -> bool:
        return self.admin or scope in self.scopes

    def tenant_filter(self) -> str | None:
        """The tenant to restrict reads to; None (every tenant) for admins."""
        return None if self.admin else self.tenant


ANONYMOUS_ADMIN = Principal(DEFAULT_TENANT, frozenset(SCOPES), None)


class Authenticator:
    """Checks tokens against the key store; ``None`` store means auth is off (``--no-auth``)."""

    def __init__(self, store: KeyStore | None) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = asyncio.Lock()

    @property
    def enabled(self) -> bool:
        return self.store is not None

    async def _lookup(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        assert self.store is not None
        record = await self.store.get(key_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key_id] = (now + CACHE_SECONDS, record)
        return record

    async def principal(self, request: Request) -> Principal:
        if self.store is None:
            return ANONYMOUS_ADMIN
        token = _token_of(request)
        if token is None:
            raise ProblemError(
                401,
                "an API key is required: send Authorization: Bearer <key>",
                kind="unauthenticated",
                headers={"WWW-Authenticate": 'Bearer realm="conveyor"'},
            )
        parts = split_token(token)
        record = await self._lookup(parts[0]) if parts else None
        if parts is None or record is None or not record.active or not secret_matches(record, parts[1]):
            raise ProblemError(
                401,
                "the API key is not valid (unknown, malformed or revoked)",
                kind="invalid-key",
                headers={"WWW-Authenticate": 'Bearer realm="conveyor", error="invalid_token"'},
            )
        return Principal(record.tenant, frozenset(record.scopes), record.key_id)


def _token_of(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        return header.strip()  # malformed: let verification reject it as invalid
    return request.headers.get("x-api-key") or request.cookies.get(COOKIE)


def require(principal: Principal, scope: str) -> Principal:
    if not principal.allows(scope):
        raise ProblemError(
            403,
            f"this API key lacks the {scope!r} scope (it has: {', '.join(sorted(principal.scopes)) or 'none'})",
            kind="forbidden",
        )
    return principal
