"""Exceptions task code raises to steer the worker, beyond an ordinary failure.

An ordinary exception fails the attempt and the job is retried with backoff until
``max_attempts``. Some failures will never succeed on retry (invalid input, a resource that is
gone for good); raising ``DoNotRetry`` sends the job straight to ``failed`` (the dead-letter
set) so it does not burn attempts and queue time first.
"""

from __future__ import annotations

from conveyor.errors import ConveyorError


class DoNotRetry(ConveyorError):
    """Fail this job now, without retries: it goes to ``failed`` for a human to look at."""


class RetryAfter(ConveyorError):
    """Fail this attempt and retry no sooner than ``seconds`` from now (the task's backoff still
    applies when it is longer): for a dependency that said when to come back, e.g. an HTTP 429
    or 503 with ``Retry-After``. Attempts are counted as for any failure."""

    def __init__(self, message: str, seconds: float) -> None:
        super().__init__(message)
        self.seconds = max(0.0, float(seconds))


Fatal = DoNotRetry
"""Alias of DoNotRetry, for readers used to that name."""
