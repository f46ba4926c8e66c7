"""The part of a limit-aware claim the SQL engines share: choosing within one batch.

A candidate row comes with the number of jobs of its concurrency key running now
(``running_for_key``) and of starts of its rate key in the window (``started_in_window``),
both read inside the claim's transaction. Taking several candidates of one key in the same
batch must count the ones already taken, which one SQL statement cannot do; ``take_within``
does it, in claim order, skipping (never stopping at) a candidate whose key is full, so a
held-back job never blocks the ones behind it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from conveyor.backend.protocol import EnqueueRequest


def limit_columns(req: EnqueueRequest) -> dict[str, Any]:
    """The limit columns of a new job row, as query parameters."""
    return {
        "concurrency_key": req.concurrency_key,
        "concurrency_limit": req.concurrency_limit,
        "rate_key": req.rate_key,
        "rate_limit": req.rate_limit,
        "rate_period": req.rate_period,
        "unique_key": req.unique_key,
    }


def has_limits(req: EnqueueRequest) -> bool:
    """Whether the request sets any limit column (a plain bulk insert stores none of them)."""
    return any(v is not None for v in limit_columns(req).values())


class BatchCounter:
    """Slots taken per key by one read of candidates (a claim round)."""

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.started: dict[str, int] = {}

    def take_within(self, candidates: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """The candidates that fit their limits, in the given (claim) order; counts them."""
        taken: list[Mapping[str, Any]] = []
        for row in candidates:
            ckey, rkey = row["concurrency_key"], row["rate_key"]
            if ckey is not None and row["running_for_key"] + self.running.get(ckey, 0) >= row["concurrency_limit"]:
                continue
            if rkey is not None and row["started_in_window"] + self.started.get(rkey, 0) >= row["rate_limit"]:
                continue
            if ckey is not None:
                self.running[ckey] = self.running.get(ckey, 0) + 1
            if rkey is not None:
                self.started[rkey] = self.started.get(rkey, 0) + 1
            taken.append(row)
        return taken
