"""Registered worker nodes as ``WorkerRecord``, for every engine.

SQLite and PostgreSQL store a node as a row (``info`` JSON text); Redis stores the same fields
as one JSON value per node in a hash. One mapping from either to the record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor import serde
from conveyor.backend.protocol import WorkerRecord


def row_to_worker(row: Mapping[str, Any]) -> WorkerRecord:
    """A row of ``list_workers`` (worker_id, info JSON, started_at, last_seen, silent_for)."""
    return WorkerRecord(
        worker_id=str(row["worker_id"]),
        info=serde.loads(row["info"]) if isinstance(row["info"], str | bytes) else dict(row["info"]),
        started_at=float(row["started_at"]),
        last_seen=float(row["last_seen"]),
        silent_for=max(0.0, float(row["silent_for"])),
    )
