"""Limits on submitted JSON values that every engine can store exactly.

JSON allows what the engines cannot keep: integers beyond signed 64 bits (orjson refuses them),
``NaN``/``Infinity`` (not JSON at all; they would be stored as ``null``) and nesting deeper
than the serialiser's recursion limit. A submit carrying any of them is the client's error, a
422 naming the field, never a 5xx (which a client would retry) or a silent change.
"""

from __future__ import annotations

import math
from typing import Any

MAX_DEPTH = 64
"""Deepest nesting of objects and arrays in a job's arguments (orjson's own limit is 255)."""
INT_MIN = -(2**63)
INT_MAX = 2**63 - 1


def unstorable_value(value: Any, path: str) -> tuple[str, str] | None:
    """The first value under ``value`` no engine stores exactly, as (field, reason); else None.

    Iterative, so a deeply nested document cannot exhaust the interpreter's stack here.
    """
    stack: list[tuple[Any, str, int]] = [(value, path, 0)]
    while stack:
        item, where, depth = stack.pop()
        if isinstance(item, bool) or item is None or isinstance(item, str):
            continue
        if isinstance(item, int):
            if not INT_MIN <= item <= INT_MAX:
                return where, "is an integer outside the signed 64-bit range"
        elif isinstance(item, float):
            if not math.isfinite(item):
                return where, "is NaN or infinite, which JSON cannot hold"
        elif isinstance(item, dict | list):
            if depth >= MAX_DEPTH:
                return where, f"is nested deeper than {MAX_DEPTH} levels"
            pairs = item.items() if isinstance(item, dict) else enumerate(item)
            stack.extend((child, f"{where}.{key}", depth + 1) for key, child in reversed(list(pairs)))
    return None
