"""``submit --wait``: a live progress bar until the job ends, then its outcome and exit code.

The same display serves both paths: a local engine (polled through the app) and the HTTP
service (``ConveyorClient.wait`` calls back on every update). Both speak the job service's
status body (``JobStatus``; locally ``JobStatus.from_job``, the one job -> status mapping), so
the bar does not care where the status came from.
"""

from __future__ import annotations

import time

import orjson
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from conveyor.api.schemas import JobStatus
from conveyor.cli.render import console, error_summary, size, styled_state
from conveyor.types import Job, JobState

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_CANCELED = 3
EXIT_TIMEOUT = 4
"""--timeout elapsed before the job ended; the job itself goes on."""

NO_WORKER_HINT_AFTER = 10.0
"""Seconds a job may sit queued before the display suggests starting a worker."""


def local_status(job: Job, queue_position: int | None = None) -> JobStatus:
    """The status body the job service would answer, with artifacts linked to their files."""
    status = JobStatus.from_job(job, queue_position, internals=True)  # the CLI is the operator's
    where = {a.name: a.location for a in job.artifacts}
    artifacts = [a.model_copy(update={"url": where.get(a.name, a.url)}) for a in status.artifacts]
    return status.model_copy(update={"artifacts": artifacts})


def remote_status(status: JobStatus, base_url: str) -> JobStatus:
    """A status from the job service, its artifact URLs (relative to the service) made absolute."""
    base = base_url.rstrip("/")
    artifacts = [a.model_copy(update={"url": base + a.url}) if a.url.startswith("/") else a for a in status.artifacts]
    return status.model_copy(update={"artifacts": artifacts})


MARKS = {JobState.SUCCEEDED: "[green]✓[/]", JobState.FAILED: "[red]✗[/]", JobState.CANCELED: "[dim]⊘[/]"}


class _StateSpinner(SpinnerColumn):
    """Spins while the job is live; a mark of the outcome once it ended (whatever the fraction)."""

    def render(self, task: Task) -> RenderableType:
        mark = task.fields.get("mark")
        return Text.from_markup(mark) if mark else super().render(task)


class WaitDisplay:
    """A rich progress bar on stderr: state, bar (or pulse until progress is known), message."""

    def __init__(self, job_id: str, task: str, err: Console | None = None) -> None:
        self.console = err or console(stderr=True)
        self.progress = Progress(
            _StateSpinner(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[message]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task_id: TaskID = self.progress.add_task(task, total=None, message="submitted", mark=None)
        self.task_name = task
        self.job_id = job_id
        self.started = time.monotonic()
        self.hinted = False

    def __enter__(self) -> WaitDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def update(self, snap: JobStatus) -> None:
        """Redraw from a status; called on every poll or server update."""
        progress = snap.progress
        message = (progress.message if progress else None) or ""
        if snap.state is JobState.QUEUED and snap.queue_position is not None:
            message = f"{snap.queue_position} ahead in queue"
        elif snap.state in (JobState.SCHEDULED, JobState.WAITING) and not message:
            message = snap.state.value
        description = f"{escape(self.task_name)} {styled_state(snap.state)}"
        if snap.attempts > 1:
            description += f" attempt {snap.attempts}"
        fraction = 1.0 if snap.state is JobState.SUCCEEDED else progress.fraction if progress else None
        mark = MARKS.get(snap.state)
        if fraction is None:
            self.progress.update(self.task_id, total=None, description=description, message=escape(message), mark=mark)
        else:
            self.progress.update(
                self.task_id, total=1.0, completed=fraction, description=description, message=escape(message), mark=mark
            )
        waited = time.monotonic() - self.started
        if snap.state is JobState.QUEUED and not self.hinted and waited > NO_WORKER_HINT_AFTER:
            self.hinted = True
            self.progress.console.print(
                f"[dim]still queued after {waited:.0f}s: is a worker running for this queue? "
                "(conveyor worker --app ... --queues ...)[/]"
            )


def exit_code(state: JobState) -> int:
    return {JobState.SUCCEEDED: EXIT_SUCCEEDED, JobState.CANCELED: EXIT_CANCELED}.get(state, EXIT_FAILED)


def print_outcome(snap: JobStatus, elapsed: float, details: str) -> None:
    """Result and artifacts on stdout; the job's error on stderr, with where to read the rest.

    The task's traceback is not printed here (it is the job's, kept on the job record);
    ``details`` says where to find it, e.g. ``conveyor jobs show ID``.
    """
    out, err = console(), console(stderr=True)
    out.print(f"{styled_state(snap.state)} after {elapsed:.1f}s ({snap.attempts} attempt(s))")
    if snap.state is JobState.SUCCEEDED:
        out.print("result: " + orjson.dumps(snap.result).decode(), markup=False, soft_wrap=True)
    if snap.error:
        err.print(f"error: {error_summary(snap.error.model_dump())}", style="red", markup=False, soft_wrap=True)
        err.print(f"details: {details}", style="dim", markup=False, soft_wrap=True)
    for art in snap.artifacts:
        line = f"artifact: {art.name} ({size(art.size)}, {art.content_type}) {art.url}"
        out.print(line, markup=False, soft_wrap=True)
