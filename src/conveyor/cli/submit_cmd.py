"""conveyor submit: enqueue a job locally (through the app) or on a job service (over HTTP).

Locally the app validates the arguments against the task's signature, so a typo fails here
with one line per bad field instead of failing later in a worker. ``--wait`` follows the job
to its end with a live progress bar and turns the outcome into the exit code: 0 succeeded,
1 failed, 3 canceled (4 when ``--timeout`` elapses first; the job keeps going).
"""

from __future__ import annotations

import time
from typing import Any

import typer

from conveyor.api.schemas import JobStatus
from conveyor.app import Conveyor
from conveyor.cli.common import APP_OPTION
from conveyor.cli.errors import UsageError, cli_errors, fail
from conveyor.cli.main import app
from conveyor.cli.parsing import file_args, parse_assignments, parse_duration
from conveyor.cli.progress import EXIT_TIMEOUT, WaitDisplay, exit_code, local_status, print_outcome, remote_status
from conveyor.cli.render import console
from conveyor.task import CallOptions
from conveyor.types import JobState

EXIT_INTERRUPTED = 130
POLL_SECONDS = 0.25
"""How often --wait re-reads a local job; cheap on every engine (one primary-key read)."""


@app.command("submit")
def submit(
    task: str = typer.Argument(..., help="Registered task name, e.g. report."),
    assignments: list[str] | None = typer.Argument(
        None, metavar="KEY=VALUE...", help="Task arguments; values are JSON when they parse, else strings."
    ),
    app_spec: str | None = APP_OPTION,
    server: str | None = typer.Option(
        None,
        "--server",
        envvar="CONVEYOR_SERVER",
        help="Submit to this job service instead, e.g. http://127.0.0.1:8000.",
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="CONVEYOR_API_KEY", help="API key for --server."),
    queue: str | None = typer.Option(None, "--queue", "-q", help="Override the task's queue."),
    priority: int | None = typer.Option(None, "--priority", "-p", help="Higher runs first (default: the task's)."),
    delay: str | None = typer.Option(None, "--delay", help="Run no earlier than this from now: 30, 90s, 5m, 2h, 1d."),
    idempotency_key: str | None = typer.Option(
        None, "--idempotency-key", "-k", help="Same key + same payload returns the original job."
    ),
    wait: bool = typer.Option(False, "--wait", "-w", help="Follow the job to its end with a progress bar."),
    timeout: str | None = typer.Option(None, "--timeout", help="With --wait: give up waiting after this long."),
) -> None:
    """Submit a job: conveyor submit report title=Q3 months=6 --app examples.app:app --wait."""
    with cli_errors():
        args = parse_assignments(assignments)
        file_args(args)  # a missing file is an error before anything is uploaded or submitted
        delay_s = parse_duration(delay, "--delay")
        timeout_s = parse_duration(timeout, "--timeout")
        if timeout_s is not None and not wait:
            raise UsageError("--timeout only applies with --wait")
        if server and app_spec:
            raise UsageError("give either --app (enqueue locally) or --server (over HTTP), not both")
        options = CallOptions(queue=queue, priority=priority, delay=delay_s, idempotency_key=idempotency_key)
        if server:
            code = _submit_remote(server, api_key, task, args, options, wait, timeout_s)
        elif app_spec:
            code = _submit_local(app_spec, task, args, options, wait, timeout_s)
        else:
            raise UsageError("give --app package.module:app to enqueue locally, or --server URL for a job service")
    raise typer.Exit(code)


def _submit_local(
    spec: str, task: str, args: dict[str, Any], options: CallOptions, wait: bool, timeout: float | None
) -> int:
    from conveyor.app import load_app

    conveyor = load_app(spec)
    try:
        for key, file in file_args(args).items():
            args[key] = conveyor.upload(file.path)
            console(stderr=True).print(f"uploaded {file.path} as {args[key]}", style="dim", markup=False)
        outcome = conveyor.submit(task, args, options)
        job = outcome.job
        replay = "" if outcome.created else " (existing job for this idempotency key)"
        _announce(job.id, job.task, job.queue, job.state.value + replay)
        if not wait:
            return 0
        try:
            return _follow_local(conveyor, job.id, job.task, timeout)
        except KeyboardInterrupt:
            return _stopped_waiting(job.id)
    finally:
        conveyor.close()


