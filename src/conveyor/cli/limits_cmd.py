"""conveyor queues limits: the limits the tasks declare, and how full each key is right now.

The engine enforces the limits in the claim (docs/guide-limits.md); this command only reads:
the declarations from the app, the running and queued jobs per key from the engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.markup import escape
from rich.table import Table

from conveyor.app import Conveyor
from conveyor.cli.common import APP_OPTION, URL_OPTION
from conveyor.cli.errors import cli_errors
from conveyor.cli.ops_cmd import JSON_OPTION, queues
from conveyor.cli.render import console, print_json, span
from conveyor.cli.session import opened
from conveyor.limits import KeySpec
from conveyor.types import JobState

PAGE = 500
SCAN_LIMIT = 20_000
"""Running and queued jobs read to count per key (the counts say when they stopped short)."""


def _key(spec: KeySpec) -> str | None:
    if spec is None or isinstance(spec, str):
        return spec
    name = getattr(spec, "__name__", "")
    return "from args" if name in ("", "<lambda>") else f"from args ({name})"


def declared_limits(conveyor: Conveyor) -> list[dict[str, Any]]:
    """One entry per task that declares a limit, in task name order."""
    out = []
    for name in sorted(conveyor.tasks):
        task = conveyor.tasks[name]
        lim = task.options.limits
        if lim.concurrency is None and lim.rate is None and lim.unique_key is None:
            continue
        out.append(
            {
                "task": name,
                "queue": task.options.queue,
                "concurrency": lim.concurrency,
                "concurrency_key": _key(lim.concurrency_key),
                "rate_limit": lim.rate[0] if lim.rate else None,
                "rate_period": lim.rate[1] if lim.rate else None,
                "rate_key": _key(lim.rate_key),
                "unique_key": _key(lim.unique_key),
            }
        )
    return out


def key_usage(conveyor: Conveyor) -> tuple[list[dict[str, Any]], bool]:
    """Per limit key: its limit and the jobs running and queued now; and whether the scan was cut."""
    keys: dict[tuple[str, str], dict[str, Any]] = {}
    seen, cursor = 0, None
    while seen < SCAN_LIMIT:
        page = conveyor.list_jobs(states=[JobState.RUNNING, JobState.QUEUED], limit=PAGE, cursor=cursor)
        for job in page.jobs:
            column = "running" if job.state is JobState.RUNNING else "queued"
            if job.concurrency_key is not None:
                entry = keys.setdefault(
                    ("concurrency", job.concurrency_key), {"limit": f"{job.concurrency_limit} running"}
                )
                entry[column] = entry.get(column, 0) + 1
            if job.rate_key is not None:
                entry = keys.setdefault(("rate", job.rate_key), {"limit": f"{job.rate_limit}/{span(job.rate_period)}"})
                entry[column] = entry.get(column, 0) + 1
        seen += len(page.jobs)
        cursor = page.next_cursor
        if cursor is None:
            break
    rows = [
        {"kind": kind, "key": key, "limit": e["limit"], "running": e.get("running", 0), "queued": e.get("queued", 0)}
        for (kind, key), e in sorted(keys.items())
    ]
    return rows, cursor is not None


def _cell(value: object, fmt: Callable[[Any], str] = str) -> str:
    return "-" if value is None else escape(fmt(value))


@queues.command("limits")
def limits(as_json: bool = JSON_OPTION, app_spec: str | None = APP_OPTION, url: str | None = URL_OPTION) -> None:
    """Limits the tasks declare (concurrency and rate per key, unique keys) and, per key, the
    jobs running and queued now. Without --app only the live keys are shown."""
    with cli_errors(), opened(app_spec, url) as conveyor:
        declared = declared_limits(conveyor)
        usage, cut = key_usage(conveyor)
    if as_json:
        print_json({"declared": declared, "keys": usage, "complete": not cut})
        return
    out = console()
    if declared:
        table = Table(header_style="bold", title="declared")
        for column in ("task", "queue", "concurrency", "per key", "rate", "per key", "unique key"):
            table.add_column(column)
        for d in declared:
            rate = f"{d['rate_limit']}/{span(d['rate_period'])}" if d["rate_limit"] else None
            table.add_row(
                escape(d["task"]),
                escape(d["queue"]),
                _cell(d["concurrency"]),
                _cell(d["concurrency_key"]),
                _cell(rate),
                _cell(d["rate_key"]),
                _cell(d["unique_key"]),
            )
        out.print(table)
    if not usage:
        out.print("no running or queued job carries a limit key")
        return
    table = Table(header_style="bold", title="keys now")
    for column in ("limit", "key", "allows", "running", "queued"):
        table.add_column(column, justify="right" if column in ("running", "queued") else "left")
    for u in usage:
        table.add_row(u["kind"], escape(u["key"]), escape(u["limit"]), str(u["running"]), str(u["queued"]))
    out.print(table)
    if cut:
        out.print(f"[dim]counted the newest {SCAN_LIMIT} running and queued jobs only[/]")
