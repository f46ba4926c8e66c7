"""What the fleet looks like from the engine: live worker nodes and the scaling signal.

Both read only what every node already writes (its registry beat, the jobs' states), so any
process that can reach the engine (the API, the CLI, an autoscaler) sees every node, whichever
machine it runs on. Liveness is judged on the engine's clock: a node is dead once it has been
silent for ``DEAD_AFTER_BEATS`` of its own beat intervals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from conveyor.backend.protocol import Backend, WorkerRecord
from conveyor.types import JobState

DEAD_AFTER_BEATS = 3
"""Missed beats before a node is shown dead (a beat lost to a slow engine is not death)."""
DEFAULT_BEAT_INTERVAL = 5.0
DRAIN_WINDOW = 60.0
"""Seconds of finished jobs the drain rate of the scaling signal is measured over."""


@dataclass(frozen=True)
class WorkerStatus:
    worker_id: str
    alive: bool
    silent_for: float
    started_at: float
    last_seen: float
    info: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "alive": self.alive,
            "silent_for": round(self.silent_for, 3),
            "started_at": self.started_at,
            "last_seen": self.last_seen,
            **{k: v for k, v in self.info.items() if k not in ("worker_id", "alive")},
        }


def worker_status(record: WorkerRecord) -> WorkerStatus:
    """A registry record judged alive or dead by its own beat interval."""
    interval = float(record.info.get("beat_interval") or DEFAULT_BEAT_INTERVAL)
    alive = record.silent_for <= DEAD_AFTER_BEATS * interval
    return WorkerStatus(record.worker_id, alive, record.silent_for, record.started_at, record.last_seen, record.info)


async def list_workers(backend: Backend) -> list[WorkerStatus]:
    """Every registered node, live ones first, then by worker id."""
    statuses = [worker_status(r) for r in await backend.list_workers()]
    return sorted(statuses, key=lambda w: (not w.alive, w.worker_id))


@dataclass(frozen=True)
class QueueSignal:
    """What an autoscaler needs of one queue: how much waits, for how long, how fast it drains."""

    queue: str
    backlog: int
    """Jobs ready to run now (queued; a due retry or delayed job joins within a promotion tick)."""
    scheduled: int
    """Jobs due later (delayed jobs, retries in backoff): not backlog yet."""
    running: int
    oldest_age: float
    """Seconds the oldest queued job has waited (0 when none waits)."""
    drain_rate: float
    """Jobs finished per second over the last ``DRAIN_WINDOW`` seconds."""
    workers: int
    """Live nodes that consume this queue."""
    paused: bool

    @property
    def drain_seconds(self) -> float | None:
        """Backlog / drain rate: the estimated time to empty the queue at today's pace (None:
        a backlog and nothing draining, i.e. it never empties without more workers)."""
        if self.backlog == 0:
            return 0.0
        return None if self.drain_rate <= 0 else self.backlog / self.drain_rate

    def to_dict(self) -> dict[str, Any]:
        drain = self.drain_seconds
        return {
            "queue": self.queue,
            "backlog": self.backlog,
            "scheduled": self.scheduled,
            "running": self.running,
            "oldest_age": round(self.oldest_age, 3),
            "drain_rate": round(self.drain_rate, 3),
            "drain_seconds": None if drain is None else round(drain, 3),
            "workers": self.workers,
            "paused": self.paused,
        }


async def scaling_signal(backend: Backend, declared: list[str] | None = None) -> list[QueueSignal]:
    """One signal per queue the engine knows (plus the declared ones, so a new queue shows 0)."""
    stats = {s.queue: s for s in await backend.queue_stats()}
    nodes = [w for w in await list_workers(backend) if w.alive]
    out = []
    for name in sorted(set(stats) | set(declared or [])):
        st = stats.get(name)
        counts = st.counts if st is not None else {}
        finished = await backend.drain_stats(name, DRAIN_WINDOW)
        out.append(
            QueueSignal(
                queue=name,
                backlog=counts.get(JobState.QUEUED.value, 0),
                scheduled=counts.get(JobState.SCHEDULED.value, 0),
                running=counts.get(JobState.RUNNING.value, 0),
                oldest_age=(st.oldest_queued_age or 0.0) if st is not None else 0.0,
                drain_rate=finished / DRAIN_WINDOW,
                workers=sum(1 for w in nodes if name in (w.info.get("queues") or [])),
                paused=bool(st.paused) if st is not None else False,
            )
        )
    return out
