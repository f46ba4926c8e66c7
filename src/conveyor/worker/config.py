"""Settings of one worker node, checked once so a bad flag fails with one clear line."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

from conveyor.errors import ConfigError

DAY = 86400.0


def default_worker_id() -> str:
    """Host and pid: unique among live nodes, and readable in the dashboard and logs."""
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class MaintenanceConfig:
    """How often every node reaps expired leases, promotes due jobs and prunes old ones.

    Every node runs these (they are atomic and idempotent), so a cluster keeps working as long
    as one node is alive. Each interval gets +-20 % jitter so nodes do not act in lockstep.
    """

    reap_interval: float = 5.0
    promote_interval: float = 1.0
    prune_interval: float = 3600.0
    retention: float = 7 * DAY
    jitter: float = 0.2
    forget_workers_after: float = 600.0
    """A node silent this long (it died without leaving) is removed from the worker registry."""


@dataclass(frozen=True)
class AutoscaleConfig:
    """When the executor pool grows and shrinks (see worker/autoscaler.py)."""

    interval: float = 1.0
    scale_up_age: float = 0.5
    """Grow only when the oldest runnable job has waited at least this long."""
    scale_down_idle: float = 30.0
    """Shrink by one after the pool has had idle executors and no backlog this long."""
    max_step: int = 2
    """At most this many executors started per decision (spawning costs CPU)."""


@dataclass(frozen=True)
class WorkerConfig:
    app_spec: str
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 1
    max_concurrency: int | None = None
    async_concurrency: int = 100
    lease: float = 30.0
    heartbeat: float | None = None
    grace: float = 30.0
    worker_id: str = field(default_factory=default_worker_id)
    burst: bool = False
    poll_interval: float = 1.0
    """Longest idle wait between claim attempts when no notification arrives."""
    resources: dict[str, int] = field(default_factory=dict)
    """What this node has (``--resources gpu=1``): it also serves its queues' resource queues."""
    summary_interval: float = 60.0
    """Seconds between two INFO ``worker.summary`` lines (per-job lines are DEBUG)."""
    registry_interval: float = 5.0
    """Seconds between two beats of the node in the engine's worker registry."""
    metrics_port: int | None = None
    """Serve this node's Prometheus metrics on http://metrics_host:metrics_port/metrics."""
    metrics_host: str = "0.0.0.0"
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    autoscale: AutoscaleConfig = field(default_factory=AutoscaleConfig)

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat if self.heartbeat is not None else self.lease / 3

    @property
    def min_executors(self) -> int:
        return self.concurrency

    @property
    def max_executors(self) -> int:
        return self.max_concurrency if self.max_concurrency is not None else self.concurrency

    @property
    def stop_grace(self) -> float:
        """How long a cooperative task gets to notice a cancel before its process is killed."""
        return min(1.0, self.heartbeat_interval / 2)

    def validate(self) -> WorkerConfig:
        """Return self, or raise ConfigError naming the first bad setting."""
        if not self.queues or any(not q.strip() for q in self.queues):
            raise ConfigError("--queues must name at least one queue, e.g. --queues default,reports")
        if self.concurrency < 1:
            raise ConfigError(f"--concurrency must be at least 1, got {self.concurrency}")
        if self.max_concurrency is not None and self.max_concurrency < self.concurrency:
            raise ConfigError(
                f"--max-concurrency ({self.max_concurrency}) must be >= --concurrency ({self.concurrency})"
            )
        if self.async_concurrency < 1:
            raise ConfigError(f"--async-concurrency must be at least 1, got {self.async_concurrency}")
        if self.lease <= 0:
            raise ConfigError(f"--lease must be positive seconds, got {self.lease}")
        if self.heartbeat is not None and not 0 < self.heartbeat < self.lease:
            raise ConfigError(f"--heartbeat must be positive and below --lease ({self.lease}), got {self.heartbeat}")
        if self.summary_interval <= 0:
            raise ConfigError(f"--summary-interval must be positive seconds, got {self.summary_interval}")
        if self.grace < 0:
            raise ConfigError(f"--grace must not be negative, got {self.grace}")
        if not self.worker_id.strip():
            raise ConfigError("--id must not be empty")
        if self.maintenance.retention <= 0:
            raise ConfigError("retention must be positive")
        if self.registry_interval <= 0:
            raise ConfigError(f"--registry-interval must be positive seconds, got {self.registry_interval}")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"--metrics-port must be a TCP port (0-65535), got {self.metrics_port}")
        return self
