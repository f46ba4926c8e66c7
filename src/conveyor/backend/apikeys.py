"""Stored API keys as ``ApiKeyRecord``, for every engine.

SQLite and PostgreSQL store a key as a row (``scopes`` a JSON array in a text column); Redis
stores the same fields in a hash (``redis/apikeys.py``), every value a string. One mapping.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor import serde
from conveyor.backend.protocol import ApiKeyRecord, CreateKeyRequest


def key_params(req: CreateKeyRequest, now: float) -> dict[str, Any]:
    """The named parameters of the ``insert_api_key`` query."""
    return {
        "key_id": req.key_id,
        "name": req.name or req.key_id,
        "tenant": req.tenant,
        "scopes": serde.dumps(list(req.scopes)),
        "secret_hash": req.secret_hash,
        "created_at": now,
    }


def row_to_key(row: Mapping[str, Any]) -> ApiKeyRecord:
    """A key row or hash; an empty or NULL ``revoked_at`` means the key is active."""
    revoked = row["revoked_at"]
    return ApiKeyRecord(
        key_id=row["key_id"],
        name=row["name"],
        tenant=row["tenant"],
        scopes=tuple(serde.loads(row["scopes"])),
        secret_hash=row["secret_hash"],
        created_at=float(row["created_at"]),
        revoked_at=None if revoked is None or revoked == "" else float(revoked),
    )
