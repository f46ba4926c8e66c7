"""conveyor serve: the HTTP job service, optionally with worker nodes beside it.

``--workers N`` starts N ``python -m conveyor worker`` subprocesses on every queue the app
knows, so one command runs the whole system (``make run``); on exit they get SIGTERM and drain.
All processes share a Prometheus multiprocess directory so ``/metrics`` shows the workers' job
counters and run durations too.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import typer

from conveyor.app import Conveyor
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

WORKER_STOP_GRACE = 35.0
PR_SET_PDEATHSIG = 1


def _all_queues(conveyor: Conveyor) -> list[str]:
    return sorted(set(conveyor.queues) | {t.options.queue for t in conveyor.tasks.values()} | {"default"})


def _start_workers(
    spec: str, conveyor: Conveyor, count: int, concurrency: int, resources: str = ""
) -> list[subprocess.Popen[bytes]]:
    queues = ",".join(_all_queues(conveyor))
    command = [sys.executable, "-m", "conveyor", "worker", "--app", spec, "--queues", queues]
    command += ["--concurrency", str(concurrency)]
    if resources:
        command += ["--resources", resources]
    return [subprocess.Popen(command, env=os.environ.copy(), preexec_fn=_die_with_parent) for _ in range(count)]


def _die_with_parent() -> None:
    """In the child: ask Linux to SIGTERM this worker node if `serve` dies, even by SIGKILL."""
    # not glibc Linux: the finally-block in serve() still stops the nodes
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """uvicorn re-raises the signal that stopped it; turn SIGTERM into SystemExit so cleanup runs."""
    raise SystemExit(128 + signum)


def _stop_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM lets each node drain (finish or release its jobs); SIGKILL only after the grace."""
    for proc in workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + WORKER_STOP_GRACE
    for proc in workers:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _banner(url: str, conveyor: Conveyor, auth: bool, workers: int) -> None:
    task = next(iter(sorted(conveyor.tasks)), "TASK")
    auth_header = "" if not auth else ' -H "Authorization: Bearer $CONVEYOR_KEY"'
    typer.secho(f"Conveyor job service on {url}  (engine {conveyor.url}, {workers} worker node(s))", bold=True)
    typer.echo(f"  dashboard  {url}/dashboard/")
    typer.echo(f"  API docs   {url}/docs   (OpenAPI: {url}/v1/openapi.json)")
    typer.echo("  submit     curl -X POST " + f"{url}/v1/jobs{auth_header} -H 'Content-Type: application/json' \\")
    typer.echo(f'                  -d \'{{"task": "{task}", "args": {{...}}}}\'')
    typer.echo(f"  tasks      curl {url}/v1/tasks{auth_header}")
    if auth:
        typer.echo("  keys       conveyor keys create --scope submit --scope read --tenant NAME")


@app.command("serve")
def serve(
    app_spec: str | None = APP_OPTION,
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", "-p", help="TCP port."),
    workers: int = typer.Option(0, "--workers", "-w", help="Worker node subprocesses to start beside the API."),
    concurrency: int | None = typer.Option(
        None, "--concurrency", "-c", help="Executors per worker node (with --workers; default: CPU count)."
    ),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without API keys: everyone is admin. Local use only."),
    max_body: int = typer.Option(1024 * 1024, "--max-body", help="Largest request body in bytes (413 above)."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level."),
    trusted_proxy: list[str] = typer.Option(
        [],
        "--trusted-proxy",
        help="Address of a reverse proxy whose X-Forwarded-Proto/-For are believed (repeat; default: none).",
    ),
    header_timeout: float = typer.Option(10.0, "--header-timeout", help="Seconds a client may take to send headers."),
    body_timeout: float = typer.Option(30.0, "--body-timeout", help="Seconds a request body may take (408 after)."),
    max_streams_per_key: int = typer.Option(
        20, "--max-streams-per-key", help="Concurrent event streams per API key (429 above)."
    ),
    smtp_url: str | None = SMTP_OPTION,
    resources: str = typer.Option(
        "", "--resources", help="What each node started by --workers has, e.g. gpu=1 (see conveyor worker)."
    ),
    max_upload: int = typer.Option(
        5 * 1024**3, "--max-upload", help="Largest file POST /v1/uploads accepts, in bytes (413 above)."
    ),
    upload_timeout: float = typer.Option(
        3600.0, "--upload-timeout", help="Seconds an upload's body may take to arrive (408 after)."
    ),
    results: str | None = RESULTS_OPTION,
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="Base URL clients reach the service at (e.g. https://jobs.example.com); "
        "Location headers are absolute URLs under it. Default: the request's own (or trusted proxies').",
    ),
    queues_config: str | None = QUEUES_CONFIG_OPTION,
) -> None:
    """Serve the HTTP job service (and, with --workers, worker nodes) until Ctrl-C or SIGTERM."""
    if not app_spec:
        raise ConfigError("--app is required (package.module:app, or set CONVEYOR_APP)")
    use_queues_config(queues_config)
    if concurrency is not None and not workers:
        raise ConfigError("--concurrency sets the executors of the worker nodes started by --workers; give --workers N")
    concurrency = concurrency if concurrency is not None else (os.cpu_count() or 1)
    if workers < 0 or concurrency < 1 or max_body < 1 or max_streams_per_key < 1:
        raise ConfigError("--workers must be >= 0, --concurrency, --max-body and --max-streams-per-key >= 1")
    if header_timeout <= 0 or body_timeout <= 0 or upload_timeout <= 0:
        raise ConfigError("--header-timeout, --body-timeout and --upload-timeout must be positive seconds")
    if max_upload < 1:
        raise ConfigError("--max-upload must be >= 1 byte")
    use_smtp(smtp_url)
    if resources:
        parse_resources(resources)  # a bad value is one error line here, not a worker that exits
    conveyor = load_with_results(app_spec, results)
    metrics_dir = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="conveyor-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    # imported only now, so prometheus-client sees the multiprocess directory
    import uvicorn

    from conveyor.api.deps import ServiceConfig
    from conveyor.api.forwarded import behind_proxies
    from conveyor.api.server import create_app
    from conveyor.api.slow import header_protocol

    if no_auth:
        typer.secho(
            "WARNING: --no-auth: the job service accepts every request as an admin. "
            "Anyone who can reach this port can submit, cancel and read every job.",
            fg="red",
            bold=True,
            err=True,
        )
    if public_url is not None and not re.match(r"^https?://[^/?#\s]+(/[^?#\s]*)?$", public_url):
        raise ConfigError(f"--public-url must be an http(s) URL without query or fragment (got {public_url!r})")
    config = ServiceConfig(
        max_body=max_body,
        body_timeout=body_timeout,
        max_streams_per_key=max_streams_per_key,
        public_url=public_url.rstrip("/") if public_url else None,
        max_upload=max_upload,
        upload_timeout=upload_timeout,
    )
    api = create_app(conveyor, auth=not no_auth, config=config)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    nodes = _start_workers(app_spec, conveyor, workers, concurrency, resources) if workers else []
    try:
        _banner(f"http://{host}:{port}", conveyor, not no_auth, workers)
        uvicorn.run(
            behind_proxies(api, trusted_proxy),
            host=host,
            port=port,
            log_level=log_level,
            lifespan="on",
            timeout_graceful_shutdown=5,
            http=header_protocol(header_timeout),
            timeout_keep_alive=5,
            # X-Forwarded-* only from the proxies the operator named (uvicorn trusts 127.0.0.1 by
            # default): behind_proxies applies them, so uvicorn's own handling stays off
            proxy_headers=False,
        )
    finally:
        _stop_workers(nodes)
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
