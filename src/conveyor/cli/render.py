"""How the jobs CLI shows jobs, queues and events: rich tables for people, JSON for scripts.

Output that is piped keeps full job ids (no ellipsis) by rendering wide when stdout is not a
terminal, so ``conveyor jobs ls | grep failed`` still yields ids you can paste.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor.types import Job, JobEvent, JobState, QueueConfig, QueueStats

STATE_STYLE = {
    JobState.WAITING: "magenta",
    JobState.SCHEDULED: "cyan",
    JobState.QUEUED: "blue",
    JobState.RUNNING: "yellow",
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELED: "dim",
}


def console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    wide = None if stream.isatty() else 200
    return Console(file=stream, width=wide, soft_wrap=False, highlight=False)


def styled_state(state: JobState | str) -> str:
    try:
        value = JobState(str(state))
    except ValueError:
        return str(state)
    return f"[{STATE_STYLE[value]}]{value.value}[/]"


def when(ts: float | None) -> str:
    """Local wall time of an epoch timestamp, second precision."""
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def span(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h10m``, ``3d4h``: short durations for tables."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    if s < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{(s % 3600) // 60:02d}m"
    return f"{s // 86400}d{(s % 86400) // 3600}h"


def ago(ts: float | None, now: float | None = None) -> str:
    if ts is None:
        return "-"
    return f"{span((now or time.time()) - ts)} ago"


def size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def progress_text(job: Job) -> str:
    if job.progress is None and not job.progress_message:
        return ""
    pct = f"{job.progress * 100:.0f}%" if job.progress is not None else ""
    return " ".join(p for p in (pct, job.progress_message or "") if p)


def error_summary(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    kind = error.get("type") or "Error"
    message = str(error.get("message") or "").strip().splitlines()
    return f"{kind}: {message[0]}" if message else str(kind)


def job_dict(job: Job) -> dict[str, Any]:
    """The job as plain JSON data, without the lease token (a fencing secret of the worker)."""
    data = dataclasses.asdict(job)
    data.pop("lease_token", None)
    data["state"] = job.state.value
    return data


def print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode() + "\n")


def jobs_table(jobs: list[Job], *, title: str | None = None, show_error: bool = False) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    table.add_column("id", no_wrap=True, min_width=36)
    table.add_column("task", overflow="fold")
    table.add_column("queue")
    table.add_column("state")
    table.add_column("att", justify="right")
    table.add_column("created")
    if show_error:
        table.add_column("finished")
        table.add_column("error", overflow="fold")
    else:
        table.add_column("progress", overflow="fold")
    now = time.time()
    for job in jobs:
        row = [
            job.id,
            escape(job.task),
            escape(job.queue),
            styled_state(job.state),
            f"{job.attempts}/{job.max_attempts}",
            ago(job.created_at, now),
        ]
        if show_error:
            row += [ago(job.finished_at, now), escape(error_summary(job.error))]
        else:
            row.append(escape(progress_text(job)))
        table.add_row(*row)
    return table


def job_detail(job: Job, position: int | None) -> Table:
    """Every field of a job as a two-column grid (error and artifacts shown separately)."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("task", job.task),
        ("queue", job.queue),
        ("tenant", job.tenant),
        ("state", styled_state(job.state)),
        ("attempts", f"{job.attempts} of {job.max_attempts}"),
        ("priority", str(job.priority)),
        ("args", orjson.dumps(job.args).decode()),
        ("created", when(job.created_at)),
        ("run at", when(job.run_at)),
        ("started", when(job.started_at)),
        ("finished", when(job.finished_at)),
        ("updated", when(job.updated_at)),
    ]
    if job.state is JobState.QUEUED and position is not None:
        rows.append(("queue position", f"{position} job(s) ahead"))
    if job.timeout is not None:
        rows.append(("timeout", span(job.timeout)))
    rows.append(("retry", _retry_text(job)))
    if job.state is JobState.RUNNING:
        rows.append(("worker", job.worker_id or "-"))
        rows.append(("lease expires", when(job.lease_expires_at)))
    if job.progress is not None or job.progress_message:
        rows.append(("progress", progress_text(job)))
    if job.idempotency_key:
        rows.append(("idempotency key", job.idempotency_key))
    if job.depends_on:
        policy = f" (on failure: {job.on_dependency_failure}" + (f", quorum {job.quorum})" if job.quorum else ")")
        rows.append(("depends on", ", ".join(job.depends_on) + policy))
    if job.workflow_id:
        rows.append(("workflow", f"{job.workflow_id} (conveyor workflows show {job.workflow_id})"))
    if job.step:
        rows.append(("step", job.step))
    if job.state is JobState.SUCCEEDED or job.result is not None:
        rows.append(("result", orjson.dumps(job.result).decode()))
    for key, value in rows:
        grid.add_row(key, value if key == "state" else escape(value))
    return grid