def _announce(job_id: str, task: str, queue: str, state: str) -> None:
    """The id alone on stdout (``ID=$(conveyor submit ... | head -1)``), the story on stderr."""
    typer.echo(job_id)
    console(stderr=True).print(f"submitted {task} to queue {queue}: {state}", style="dim", markup=False)


def _follow_local(conveyor: Conveyor, job_id: str, task: str, timeout: float | None) -> int:
    started = time.monotonic()
    deadline = None if timeout is None else started + timeout

    def read() -> JobStatus:
        job = conveyor.get(job_id)
        if job is None:  # pruned while we watched: nothing more to show
            raise UsageError(f"job {job_id} disappeared (pruned?)")
        position = conveyor.queue_position(job_id) if job.state is JobState.QUEUED else None
        return local_status(job, position)

    with WaitDisplay(job_id, task) as display:
        while True:
            snap = read()
            display.update(snap)
            if snap.terminal:
                break
            if deadline is not None and time.monotonic() >= deadline:
                return _timed_out(job_id, snap)
            time.sleep(POLL_SECONDS)
    print_outcome(snap, time.monotonic() - started, f"conveyor jobs show {job_id}")
    return exit_code(snap.state)


def _stopped_waiting(job_id: str) -> int:
    """Ctrl-C stops the watching, not the job: say so, so nobody submits it twice."""
    typer.secho(f"\nstopped waiting; job {job_id} goes on (conveyor jobs cancel {job_id} to stop it)", err=True)
    return EXIT_INTERRUPTED


def _timed_out(job_id: str, snap: JobStatus) -> int:
    typer.secho(
        f"timeout: job {job_id} is still {snap.state.value}; it goes on (conveyor jobs show {job_id})", err=True
    )
    return EXIT_TIMEOUT


def _submit_remote(
    server: str,
    api_key: str | None,
    task: str,
    args: dict[str, Any],
    options: CallOptions,
    wait: bool,
    timeout: float | None,
) -> int:
    try:
        from conveyor.client import ConveyorClient
    except ImportError:
        fail("this installation has no HTTP client (conveyor.client); submit with --app instead")
    client = ConveyorClient(server, api_key=api_key)
    try:
        for key, file in file_args(args).items():
            uploaded = client.upload(file.path)
            args[key] = uploaded["ref"]
            console(stderr=True).print(f"uploaded {file.path} as {args[key]}", style="dim", markup=False)
        status = client.submit(
            task,
            args,
            queue=options.queue,
            priority=options.priority,
            delay=options.delay,
            idempotency_key=options.idempotency_key,
        )
        snap = remote_status(status, server)
        _announce(snap.id, status.task, status.queue, snap.state.value)
        if not wait:
            return 0
        started = time.monotonic()
        with WaitDisplay(snap.id, status.task) as display:
            display.update(snap)
            try:
                final = client.wait(
                    snap.id, timeout=timeout, on_update=lambda s: display.update(remote_status(s, server))
                )
            except KeyboardInterrupt:
                return _stopped_waiting(snap.id)
            except TimeoutError as exc:  # conveyor.client.WaitTimeout carries the last status seen
                last = getattr(exc, "last", None)
                return _timed_out(snap.id, remote_status(last, server) if last is not None else snap)
            snap = remote_status(final, server)
            display.update(snap)
        print_outcome(snap, time.monotonic() - started, f"GET {server.rstrip('/')}/v1/jobs/{snap.id}")
        return exit_code(snap.state)
    finally:
        client.close()
