"""conveyor dlq ls | redrive and conveyor queues [pause | resume]: the operator's levers.

The dead-letter set of a queue is its ``failed`` jobs (DESIGN §1): poison input, exhausted
retries. Redrive moves them back to ``queued`` with their attempts reset, once the cause is
fixed. Pausing a queue stops workers from claiming from it; running jobs finish.
"""

from __future__ import annotations

import typer

from conveyor.app import Conveyor
from conveyor.backend import Backend
from conveyor.cli.common import APP_OPTION, QUEUES_CONFIG_OPTION, URL_OPTION, use_queues_config
from conveyor.cli.errors import EXIT_ERROR, UsageError, cli_errors
from conveyor.cli.main import app
from conveyor.cli.render import console, job_dict, jobs_table, print_json, queue_dict, queues_table
from conveyor.cli.session import check_limit, opened
from conveyor.errors import JobNotFound
from conveyor.types import JobState, QueueStats

dlq = typer.Typer(help="Dead-letter queue: jobs that failed for good, and redrive.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")
queues = typer.Typer(help="Queue depth by state, age of the oldest job, pause and resume.")
app.add_typer(queues, name="queues")

JSON_OPTION = typer.Option(False, "--json", help="Print JSON instead of a table.")


# -- dead letters -------------------------------------------------------------------------------


@dlq.command("ls")
def dlq_ls(
    queue: str | None = typer.Option(None, "--queue", "-q"),
    task: str | None = typer.Option(None, "--task", "-t"),
    limit: int = typer.Option(50, "--limit", "-n"),
    cursor: str | None = typer.Option(None, "--cursor"),
    as_json: bool = JSON_OPTION,
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Failed jobs, newest first, with the error that put them there."""
    with cli_errors():
        check_limit(limit)
        with opened(app_spec, url) as conveyor:
            page = conveyor.list_jobs(states=[JobState.FAILED], queue=queue, task=task, limit=limit, cursor=cursor)
        if as_json:
            print_json({"jobs": [job_dict(j) for j in page.jobs], "next_cursor": page.next_cursor})
            return
        out = console()
        if not page.jobs:
            out.print("dead-letter queue is empty")
            return
        out.print(jobs_table(page.jobs, show_error=True))
        if page.next_cursor:
            out.print(f"[dim]more: --cursor {page.next_cursor}[/]")


@dlq.command("redrive")
def dlq_redrive(
    job_ids: list[str] | None = typer.Argument(None, metavar="[ID]...", help="Failed jobs to move back to queued."),
    all_: bool = typer.Option(False, "--all", help="Every failed job (narrow with --queue / --task)."),
    queue: str | None = typer.Option(None, "--queue", "-q"),
    task: str | None = typer.Option(None, "--task", "-t"),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Move failed jobs back to their queue with attempts reset (fix the cause first)."""
    ids = list(job_ids or [])
    with cli_errors():
        if ids and (all_ or queue or task):
            raise UsageError("give job ids or --all [--queue Q] [--task T], not both")
        if not ids and not all_:
            raise UsageError("name the job ids to redrive, or pass --all (narrow with --queue / --task)")
        with opened(app_spec, url) as conveyor:
            if not ids:
                moved = conveyor.redrive(queue=queue, task=task)
                scope = " ".join(p for p in (f"queue={queue}" if queue else "", f"task={task}" if task else "") if p)
                typer.echo(f"redrove {moved} job(s)" + (f" ({scope})" if scope else ""))
                return
            skipped = _not_redrivable(conveyor, ids)
            moved = conveyor.redrive([i for i in ids if i not in skipped])
        typer.echo(f"redrove {moved} job(s)")
        for job_id, why in skipped.items():
            typer.secho(f"skipped {job_id}: {why}", err=True)
    if skipped:
        raise typer.Exit(EXIT_ERROR)


def _not_redrivable(conveyor: Conveyor, ids: list[str]) -> dict[str, str]:
    """Ids that are not failed jobs, with the reason; an unknown id aborts before any change."""
    skipped: dict[str, str] = {}
    for job_id in ids:
        job = conveyor.get(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        if job.state is not JobState.FAILED:
            skipped[job_id] = f"it is {job.state.value}, only failed jobs can be redriven"
    return skipped


# -- queues -------------------------------------------------------------------------------------


@queues.callback(invoke_without_command=True)
def queues_overview(
    ctx: typer.Context,
    as_json: bool = JSON_OPTION,
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
    queues_config: str | None = QUEUES_CONFIG_OPTION,
) -> None:
    """Every queue: live depth by state, oldest queued age, throughput, and its declared settings."""
    if ctx.invoked_subcommand is not None:
        return
    with cli_errors():
        use_queues_config(queues_config)
    with cli_errors(), opened(app_spec, url) as conveyor:
        stats = _with_declared(conveyor, conveyor.queue_stats()) if app_spec else conveyor.queue_stats()
        rates = {q.queue: _throughput(conveyor, q.queue) for q in stats}
        declared = {q.queue: conveyor.queue_config(q.queue) for q in stats}
        if not app_spec:
            # the engine knows queues that hold jobs; which queues are declared only the app says
            typer.echo(
                "note: without --app (or $CONVEYOR_APP) only queues that hold jobs are listed; "
                "give the app to list every declared queue, as the API and dashboard do",
                err=True,
            )
        if as_json:
            print_json([queue_dict(q, declared[q.queue], rates[q.queue]) for q in stats])
            return
        out = console()
        if not stats:
            out.print("no queues yet: submit a job first")
            return
        out.print(queues_table(stats, declared, rates))


def _throughput(conveyor: Conveyor, queue: str) -> int:
    """Jobs of ``queue`` that finished in the last minute."""

    async def count(backend: Backend) -> int:
        return await backend.drain_stats(queue, 60.0)

    return conveyor.run_sync(count)


def _with_declared(conveyor: Conveyor, stats: list[QueueStats]) -> list[QueueStats]:
    """Queues the app declares (or its tasks use) appear even before they hold a job."""
    known = {q.queue for q in stats}
    names = set(conveyor.declared_queues())
    empty = {s.value: 0 for s in JobState}
    extra = [QueueStats(name, dict(empty), None) for name in sorted(names - known)]
    return sorted([*stats, *extra], key=lambda q: q.queue)


def _set_paused(name: str, paused: bool, app_spec: str | None, url: str | None) -> None:
    with cli_errors():
        if not name.strip():
            raise UsageError("queue name must not be empty")
        with opened(app_spec, url) as conveyor:
            if paused:
                conveyor.pause_queue(name)
            else:
                conveyor.resume_queue(name)
        if paused:
            typer.echo(f"paused queue {name}: workers stop claiming from it; running jobs finish")
        else:
            typer.echo(f"resumed queue {name}")


@queues.command("pause")
def pause(
    name: str = typer.Argument(..., metavar="NAME"),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Stop workers from claiming jobs of this queue (submits are still accepted)."""
    _set_paused(name, True, app_spec, url)


@queues.command("resume")
def resume(
    name: str = typer.Argument(..., metavar="NAME"),
    app_spec: str | None = APP_OPTION,
    url: str | None = URL_OPTION,
) -> None:
    """Let workers claim from this queue again."""
    _set_paused(name, False, app_spec, url)
