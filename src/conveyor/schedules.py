"""Periodic jobs: when a schedule's ticks fall, and the idempotency key that makes each tick one job.

A ``Schedule`` is a 5-field cron expression in a time zone (``croniter`` computes the ticks,
DST included) or a fixed interval in seconds (ticks at whole multiples of it since the Unix
epoch, so every node computes the same ticks). Every worker node enqueues each tick it sees
with the idempotency key ``schedule:<name>:<tick>``; the engine's idempotent enqueue turns
any number of nodes (and restarts) into exactly one job per tick. ``worker/scheduler.py`` runs
it; here is only the arithmetic, with no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from conveyor.errors import ConfigError

DEFAULT_GRACE = 60.0
"""A node starting up enqueues a tick it finds missed only if it is at most this late."""
KEY_PREFIX = "schedule:"


@dataclass(frozen=True)
class Schedule:
    """Run ``task`` with ``args`` at every tick of ``cron`` (in ``tz``) or ``every`` seconds.

    ``grace``: how late a missed tick (all nodes down when it fell) may be and still run when a
    node comes back; default ``min(period, 60 s)``, so downtime never ends in a burst of
    missed runs. ``catch_up=True`` instead enqueues every tick missed since the schedule's last
    enqueued tick (found among the task's newest jobs), at most the idempotency retention
    window (24 h by default) back, once each; a schedule never run before has nothing to catch up.
    """

    name: str
    task: str
    cron: str | None = None
    every: float | None = None
    tz: str = "UTC"
    args: dict[str, Any] = field(default_factory=dict)
    catch_up: bool = False
    grace: float | None = None

    def __post_init__(self) -> None:
        where = f"schedule {self.name!r}"
        if not self.name or ":" in self.name:
            raise ConfigError(f"{where}: a schedule name must be non-empty and contain no ':'")
        if (self.cron is None) == (self.every is None):
            raise ConfigError(f"{where}: give exactly one of cron= (5 fields) or every= (seconds)")
        if self.every is not None and not self.every > 0:
            raise ConfigError(f"{where}: every= must be a positive number of seconds, got {self.every!r}")
        if self.cron is not None:
            if len(self.cron.split()) != 5:
                raise ConfigError(
                    f"{where}: cron must have 5 fields (minute hour day-of-month month day-of-week), "
                    f"got {self.cron!r}; use every= for intervals in seconds"
                )
            if not croniter.is_valid(self.cron):
                raise ConfigError(f"{where}: invalid cron expression {self.cron!r}")
        try:
            ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"{where}: unknown time zone {self.tz!r} (an IANA name like Europe/Paris)") from None
        if self.grace is not None and self.grace < 0:
            raise ConfigError(f"{where}: grace must not be negative")

    @property
    def spec(self) -> str:
        """How the schedule reads in listings: the cron text with its zone, or ``every 5s``."""
        return f"{self.cron} ({self.tz})" if self.cron is not None else f"every {self.every:g}s"

    def next_after(self, t: float) -> float:
        """The first tick strictly after epoch second ``t``."""
        if self.every is not None:
            return (math.floor(t / self.every) + 1) * self.every
        assert self.cron is not None
        start = datetime.fromtimestamp(t, ZoneInfo(self.tz))
        return float(croniter(self.cron, start).get_next(float))

    def ticks(self, after: float, until: float, limit: int = 100_000) -> list[float]:
        """Ticks in ``(after, until]``, oldest first (at most ``limit``, the newest kept)."""
        out: list[float] = []
        t = self.next_after(after)
        while t <= until:
            out.append(t)
            t = self.next_after(t)
        return out[-limit:]

    def period(self, around: float) -> float:
        """Seconds between the two ticks after ``around`` (the interval, or the cron's local gap)."""
        first = self.next_after(around)
        return self.next_after(first) - first

    def lookback(self, now: float) -> float:
        """How far back a node that just started looks for a missed tick (see the class docstring;
        ``catch_up`` looks further, from the last tick found in the engine)."""
        if self.grace is not None:
            return self.grace
        return min(self.period(now), DEFAULT_GRACE)

    def key(self, tick: float) -> str:
        """The idempotency key of one tick: the same on every node, so a tick is one job."""
        stamp = datetime.fromtimestamp(tick, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{KEY_PREFIX}{self.name}:{stamp}"

    def to_dict(self, now: float) -> dict[str, Any]:
        """What ``conveyor schedules`` and ``/v1/schedules`` show."""
        return {
            "name": self.name,
            "task": self.task,
            "cron": self.cron,
            "every": self.every,
            "tz": self.tz,
            "args": self.args,
            "catch_up": self.catch_up,
            "next_run": self.next_after(now),
        }


def tick_of(key: str) -> tuple[str, float] | None:
    """``(schedule name, tick epoch seconds)`` of a schedule's idempotency key; None for other keys."""
    if not key.startswith(KEY_PREFIX):
        return None
    name, _, stamp = key[len(KEY_PREFIX) :].partition(":")
    try:
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return None
    return name, when.timestamp()
