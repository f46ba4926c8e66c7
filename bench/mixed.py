"""``python -m bench.mixed``: does a stream of short jobs keep its queue wait when long jobs arrive?

    python -m bench.mixed --quick --engine sqlite       # ~1-2 minutes, scaled-down durations
    python -m bench.mixed --engine all                   # longer stream and long jobs, every engine

One "fast" worker node (2 executors, queue ``fast``) and one "slow" node (1 executor, queue
``slow``), real ``conveyor worker`` processes. A stream of short jobs arrives on ``fast`` at a
quarter of the fast node's nominal capacity (after a warm-up that boots every executor and opens
its engine connection); a quarter of the way in, two long
jobs arrive on ``fast`` too (as many as the fast node has executors). Four variants, each on a fresh store:

* ``baseline``: the stream alone (no long jobs): the wait to keep.
* ``no move``: long jobs with no ``max_runtime`` on ``fast``: they hold both executors to the end.
* ``move``: ``fast`` has ``max_runtime`` and ``overflow_to = "slow"``: the long jobs are moved
  after ``max_runtime`` (no attempt charged) and resume from their checkpoint on the slow node.
* ``declared``: the long task declares ``expected_runtime``: submitted straight to ``slow``.

Durations are scaled down so a run takes minutes, not hours (the issue's 1 s jobs and 5 min jobs):
a short job is 0.2 s, a long job 6 s (quick) or 30 s, ``max_runtime`` 1 s. The queue wait of a
short job is ``started_at - created_at`` on the engine clock. Results: ``<results>/mixed.json``
and ``mixed.md`` (the table in docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.apps.mixed_app import make_app
from bench.common import RESULTS_DIR, percentile
from conveyor.queues import load_queues_config
from conveyor.types import JobState

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.apps.mixed_app:app"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
VARIANTS = ("baseline", "no move", "move", "declared")
SHORT = 0.2
MAX_RUNTIME = 1.0
FAST_EXECUTORS = 2
LOAD = 0.25
"""Arrival rate of the short jobs as a share of the fast node's nominal capacity: a quarter,
so a loaded 2-core machine still keeps up with the stream alone (the baseline)."""
MOVING = ("move", "declared")
"""The variants whose "fast" queue declares max_runtime and overflow_to."""


def queues_config(variant: str, max_runtime: float) -> str:
    if variant not in MOVING:
        return ""
    return f'[queues.fast]\nmax_runtime = {max_runtime}\noverflow_to = "slow"\n'


@dataclass
class Row:
    engine: str
    variant: str
    short_jobs: int
    wait_p50_ms: float
    wait_p99_ms: float
    wait_max_ms: float
    long_turnaround_s: float | None
    long_moves: int
    long_resumed_from: list[int]
    load1: float
    """The machine's 1-minute load average when the variant ended (2 cores: above 2 is contended)."""


@contextmanager
def fresh_store(engine: str, tmp: Path) -> Iterator[str]:
    """A URL to an empty store of ``engine``, dropped afterwards."""
    if engine == "sqlite":
        yield f"sqlite:///{tmp / 'mixed.db'}"
        return
    if engine == "postgres":
        import psycopg

        name = f"conveyor_bench_mixed_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql://postgres@127.0.0.1:5432/{name}"
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    prefix = f"bench_mixed_{uuid.uuid4().hex[:10]}"
    try:
        yield f"redis://127.0.0.1:6379/0?prefix={prefix}"
    finally:
        import redis

        client = redis.Redis(host="127.0.0.1", port=6379)
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            client.delete(key)


