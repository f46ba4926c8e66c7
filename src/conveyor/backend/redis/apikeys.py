"""API keys in Redis: the hash of one key as an ``ApiKeyRecord`` (layout in apikey.lua and
docs/operations-redis.md)."""

from __future__ import annotations

from conveyor import serde
from conveyor.backend.protocol import ApiKeyRecord


def key_from_flat(flat: list[str]) -> ApiKeyRecord:
    """An API key from the flat HGETALL reply of its ``apikey:<id>`` hash."""
    h = dict(zip(flat[0::2], flat[1::2], strict=True))
    revoked = h.get("revoked_at")
    return ApiKeyRecord(
        key_id=h["key_id"],
        name=h["name"],
        tenant=h["tenant"],
        scopes=tuple(serde.loads(h["scopes"])),
        secret_hash=h["secret_hash"],
        created_at=float(h["created_at"]),
        revoked_at=float(revoked) if revoked else None,
    )
