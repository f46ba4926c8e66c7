"""PostgreSQL's limit-aware claim (conveyor.limits), run inside the claim's transaction.

Two claimers in READ COMMITTED could both count N-1 running jobs of a key and both claim one.
So the count that decides is taken under a transaction-scoped advisory lock per key (one per
concurrency key, one per rate key): the holder counts, claims and commits before the next
claimer of that key counts, and that claimer's fresh statement sees the commit. Candidates
come row-locked with SKIP LOCKED, so claimers never wait on each other's rows; jobs without
limits take no key lock at all.

The rate window is counted as "starts with ``at > now - period``" with no upper bound, so the
transaction's own ``now`` (its start time) may be a little old: any two starts closer than the
period are seen by whichever of the two claimed second, hence no window of the period ever
holds more than the limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from conveyor.backend.limits import BatchCounter
from conveyor.backend.postgres.rows import Row
from conveyor.backend.protocol import ClaimRequest

MAX_ROUNDS = 8
"""Reads of candidates per claim: each round claims at least one job or ends the claim."""


async def _rows(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)
        return await cur.fetchall()


def _lock_names(candidates: list[Row]) -> set[str]:
    names = {f"c:{r['concurrency_key']}" for r in candidates if r["concurrency_key"] is not None}
    return names | {f"r:{r['rate_key']}" for r in candidates if r["rate_key"] is not None}


async def claim_within_limits(
    conn: AsyncConnection[Any], sql: Mapping[str, str], req: ClaimRequest, offset: float
) -> list[Row]:
    """Claim up to ``req.limit`` jobs of ``req.queues``, none past its concurrency or rate limit."""
    claimed: list[Row] = []
    skip: list[str] = []
    held: set[str] = set()
    queues = list(dict.fromkeys(req.queues))
    for round_ in range(MAX_ROUNDS):
        want = req.limit - len(claimed)
        params = {"off": offset, "queues": queues, "skip": skip, "limit": want}
        candidates = await _rows(conn, sql["claim_limited_candidates"], params)
        if not candidates:
            break
        needed = sorted(_lock_names(candidates) - held)
        if needed and round_ == 0:
            await _rows(conn, sql["lock_limit_keys"], {"keys": needed})
            held.update(needed)
        elif needed:
            held.update(r["key"] for r in await _rows(conn, sql["try_lock_limit_keys"], {"keys": needed}))
        fits = [r for r in candidates if _lock_names([r]) <= held]
        taken = BatchCounter().take_within(await _fresh_counts(conn, sql, fits, offset))
        taken_ids = {r["id"] for r in taken}
        skip += [r["id"] for r in candidates if r["id"] not in taken_ids]
        if taken:
            claimed += await _claim(conn, sql, req, offset, taken)
        if (len(candidates) < want and len(taken) == len(candidates)) or len(claimed) >= req.limit:
            break
    return claimed


async def _fresh_counts(
    conn: AsyncConnection[Any], sql: Mapping[str, str], candidates: list[Row], offset: float
) -> list[dict[str, Any]]:
    """The candidates with their keys' running jobs and window starts counted now (under lock)."""
    ckeys = sorted({r["concurrency_key"] for r in candidates if r["concurrency_key"] is not None})
    rkeys = sorted({r["rate_key"] for r in candidates if r["rate_key"] is not None})
    running: dict[str, int] = {}
    if ckeys:
        running = {r["key"]: r["n"] for r in await _rows(conn, sql["running_per_key"], {"keys": ckeys})}
    ages: dict[str, list[float]] = {}
    if rkeys:
        period = max(r["rate_period"] for r in candidates if r["rate_key"] is not None)
        for r in await _rows(conn, sql["recent_starts"], {"keys": rkeys, "off": offset, "period": period}):
            ages.setdefault(r["key"], []).append(r["age"])
    out = []
    for r in candidates:
        started = 0
        if r["rate_key"] is not None:
            started = sum(1 for age in ages.get(r["rate_key"], ()) if age < r["rate_period"])
        out.append({**r, "running_for_key": running.get(r["concurrency_key"], 0), "started_in_window": started})
    return out


async def _claim(
    conn: AsyncConnection[Any], sql: Mapping[str, str], req: ClaimRequest, offset: float, taken: list[Mapping[str, Any]]
) -> list[Row]:
    params = {"off": offset, "lease": req.lease_seconds, "worker_id": req.worker_id, "ids": [r["id"] for r in taken]}
    rows = await _rows(conn, sql["claim_ids"], params)
    started = [r for r in taken if r["rate_key"] is not None]
    if started:
        await conn.execute(
            sql["record_rate_starts"],
            {
                "off": offset,
                "keys": [r["rate_key"] for r in started],
                "periods": [r["rate_period"] for r in started],
                "ids": [r["id"] for r in started],
            },
        )
    return rows
