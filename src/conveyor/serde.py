"""JSON encoding for everything Conveyor stores or sends. JSON only, never pickle."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson


def dumps(value: Any) -> str:
    """Encode to compact JSON text; raises TypeError for values JSON cannot hold."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError as exc:
        raise TypeError(f"value is not JSON-serialisable: {exc}") from None


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    return orjson.loads(text)


def payload_hash(task: str, args: dict[str, Any]) -> str:
    """A stable digest of what was submitted, to tell an idempotent replay from a conflict."""
    canonical = orjson.dumps({"task": task, "args": args}, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).hexdigest()
