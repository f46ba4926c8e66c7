"""Who is calling: API keys with scopes and a tenant, checked on every request.

A key arrives as ``Authorization: Bearer cvk_...`` (or ``X-API-Key``), or as the dashboard's
``conveyor_key`` cookie (SameSite=Strict, set by the dashboard login page). Scopes:

* ``read``: list and look at the tenant's jobs, tasks and queues, stream events, download artifacts;
* ``submit``: submit and cancel the tenant's jobs;
* ``admin``: everything above for every tenant, plus dead letters, redrive, metrics, dashboard.

Another tenant's job answers 404, exactly like a job that does not exist, so ids leak nothing.
The engine of the jobs stores the keys (``Backend.find_key`` looks one up by the hash of the
presented secret). Look-ups are cached for ``CACHE_SECONDS``, keyed by that hash (never the
secret): a revoke reaches every API process within that.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request

from conveyor.api.keys import SCOPES, hash_secret, split_token, token_matches
from conveyor.api.problems import ProblemError
from conveyor.backend.protocol import ApiKeyRecord, Backend
from conveyor.types import DEFAULT_TENANT, INTERNAL_TENANT

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
    """Checks tokens against the engine's keys; ``None`` engine means auth is off (``--no-auth``)."""

    def __init__(self, backend: Callable[[], Awaitable[Backend]] | None) -> None:
        self.backend = backend
        self._cache: dict[str, tuple[float, ApiKeyRecord | None]] = {}

    @property
    def enabled(self) -> bool:
        return self.backend is not None

    async def _lookup(self, secret_hash: str) -> ApiKeyRecord | None:
        now = time.monotonic()
        hit = self._cache.get(secret_hash)
        if hit is not None and hit[0] > now:
            return hit[1]
        assert self.backend is not None
        record = await (await self.backend()).find_key(secret_hash)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[secret_hash] = (now + CACHE_SECONDS, record)
        return record

    async def principal(self, request: Request) -> Principal:
        return await self.check_token(_token_of(request))

    async def check_token(self, token: str | None) -> Principal:
        """The caller a token stands for; a 401 ProblemError when it is missing or not valid."""
        if self.backend is None:
            return ANONYMOUS_ADMIN
        if token is None:
            raise ProblemError(
                401,
                "an API key is required: send Authorization: Bearer <key>",
                kind="unauthenticated",
                headers={"WWW-Authenticate": 'Bearer realm="conveyor"'},
            )
        parts = split_token(token)
        record = await self._lookup(hash_secret(parts[1])) if parts else None
        if (
            parts is None
            or record is None
            or not record.active
            or record.tenant == INTERNAL_TENANT  # stored by hand into the engine: still never valid
            or not token_matches(record, parts[0])
        ):
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