def start_node(url: str, queue: str, concurrency: int, config: str | None, log: Path) -> subprocess.Popen[bytes]:
    env = os.environ | {"BENCH_URL": url, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    args = [sys.executable, "-m", "conveyor", "worker", "--app", APP, "--queues", queue]
    node_id = queue.split(",")[0] + "-node"
    args += ["--concurrency", str(concurrency), "--lease", "10", "--heartbeat", "1", "--id", node_id]
    args += ["--log-level", os.environ.get("BENCH_LOG_LEVEL", "info")]
    if config:
        args += ["--queues-config", config]
    with open(log, "ab") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def run_variant(
    engine: str, variant: str, seconds: float, long_seconds: float, max_runtime: float, tmp: Path, logs: Path
) -> Row:
    with fresh_store(engine, tmp) as url:
        config_path: str | None = None
        app = make_app(url)
        if variant in MOVING:
            path = tmp / f"queues-{variant.replace(' ', '-')}.toml"
            path.write_text(queues_config(variant, max_runtime))
            config_path = str(path)
            app.declare_queues(load_queues_config(path))
        app.migrate()
        log = logs / f"{engine}-{variant.replace(' ', '-')}.log"
        nodes = [
            start_node(url, "fast,warm", FAST_EXECUTORS, config_path, log),
            start_node(url, "slow", 1, config_path, log),
        ]
        try:
            wait_for(lambda: log.exists() and log.read_text().count("worker.start") >= 2, 120, "both nodes to start")
            short_task, long_task = app.get_task("mixed.short"), app.get_task("mixed.long")
            if variant == "declared":
                long_task = app.get_task("mixed.long_declared")
            # warm-up: every executor has booted and opened its engine connection (the steady state
            # of long-lived executors) before the measured stream starts
            warm_task = app.get_task("mixed.warm")
            warm = [warm_task.enqueue(seconds=0.3).id for _ in range(FAST_EXECUTORS * 3)]
            wait_for(lambda: all(_done(app, j) for j in warm), 120, "the warm-up jobs")
            rate = FAST_EXECUTORS / SHORT * LOAD
            total = int(seconds * rate)
            shorts: list[str] = []
            longs: list[str] = []
            began = time.monotonic()
            for i in range(total):
                due = began + i / rate
                time.sleep(max(0.0, due - time.monotonic()))  # pacing the arrivals, not synchronising
                shorts.append(short_task.enqueue(seconds=SHORT).id)
                if variant != "baseline" and i == total // 4:
                    longs += [long_task.enqueue(seconds=long_seconds).id for _ in range(FAST_EXECUTORS)]
            deadline = seconds + long_seconds * 3 + 120
            wait_for(lambda: all(_done(app, j) for j in shorts + longs), deadline, "every job to finish")
            waits = []
            for job_id in shorts:
                job = app.get(job_id)
                assert job is not None and job.started_at is not None
                waits.append((job.started_at - job.created_at) * 1000)
            turnaround, moves, resumed = _longs(app, longs)
            return Row(
                engine,
                variant,
                len(shorts),
                round(percentile(waits, 50), 1),
                round(percentile(waits, 99), 1),
                round(max(waits), 1),
                turnaround,
                moves,
                resumed,
                round(os.getloadavg()[0], 1),
            )
        finally:
            for node in nodes:
                node.send_signal(signal.SIGTERM)
            for node in nodes:
                try:
                    node.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    node.kill()
            app.close()


def _done(app: Any, job_id: str) -> bool:
    job = app.get(job_id)
    if job is None or job.state in (JobState.FAILED, JobState.CANCELED):
        raise RuntimeError(f"job {job_id} ended {job.state if job else 'missing'}: {job.error if job else ''}")
    return bool(job.state is JobState.SUCCEEDED)


def _longs(app: Any, longs: list[str]) -> tuple[float | None, int, list[int]]:
    if not longs:
        return None, 0, []
    jobs = [app.get(j) for j in longs]
    turnaround = max(j.finished_at - j.created_at for j in jobs)
    moves = sum(1 for j in longs for e in app.events(j) if e.data.get("reason") == "moved")
    resumed = [int((j.result or {}).get("resumed_from", 0)) for j in jobs]
    return round(turnaround, 1), moves, resumed


def markdown(rows: list[Row], long_seconds: float, max_runtime: float) -> str:
    lines = [
        f"Short jobs {SHORT:g} s at {LOAD:.0%} of the fast node's capacity; "
        f"{FAST_EXECUTORS} long jobs of {long_seconds:g} s arrive a quarter of the way in; "
        f"max_runtime {max_runtime:g} s on `fast` (move, declared).",
        "",
        "| engine | variant | short jobs | wait p50 | wait p99 | wait max | long jobs done after | moves "
        "| resumed from step | load |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        long_done = "-" if r.long_turnaround_s is None else f"{r.long_turnaround_s:g} s"
        resumed = ", ".join(map(str, r.long_resumed_from)) or "-"
        lines.append(
            f"| {r.engine} | {r.variant} | {r.short_jobs} | {r.wait_p50_ms:,.0f} ms | {r.wait_p99_ms:,.0f} ms "
            f"| {r.wait_max_ms:,.0f} ms | {long_done} | {r.long_moves} | {resumed} | {r.load1:g} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mixed", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 12 s stream and 6 s long jobs")
    parser.add_argument("--engine", default="sqlite", choices=("sqlite", "postgres", "redis", "all"))
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--max-runtime", type=float, default=MAX_RUNTIME, help="max_runtime of fast (move, declared)")
    args = parser.parse_args(argv)
    seconds, long_seconds = (12.0, 6.0) if args.quick else (40.0, 30.0)
    engines = ["sqlite", "postgres", "redis"] if args.engine == "all" else [args.engine]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(sorted(unknown))}; known: {', '.join(VARIANTS)}")
    results = args.results_dir or (RESULTS_DIR / "raw" if args.quick else RESULTS_DIR)
    (results / "logs").mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-mixed-") as tmp:
        for engine in engines:
            for variant in variants:
                row = run_variant(engine, variant, seconds, long_seconds, args.max_runtime, Path(tmp), results / "logs")
                print(json.dumps(asdict(row)), flush=True)
                rows.append(row)
    (results / "mixed.json").write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    table = markdown(rows, long_seconds, args.max_runtime)
    (results / "mixed.md").write_text(table)
    print("\n" + table, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
