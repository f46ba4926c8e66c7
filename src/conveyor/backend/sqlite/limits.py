"""SQLite's limit-aware claim and the unique-key lookup of its enqueue (conveyor.limits).

SQLite has one writer at a time (``BEGIN IMMEDIATE``), so counting the running jobs of a key
and claiming inside the same transaction can never race another claimer.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from conveyor import serde
from conveyor.backend.limits import BatchCounter, limit_columns
from conveyor.backend.protocol import ClaimRequest, EnqueueRequest
from conveyor.backend.sqlfile import load_queries

SQL = load_queries("conveyor.backend.sqlite")

__all__ = ["claim_within_limits", "find_unique", "limit_columns"]


def claim_within_limits(conn: sqlite3.Connection, req: ClaimRequest, now: float) -> list[Any]:
    """Claim up to ``req.limit`` jobs, none past its concurrency or rate limit (in a transaction).

    Each round reads the best jobs whose keys have room, takes those that still fit once this
    batch's own takes are counted, and claims them; the next round's read then sees them
    running, so a candidate skipped for the batch's sake is filtered out by the SQL itself.
    """
    claimed: list[Any] = []
    queues = serde.dumps(list(req.queues))
    while len(claimed) < req.limit:
        want = req.limit - len(claimed)
        params = {"now": now, "queues": queues, "limit": want}
        candidates = conn.execute(SQL["claim_limited_candidates"], params).fetchall()
        taken = BatchCounter().take_within(candidates)  # earlier rounds' takes are in the counts
        if taken:
            ids = serde.dumps([row["id"] for row in taken])
            args = {"now": now, "ids": ids, "lease_seconds": req.lease_seconds, "worker_id": req.worker_id}
            claimed += conn.execute(SQL["claim_ids"], args).fetchall()
            for row in taken:
                if row["rate_key"] is not None:
                    _record_start(conn, row["rate_key"], row["rate_period"], row["id"], now)
        if (len(taken) == len(candidates) and len(candidates) < want) or not taken:
            break  # nothing more is claimable (every candidate was taken, or none fits)
    return claimed


def _record_start(conn: sqlite3.Connection, key: str, period: float, job_id: str, now: float) -> None:
    conn.execute(SQL["forget_old_rate_starts"], {"key": key, "now": now, "period": period})
    conn.execute(SQL["record_rate_start"], {"key": key, "now": now, "job_id": job_id})


def find_unique(conn: sqlite3.Connection, req: EnqueueRequest) -> Any:
    """The row of the pending or running job of the request's tenant holding its unique key, or None."""
    return conn.execute(SQL["find_unique_active"], {"tenant": req.tenant, "unique_key": req.unique_key}).fetchone()
