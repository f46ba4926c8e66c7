"""Errors a user of Conveyor can catch, each with a message that says what to do."""

from __future__ import annotations


class ConveyorError(Exception):
    """Base of every error Conveyor raises on purpose."""


class ConfigError(ConveyorError):
    """The application or a command was configured wrongly (bad URL, unknown option)."""


class InvalidTransition(ConveyorError):
    """The job's state does not allow this operation (e.g. cancel a finished job)."""


class JobNotFound(ConveyorError):
    """No job with this id (for this tenant)."""


class UnknownTask(ConveyorError):
    """The task name is not registered with the application."""


class InvalidArguments(ConveyorError):
    """The arguments do not fit the task's signature; ``errors`` lists each bad field."""

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or []


class IdempotencyConflict(ConveyorError):
    """The idempotency key was already used for a different payload."""

    def __init__(self, message: str, job_id: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class QueueFull(ConveyorError):
    """The queue is at its depth limit; retry later (backpressure)."""

    def __init__(self, queue: str, depth: int, limit: int) -> None:
        super().__init__(f"queue {queue!r} is full ({depth} pending, limit {limit})")
        self.queue = queue
        self.depth = depth
        self.limit = limit


class DuplicateJobId(ConveyorError):
    """A caller-chosen job id is already taken; the existing job is left untouched."""


class DependencyError(ConveyorError):
    """A job named as a dependency does not exist for this tenant."""


class BackendUnavailable(ConveyorError):
    """The storage engine cannot be reached or refused the operation; retry later."""


class LeaseLost(ConveyorError):
    """This worker no longer holds the job's lease (fencing token mismatch)."""


class JobOverrun(ConveyorError):
    """Raised by ``ctx.raise_if_cancelled`` in a task that ran past its queue's max_runtime: the
    job moves to the overflow queue (no attempt charged) and resumes from its checkpoint."""


class JobCanceled(ConveyorError):
    """Raised inside a task that checks for cancellation after the job was canceled."""
