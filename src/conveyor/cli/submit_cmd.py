"""conveyor submit: enqueue a job locally (through the app) or on a job service (over HTTP).

Locally the app validates the arguments against the task's signature, so a typo fails here
with one line per bad field instead of failing later in a worker. ``--wait`` follows the job
to its end with a live progress bar and turns the outcome into the exit code: 0 succeeded,
1 failed, 3 canceled (4 when ``--timeout`` elapses first; the job keeps going).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from conveyor.api.schemas import JobStatus
from conveyor.app import Conveyor
from conveyor.batch import BatchInvalid, check_dependencies, check_step, joined_workflow, plan_batch
from conveyor.cli.common import APP_OPTION
from conveyor.cli.errors import UsageError, cli_errors, fail
from conveyor.cli.jobs_file import JobsFile, read_jobs_file
from conveyor.cli.main import app
from conveyor.cli.parsing import file_args, parse_assignments, parse_duration
from conveyor.cli.progress import EXIT_TIMEOUT, WaitDisplay, exit_code, local_status, print_outcome, remote_status
from conveyor.cli.render import console
from conveyor.task import CallOptions
from conveyor.types import DependencyPolicy, JobState

EXIT_INTERRUPTED = 130
POLL_SECONDS = 0.25
"""How often --wait re-reads a local job; cheap on every engine (one primary-key read)."""


@app.command("submit")
def submit(
    task: str | None = typer.Argument(None, help="Registered task name, e.g. report (or --from-file)."),
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
    depends_on: list[str] | None = typer.Option(
        None, "--depends-on", "-d", help="Run after this job (repeat for several); see --on-dependency-failure."
    ),
    step: str | None = typer.Option(None, "--step", help="Name of this job inside its workflow."),
    workflow: str | None = typer.Option(
        None, "--workflow", help="Join this workflow (default: the first dependency's, or a new one)."
    ),
    on_dependency_failure: str | None = typer.Option(
        None, "--on-dependency-failure", help="cancel (default), continue or wait, when a dependency fails."
    ),
    quorum: int | None = typer.Option(None, "--quorum", help="Run once this many dependencies succeeded."),
    from_file: Path | None = typer.Option(
        None, "--from-file", "-f", help="Submit every job of a JSON-lines file at once, as one workflow."
    ),
) -> None:
    """Submit a job: conveyor submit report title=Q3 months=6 --app examples.app:app --wait.

    Several at once, stored together or not at all: conveyor submit --from-file jobs.jsonl
    (one {"task", "args", "step", "depends_on", ...} object per line).
    """
    with cli_errors():
        timeout_s = parse_duration(timeout, "--timeout")
        if timeout_s is not None and not wait:
            raise UsageError("--timeout only applies with --wait")
        if server and app_spec:
            raise UsageError("give either --app (enqueue locally) or --server (over HTTP), not both")
        if from_file is not None:
            extra = task or assignments or depends_on or step or quorum or on_dependency_failure
            if extra or delay or queue or priority is not None or idempotency_key:
                raise UsageError("with --from-file, the file holds the jobs: give no TASK, arguments or job options")
            if not (server or app_spec):
                raise UsageError("give --app package.module:app to enqueue locally, or --server URL for a job service")
            file = read_jobs_file(from_file)
            code = submit_file(file, server, api_key, app_spec, workflow, wait, timeout_s)
            raise typer.Exit(code)
        if task is None:
            raise UsageError("give a TASK name (or --from-file jobs.jsonl)")
        args = parse_assignments(assignments)
        file_args(args)  # a missing file is an error before anything is uploaded or submitted
        delay_s = parse_duration(delay, "--delay")
        options = CallOptions(
            queue=queue,
            priority=priority,
            delay=delay_s,
            idempotency_key=idempotency_key,
            depends_on=tuple(depends_on or ()),
            step=step,
            workflow_id=workflow,
            on_dependency_failure=_policy(on_dependency_failure),
            quorum=quorum,
        )
        for field, message in check_dependencies(options.depends_on, quorum):
            raise UsageError(f"--{field.split('[')[0].replace('_', '-')}: {message}")
        if (why := check_step(step)) is not None:
            raise UsageError(f"--step {step!r} {why}")
        if server:
            code = _submit_remote(server, api_key, task, args, options, wait, timeout_s)
        elif app_spec:
            code = _submit_local(app_spec, task, args, options, wait, timeout_s)
        else:
            raise UsageError("give --app package.module:app to enqueue locally, or --server URL for a job service")
    raise typer.Exit(code)


def _policy(value: str | None) -> DependencyPolicy:
    if value is None:
        return DependencyPolicy.CANCEL
    try:
        return DependencyPolicy(value.strip().lower())
    except ValueError:
        choices = ", ".join(p.value for p in DependencyPolicy)
        raise UsageError(f"--on-dependency-failure {value!r} is not one of {choices}") from None


def submit_file(
    file: JobsFile,
    server: str | None,
    api_key: str | None,
    app_spec: str | None,
    workflow: str | None,
    wait: bool,
    timeout: float | None,
) -> int:
    """Store every job of the file in one call (nothing if any is bad); ids on stdout, one a line."""
    if server:
        from conveyor.client import ClientError, ConveyorClient

        with ConveyorClient(server, api_key=api_key) as client:
            try:
                result = client.submit_batch(file.raw(), workflow_id=workflow)
            except ClientError as exc:
                mapped = file.service_errors(exc.errors) if exc.status_code == 422 else None
                if mapped is not None:
                    raise mapped from None
                raise
        workflow_id, ids = result.workflow_id, [j.id for j in result.jobs]
        created = sum(result.created)
    else:
        from conveyor.app import load_app

        assert app_spec is not None
        conveyor = load_app(app_spec)
        try:
            try:
                plan = plan_batch(conveyor, file.batch_items(), workflow_id=workflow)
            except BatchInvalid as exc:
                raise file.line_errors(exc.errors) from None
            results = conveyor.submit_requests(plan.requests)
        finally:
            conveyor.close()
        workflow_id = next((r.job.workflow_id for r in results if r.job.workflow_id), plan.workflow_id)
        ids, created = [r.job.id for r in results], sum(r.created for r in results)
    for job_id in ids:
        typer.echo(job_id)
    replayed = f", {len(ids) - created} already stored (idempotency keys)" if created < len(ids) else ""
    console(stderr=True).print(
        f"submitted {len(ids)} jobs as workflow {workflow_id}{replayed}\n"
        f"follow it: conveyor workflows show {workflow_id} --wait",
        style="dim",
        markup=False,
    )
    if not wait:
        return 0
    from conveyor.cli.workflows_cmd import print_workflow

    try:
        return print_workflow(workflow_id, server, api_key, app_spec, None, True, timeout)
    except KeyboardInterrupt:
        typer.secho(f"\nstopped waiting; workflow {workflow_id} goes on", err=True)
        return EXIT_INTERRUPTED


def _submit_local(
    spec: str, task: str, args: dict[str, Any], options: CallOptions, wait: bool, timeout: float | None
) -> int:
    from conveyor.app import load_app

    conveyor = load_app(spec)
    try:
        if options.workflow_id is None and (options.depends_on or options.step):
            first = conveyor.get(options.depends_on[0]) if options.depends_on else None
            workflow = joined_workflow(None, options.depends_on, options.step, first)
            options = replace(options, workflow_id=workflow)
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
            depends_on=options.depends_on,
            step=options.step,
            workflow_id=options.workflow_id,
            on_dependency_failure=options.on_dependency_failure.value if options.depends_on else None,
            quorum=options.quorum,
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
