"""conveyor worker: run a worker node (supervisor + executor processes) on some queues."""

from __future__ import annotations

import asyncio
import os

import typer

from conveyor.cli.common import (
    APP_OPTION,
    QUEUES_CONFIG_OPTION,
    RESULTS_OPTION,
    SMTP_OPTION,
    load_with_results,
    use_queues_config,
    use_smtp,
)
from conveyor.cli.main import app
from conveyor.errors import ConfigError
from conveyor.resources import parse_resources
from conveyor.worker.config import DAY, AutoscaleConfig, MaintenanceConfig, WorkerConfig, default_worker_id
from conveyor.worker.logs import LEVELS, setup_logging


def _queues(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(q.strip() for q in text.split(",")))
    if not names or any(not q for q in names):
        raise ConfigError(f"--queues must be a comma-separated list of queue names, got {text!r}")
    return names


@app.command("worker")
def worker(
    app_spec: str | None = APP_OPTION,
    queues: str = typer.Option("default", "--queues", "-Q", help="Comma-separated queues to serve: default,reports."),
    concurrency: int = typer.Option(
        os.cpu_count() or 1, "--concurrency", "-c", help="Executor processes (the minimum when autoscaling)."
    ),
    max_concurrency: int | None = typer.Option(
        None, "--max-concurrency", help="Autoscale the executor pool between --concurrency and this by backlog."
    ),
    async_concurrency: int = typer.Option(
        100, "--async-concurrency", help="Async (async def) jobs run at once in the supervisor's event loop."
    ),
    lease: float = typer.Option(30.0, "--lease", help="Seconds a claim holds a job without a heartbeat."),
    heartbeat: float | None = typer.Option(None, "--heartbeat", help="Seconds between heartbeats (default lease/3)."),
    grace: float = typer.Option(30.0, "--grace", help="On SIGTERM, seconds running jobs get to finish."),
    worker_id: str | None = typer.Option(None, "--id", help="Node name in job records and logs (default host-pid)."),
    burst: bool = typer.Option(False, "--burst", help="Exit when the queues have no runnable job left."),
    retention_days: float = typer.Option(7.0, "--retention-days", help="Prune finished jobs older than this."),
    reap_interval: float | None = typer.Option(
        None, "--reap-interval", help="Seconds between expired-lease sweeps (default min(5, lease/2))."
    ),
    scale_down_idle: float | None = typer.Option(
        None, "--scale-down-idle", help="With --max-concurrency: idle seconds before the pool shrinks (30)."
    ),
    smtp_url: str | None = SMTP_OPTION,
    resources: str = typer.Option(
        "", "--resources", help="What this node has, e.g. gpu=1,ram=64: it runs jobs of tasks that need them."
    ),
    results: str | None = RESULTS_OPTION,
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    log_format: str = typer.Option("text", "--log-format", help="text (key=value) or json."),
    summary_interval: float = typer.Option(
        60.0, "--summary-interval", help="Seconds between INFO summaries of ended jobs (per-job lines are DEBUG)."
    ),
    registry_interval: float = typer.Option(
        5.0, "--registry-interval", help="Seconds between beats in the worker registry (conveyor workers)."
    ),
    metrics_port: int | None = typer.Option(
        None, "--metrics-port", help="Serve this node's Prometheus metrics on this port (0: any free port)."
    ),
    metrics_host: str = typer.Option("0.0.0.0", "--metrics-host", help="Address the --metrics-port server binds."),
    queues_config: str | None = QUEUES_CONFIG_OPTION,
) -> None:
    """Run a worker node: claim jobs from QUEUES and run them until SIGTERM (or, with --burst, until done)."""
    if not app_spec:
        raise ConfigError("--app is required (package.module:app, or set CONVEYOR_APP)")
    use_queues_config(queues_config)
    if log_level.lower() not in LEVELS:
        raise ConfigError(f"--log-level must be one of {', '.join(LEVELS)}, got {log_level!r}")
    if log_format not in ("text", "json"):
        raise ConfigError(f"--log-format must be text or json, got {log_format!r}")
    if reap_interval is not None and reap_interval <= 0:
        raise ConfigError(f"--reap-interval must be positive seconds, got {reap_interval}")
    if scale_down_idle is not None and (max_concurrency is None or max_concurrency <= concurrency):
        raise ConfigError("--scale-down-idle only applies when autoscaling: give --max-concurrency above --concurrency")
    scale_down_idle = 30.0 if scale_down_idle is None else scale_down_idle
    if scale_down_idle < 0:
        raise ConfigError(f"--scale-down-idle must not be negative, got {scale_down_idle}")
    config = WorkerConfig(
        app_spec=app_spec,
        queues=_queues(queues),
        concurrency=concurrency,
        max_concurrency=max_concurrency,
        async_concurrency=async_concurrency,
        lease=lease,
        heartbeat=heartbeat,
        grace=grace,
        worker_id=worker_id if worker_id is not None else default_worker_id(),
        burst=burst,
        summary_interval=summary_interval,
        registry_interval=registry_interval,
        metrics_port=metrics_port,
        metrics_host=metrics_host,
        resources=parse_resources(resources),
        maintenance=MaintenanceConfig(
            reap_interval=reap_interval or max(0.2, min(5.0, lease / 2)),
            retention=retention_days * DAY,
        ),
        autoscale=AutoscaleConfig(scale_down_idle=scale_down_idle),
    ).validate()
    setup_logging(log_level, log_format)

    from conveyor.worker.supervisor import Worker

    use_smtp(smtp_url)
    conveyor = load_with_results(app_spec, results)
    code = asyncio.run(Worker(conveyor, config).run())
    raise typer.Exit(code)
