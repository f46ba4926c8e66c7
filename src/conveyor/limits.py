"""Limits a job carries: per-key concurrency, per-key start rate, and uniqueness.

The engines enforce them in the claim (concurrency, rate) and in the enqueue (uniqueness),
atomically (docs/guide-limits.md). This module only says what a valid setting is and how a
task's declaration turns into the values stored on each job; it does no I/O.

* Concurrency: a job with ``concurrency_key`` K and ``concurrency_limit`` N is only claimed
  while fewer than N jobs with key K are ``running`` (every node, every queue). The limit is
  stored on each job; jobs sharing a key should declare the same N (the claim checks the
  candidate's own N).
* Rate: a job with ``rate_key`` K, ``rate_limit`` N and ``rate_period`` P is only claimed while
  fewer than N jobs with key K started in the last P seconds (a sliding window over the start
  times, on the engine's clock).
* Uniqueness: a submit with ``unique_key`` U while a job of the same tenant with U is pending or
  running returns that job (``created=False``); once it has ended, a new one may be submitted.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError

if TYPE_CHECKING:
    from conveyor.backend.protocol import EnqueueRequest
    from conveyor.types import QueueConfig

KeySpec = str | Callable[[Mapping[str, Any]], str | None] | None
"""A key declared on a task: a fixed string, or a function of the job's arguments."""

PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0, "hour": 3600.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+)\s*$")


def parse_rate(rate: str | tuple[int, float]) -> tuple[int, float]:
    """``"100/m"``, ``"5/10s"``, ``"1000/hour"`` or ``(100, 60.0)`` -> (starts, period seconds)."""
    if isinstance(rate, tuple):
        limit, period = int(rate[0]), float(rate[1])
    else:
        match = _RATE.match(rate.lower())
        if match is None or match.group(3) not in PERIODS:
            raise ConfigError(f"rate limit {rate!r} must look like '100/m', '5/10s' or '1000/hour'")
        limit = int(match.group(1))
        period = float(match.group(2) or 1) * PERIODS[match.group(3)]
    if limit < 1 or not period > 0:
        raise ConfigError(f"rate limit {rate!r} needs at least 1 start per positive period")
    return limit, period


def check_request(req: EnqueueRequest) -> None:
    """Refuse a half-declared limit: a key without its numbers (or numbers without a key)."""
    if (req.concurrency_key is None) != (req.concurrency_limit is None):
        raise ConfigError("concurrency_key and concurrency_limit go together")
    if req.concurrency_limit is not None and req.concurrency_limit < 1:
        raise ConfigError(f"concurrency_limit must be at least 1 (got {req.concurrency_limit})")
    rate = (req.rate_key, req.rate_limit, req.rate_period)
    if any(v is None for v in rate) and any(v is not None for v in rate):
        raise ConfigError("rate_key, rate_limit and rate_period go together")
    if req.rate_limit is not None and req.rate_limit < 1:
        raise ConfigError(f"rate_limit must be at least 1 (got {req.rate_limit})")
    if req.rate_period is not None and not req.rate_period > 0:
        raise ConfigError(f"rate_period must be positive seconds (got {req.rate_period})")
    for name in ("concurrency_key", "rate_key", "unique_key"):
        if getattr(req, name) == "":
            raise ConfigError(f"{name} must not be empty")


def resolve_key(spec: KeySpec, args: Mapping[str, Any]) -> str | None:
    """The key a declaration gives for one job's arguments (None: this job is not limited)."""
    if spec is None or isinstance(spec, str):
        return spec
    key = spec(args)
    if key is not None and not isinstance(key, str):
        raise ConfigError(f"a limit key function must return a str or None, not {type(key).__name__}")
    return key


@dataclass(frozen=True)
class TaskLimits:
    """What ``@app.task(concurrency=..., rate_limit=..., unique_key=...)`` declared.

    ``concurrency_key`` / ``rate_key`` default to the task's name: ``concurrency=5`` alone means
    "at most 5 jobs of this task running", ``rate_limit="100/m"`` alone "at most 100 starts of
    this task per minute".
    """

    concurrency: int | None = None
    concurrency_key: KeySpec = None
    rate: tuple[int, float] | None = None
    rate_key: KeySpec = None
    unique_key: KeySpec = None

    @classmethod
    def declare(
        cls,
        task_name: str,
        *,
        concurrency: int | None,
        concurrency_key: KeySpec,
        rate_limit: str | tuple[int, float] | None,
        rate_key: KeySpec,
        unique_key: KeySpec,
    ) -> TaskLimits:
        if concurrency is not None and concurrency < 1:
            raise ConfigError(f"task {task_name}: concurrency must be at least 1 (got {concurrency})")
        if concurrency_key is not None and concurrency is None:
            raise ConfigError(f"task {task_name}: concurrency_key needs concurrency=N (the limit per key)")
        if rate_key is not None and rate_limit is None:
            raise ConfigError(f"task {task_name}: rate_key needs rate_limit= (e.g. '100/m')")
        return cls(
            concurrency=concurrency,
            concurrency_key=(concurrency_key or task_name) if concurrency is not None else None,
            rate=parse_rate(rate_limit) if rate_limit is not None else None,
            rate_key=(rate_key or task_name) if rate_limit is not None else None,
            unique_key=unique_key,
        )

    def declared_keys(self) -> dict[str, Any]:
        """Which limits the task declares, as placeholder fields (no args needed)."""
        return {
            "concurrency_key": "declared" if self.concurrency is not None else None,
            "rate_key": "declared" if self.rate is not None else None,
        }

    def fields(self, args: Mapping[str, Any], unique_key: str | None = None) -> dict[str, Any]:
        """The EnqueueRequest fields for one job; a per-call ``unique_key`` wins over the task's."""
        out: dict[str, Any] = {"unique_key": unique_key or resolve_key(self.unique_key, args)}
        key = resolve_key(self.concurrency_key, args)
        if key is not None and self.concurrency is not None:
            out.update(concurrency_key=key, concurrency_limit=self.concurrency)
        key = resolve_key(self.rate_key, args)
        if key is not None and self.rate is not None:
            out.update(rate_key=key, rate_limit=self.rate[0], rate_period=self.rate[1])
        return out


def queue_key(queue: str) -> str:
    """The concurrency / rate key of a queue-wide limit (``QueueConfig.concurrency`` / ``rate_limit``)."""
    return f"queue:{queue}"


def with_queue_limits(config: QueueConfig, task: str, fields: dict[str, Any]) -> dict[str, Any]:
    """A job's limit fields once its queue's own limits are added.

    A job carries one concurrency key and one rate key, so a task with its own concurrency
    (or rate) limit cannot go to a queue that declares one too: refused (a limit Conveyor would
    not honour is an error, never a silent no-op).
    """
    out = dict(fields)
    if config.concurrency is not None:
        if fields.get("concurrency_key") is not None:
            raise ConfigError(
                f"task {task} has its own concurrency limit and queue {config.name!r} declares one too; "
                "a job carries one concurrency key: keep one of the two"
            )
        out.update(concurrency_key=queue_key(config.name), concurrency_limit=config.concurrency)
    if config.rate_limit is not None:
        if fields.get("rate_key") is not None:
            raise ConfigError(
                f"task {task} has its own rate limit and queue {config.name!r} declares one too; "
                "a job carries one rate key: keep one of the two"
            )
        limit, period = parse_rate(config.rate_limit)
        out.update(rate_key=queue_key(config.name), rate_limit=limit, rate_period=period)
    return out
