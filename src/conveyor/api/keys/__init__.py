"""API keys: generated once, stored hashed by the jobs' engine, checked on every request.

A key looks like ``cvk_<key id>_<secret>``. The key id is public (it names the key in
``conveyor keys ls`` and in logs); the secret is 32 random bytes and only its SHA-256 is stored,
so a stolen database does not yield usable keys. A fast hash is right here: the secret has
256 bits of entropy, so there is nothing to brute-force (unlike a password).

The engine of the jobs stores the keys (``Backend.create_key`` / ``find_key`` / ``list_keys`` /
``revoke_key``, through its own settings and migrations), so every API process on every machine
sees the same keys and a revoke reaches all of them (within the verifier's cache window).
See docs/decisions/0001-api-keys.md.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from conveyor.backend.protocol import ApiKeyRecord, CreateKeyRequest
from conveyor.errors import ConfigError
from conveyor.types import INTERNAL_TENANT

SCOPES = ("submit", "read", "admin", "scale")
"""``scale``: only the scaling signal (/v1/scaling), for an autoscaler that must not read jobs."""
PREFIX = "cvk"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    bad = [s for s in scopes if s not in SCOPES]
    if bad or not scopes:
        raise ConfigError(f"scopes must be some of {', '.join(SCOPES)} (got {', '.join(scopes) or 'none'})")
    return tuple(dict.fromkeys(scopes))


def new_key(name: str, tenant: str, scopes: list[str] | tuple[str, ...]) -> tuple[CreateKeyRequest, str]:
    """The engine request that stores a fresh key, and the full token to hand to the user (shown once)."""
    if not tenant or len(tenant) > 200:
        raise ConfigError("tenant must be a non-empty name of at most 200 characters")
    if tenant == INTERNAL_TENANT:
        raise ConfigError(f"tenant {INTERNAL_TENANT!r} is reserved for Conveyor's own jobs; no key may have it")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    request = CreateKeyRequest(key_id, hash_secret(secret), tenant, check_scopes(scopes), name or key_id)
    return request, f"{PREFIX}_{key_id}_{secret}"


def split_token(token: str) -> tuple[str, str] | None:
    """``(key id, secret)`` of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def token_matches(record: ApiKeyRecord, key_id: str) -> bool:
    """The record found by the secret's hash belongs to the key id the token names."""
    return hmac.compare_digest(record.key_id.encode(), key_id.encode())
