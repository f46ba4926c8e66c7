"""Conveyor: durable background jobs for Python services.

This package is the public API: import from ``conveyor``, not from its modules::

    from conveyor import Conveyor, JobContext, QueueConfig, RetryPolicy

    app = Conveyor("sqlite:///var/conveyor.db", queues=[QueueConfig("reports", max_depth=1000)])

    @app.task(queue="reports", retry=RetryPolicy(base_delay=5))
    def report(ctx: JobContext, title: str) -> dict: ...

Importing it stays light, because worker processes import it too: the HTTP client (httpx),
webhook settings and the job service's status model load on first use of their names, and
the web framework (FastAPI) is never imported from here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from conveyor.app import Conveyor
from conveyor.backend.protocol import EnqueueResult, JobPage
from conveyor.canvas import Signature, Workflow
from conveyor.context import JobContext
from conveyor.dependencies import Dependency
from conveyor.errors import (
    BackendUnavailable,
    ConfigError,
    ConveyorError,
    DependencyError,
    DuplicateJobId,
    IdempotencyConflict,
    InvalidArguments,
    InvalidTransition,
    JobCanceled,
    JobNotFound,
    JobOverrun,
    LeaseLost,
    QueueFull,
    UnknownTask,
)
from conveyor.queues import load_queues_config
from conveyor.storage import LocalResultStore, ResultStore, S3ResultStore, Upload, UploadError, open_store
from conveyor.task import CallOptions, Task
from conveyor.types import (
    Artifact,
    DependencyPolicy,
    Job,
    JobEvent,
    JobState,
    QueueConfig,
    QueueStats,
    RetryPolicy,
)
from conveyor.worker.errors import DoNotRetry, RetryAfter

if TYPE_CHECKING:
    from conveyor.api.schemas import JobStatus
    from conveyor.client import AsyncConveyorClient, ClientError, ConveyorClient, WaitTimeout
    from conveyor.webhooks.config import WebhookEndpoint, WebhookSettings

__all__ = [
    "Artifact",
    "AsyncConveyorClient",
    "BackendUnavailable",
    "CallOptions",
    "ClientError",
    "ConfigError",
    "Conveyor",
    "ConveyorClient",
    "ConveyorError",
    "Dependency",
    "DependencyError",
    "DependencyPolicy",
    "DoNotRetry",
    "DuplicateJobId",
    "EnqueueResult",
    "IdempotencyConflict",
    "InvalidArguments",
    "InvalidTransition",
    "Job",
    "JobCanceled",
    "JobContext",
    "JobEvent",
    "JobNotFound",
    "JobOverrun",
    "JobPage",
    "JobState",
    "JobStatus",
    "LeaseLost",
    "LocalResultStore",
    "QueueConfig",
    "QueueFull",
    "QueueStats",
    "ResultStore",
    "RetryAfter",
    "RetryPolicy",
    "S3ResultStore",
    "Signature",
    "Task",
    "UnknownTask",
    "Upload",
    "UploadError",
    "WaitTimeout",
    "WebhookEndpoint",
    "WebhookSettings",
    "Workflow",
    "load_queues_config",
    "open_store",
]

_LAZY = {
    "AsyncConveyorClient": "conveyor.client",
    "ClientError": "conveyor.client",
    "ConveyorClient": "conveyor.client",
    "WaitTimeout": "conveyor.client",
    "JobStatus": "conveyor.api.schemas",
    "WebhookEndpoint": "conveyor.webhooks.config",
    "WebhookSettings": "conveyor.webhooks.config",
}
"""Public names whose modules are not needed to define or run tasks: loaded on first access."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