def _retry_text(job: Job) -> str:
    r = job.retry
    jitter = ", jitter" if r.jitter else ""
    return f"backoff {span(r.base_delay)} x{r.factor:g} up to {span(r.max_delay)}{jitter}"


def events_table(events: list[JobEvent]) -> Table:
    table = Table(title="recent events", title_justify="left", header_style="bold")
    table.add_column("seq", justify="right")
    table.add_column("at", no_wrap=True)
    table.add_column("event")
    table.add_column("state")
    table.add_column("detail", overflow="fold")
    for ev in events:
        table.add_row(str(ev.seq), when(ev.at), escape(ev.type), styled_state(ev.state), escape(_event_detail(ev)))
    return table


def _event_detail(ev: JobEvent) -> str:
    data = dict(ev.data)
    if ev.type == "progress":
        fraction = data.get("fraction")
        pct = f"{fraction * 100:.0f}%" if isinstance(fraction, int | float) else ""
        return " ".join(p for p in (pct, str(data.get("message") or "")) if p)
    if ev.type == "artifact":
        return f"{data.get('name')} ({size(int(data.get('size') or 0))})"
    if "error" in data and isinstance(data["error"], dict):
        data["error"] = error_summary(data["error"])
    return ", ".join(f"{k}={v}" for k, v in data.items() if v is not None)


def queues_table(
    stats: list[QueueStats],
    declared: Mapping[str, QueueConfig] | None = None,
    throughput: Mapping[str, int] | None = None,
) -> Table:
    """Live depth by state and oldest age, with the declared settings beside them (when known)."""
    table = Table(header_style="bold")
    table.add_column("queue")
    table.add_column("paused")
    for state in JobState:
        table.add_column(state.value, justify="right")
    table.add_column("oldest queued", justify="right")
    if throughput is not None:
        table.add_column("done/min", justify="right")
    if declared is not None:
        table.add_column("max depth", justify="right")
        table.add_column("max runtime")
        table.add_column("priority", justify="right")
        table.add_column("limits")
    for q in stats:
        row = [
            escape(q.queue),
            "[red]paused[/]" if q.paused else "",
            *(str(q.counts.get(s.value, 0)) for s in JobState),
            span(q.oldest_queued_age),
        ]
        if throughput is not None:
            row.append(str(throughput.get(q.queue, 0)))
        if declared is not None:
            config = declared.get(q.queue) or QueueConfig(q.queue)
            runtime = f"{config.max_runtime:g}s -> {escape(config.overflow_to or '')}" if config.max_runtime else ""
            row += [
                "" if config.max_depth is None else str(config.max_depth),
                runtime,
                "" if config.priority is None else str(config.priority),
                escape(_limits_text(config)),
            ]
        table.add_row(*row)
    return table


def _limits_text(config: QueueConfig) -> str:
    """Queue-wide limits in short: ``5 running, 100/m``."""
    parts = []
    if config.concurrency is not None:
        parts.append(f"{config.concurrency} running")
    if config.rate_limit is not None:
        rate = config.rate_limit
        parts.append(rate if isinstance(rate, str) else f"{rate[0]}/{rate[1]:g}s")
    return ", ".join(parts)


def queue_dict(q: QueueStats, declared: QueueConfig | None = None, throughput: int | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "queue": q.queue,
        "paused": q.paused,
        "counts": q.counts,
        "oldest_queued_age": q.oldest_queued_age,
    }
    if throughput is not None:
        out["throughput_per_min"] = throughput
    if declared is not None:
        out["declared"] = declared.to_dict()
    return out


def schedules_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold")
    for column in ("schedule", "task", "when", "next run", "in", "catch up"):
        table.add_column(column)
    for row in rows:
        when_text = f"{row['cron']} ({row['tz']})" if row["cron"] else f"every {row['every']:g}s"
        table.add_row(
            escape(row["name"]),
            escape(row["task"]),
            escape(when_text),
            when(row["next_run"]),
            span(row["next_in"]),
            "yes" if row["catch_up"] else "",
        )
    return table
