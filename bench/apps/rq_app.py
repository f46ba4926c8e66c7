"""RQ's benchmark functions (RQ imports jobs by dotted path, so these are plain module functions)."""

from __future__ import annotations

from bench.apps import record


def noop() -> None:
    record.done()


def probe(stamp: float) -> None:
    record.pickup(stamp)
