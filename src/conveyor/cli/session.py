"""Open the app for one command and look jobs up with errors a user can act on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from conveyor.app import Conveyor
from conveyor.cli.common import resolve_app
from conveyor.cli.errors import UsageError
from conveyor.errors import JobNotFound
from conveyor.types import Job

MAX_LIMIT = 1000


@contextmanager
def opened(app_spec: str | None, url: str | None) -> Iterator[Conveyor]:
    """The app named by --app (or a bare one on --url), closed when the command is done."""
    conveyor = resolve_app(app_spec, url)
    try:
        yield conveyor
    finally:
        conveyor.close()


def check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise UsageError(f"--limit must be between 1 and {MAX_LIMIT}, got {limit}")


def get_job(conveyor: Conveyor, job_id: str) -> Job:
    job = conveyor.get(job_id)
    if job is None:
        raise JobNotFound(f"no job with id {job_id!r}")
    return job
