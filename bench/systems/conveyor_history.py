"""Fill Conveyor's PostgreSQL job table with finished jobs, for the drain-with-history benchmark.

Why: a queue table that keeps finished jobs can slow the claim path as it grows (bloated or
unselective indexes). Conveyor's claim index is partial (queued jobs only), so 1,000,000
succeeded jobs should not change the drain rate; this measures that claim instead of assuming it.
"""

from __future__ import annotations

from typing import Any

from bench.systems.base import psql
from conveyor.backend.sqlfile import load_queries

SQL = load_queries("bench.systems", "conveyor_history.sql")


def add_history(app: Any, engine: str, url: str, n: int) -> None:
    if engine != "postgres":
        raise ValueError("the history benchmark is for the PostgreSQL engine")
    psql(url, SQL["add_history"].replace(":n", str(int(n))))
    psql(url, SQL["analyze"])
    found = int(psql(url, SQL["count_finished"]).strip())
    if found < n:
        raise RuntimeError(f"history has {found} finished jobs, wanted {n}")
