"""API keys in Redis: the hash of one key as an ``ApiKeyRecord`` (layout in apikey.lua and
docs/operations-redis.md)."""

from __future__ import annotations

from conveyor.backend.apikeys import row_to_key
from conveyor.backend.protocol import ApiKeyRecord


def key_from_flat(flat: list[str]) -> ApiKeyRecord:
    """An API key from the flat HGETALL reply of its ``apikey:<id>`` hash."""
    fields = dict(zip(flat[0::2], flat[1::2], strict=True))
    fields.setdefault("revoked_at", "")  # an active key's hash has no revoked_at field
    return row_to_key(fields)
