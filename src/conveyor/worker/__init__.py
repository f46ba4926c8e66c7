"""The worker node: supervisor, executor processes, maintenance and autoscaler (DESIGN §5).

Task code imports ``DoNotRetry`` from here; the supervisor is loaded lazily so importing this
package from task code stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conveyor.worker.errors import DoNotRetry, Fatal, RetryAfter

if TYPE_CHECKING:
    from conveyor.worker.config import WorkerConfig
    from conveyor.worker.supervisor import Worker

__all__ = ["DoNotRetry", "Fatal", "RetryAfter", "Worker", "WorkerConfig"]


def __getattr__(name: str) -> Any:
    if name == "Worker":
        from conveyor.worker.supervisor import Worker

        return Worker
    if name == "WorkerConfig":
        from conveyor.worker.config import WorkerConfig

        return WorkerConfig
    raise AttributeError(name)
