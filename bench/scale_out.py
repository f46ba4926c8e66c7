"""Scale-out, measured: drain rate with 1, 2 and 3 worker hosts against one PostgreSQL and one Redis.

    sudo python -m bench.scale_out                       # both engines, 1-3 hosts, 3 repeats
    sudo python -m bench.scale_out --engines redis --hosts 1,3 --repeats 5

Each worker host is a network namespace with a veth link (tests/chaos/lab.py), running one
``conveyor worker`` (``--concurrency`` executors, one supervisor) against private engine servers
listening on the lab address (tests/chaos/engines.py; PostgreSQL with pg_stat_statements). Per
(engine, workload, hosts, repeat): a fresh store, the jobs enqueued in bulk first, then the
nodes started; the drain rate is measured between 10 % and 90 % done (polling queue_stats), so
node start-up and the tail are left out. Workloads: ``noop`` (async no-op: the engine and the
supervisors are the bottleneck) and ``cpu`` (sync, ``--cpu-ms`` of CPU per job: the machine's
cores are). Also measured: engine calls per second of idle nodes (leader-free maintenance and
polling: every node promotes, reaps and takes the outbox) at 1 vs 3 hosts, and where the engine
spends its time at saturation (pg_stat_statements; Redis INFO commandstats).

Results: medians of the repeats in bench/results/scale_out.md (and .json with every repeat).
Needs root (namespaces). Not run by the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from tests.chaos.engines import LabPostgres, LabRedis
from tests.chaos.lab import REPO, Host, Lab

from bench.apps.scale_app import make_app
from bench.common import RESULTS_DIR
from conveyor.app import Conveyor

APP = "bench.apps.scale_app:app"


class Store:
    """A fresh store on a lab engine: the URL for this process and for worker hosts."""

    def __init__(self, engine: str, pg: LabPostgres, redis: LabRedis) -> None:
        self.engine = engine
        if engine == "postgres":
            self.name = pg.create_database()
            self.local, self.remote = pg.url(self.name), pg.lab_url(self.name)
        else:
            self.name = f"scale-{uuid.uuid4().hex[:8]}"
            self.local, self.remote = f"{redis.url}?prefix={self.name}", redis.lab_url(self.name)


def start_node(host: Host, url: str, concurrency: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONVEYOR_URL": url, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"}
    args = ["worker", "--app", APP, "--queues", "scale", "--concurrency", str(concurrency), "--log-level", "warning"]
    with open(log, "ab") as out:
        return subprocess.Popen(
            [*host.run_prefix(), sys.executable, "-m", "conveyor", *args],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_nodes(nodes: list[subprocess.Popen[bytes]]) -> None:
    for node in nodes:
        if node.poll() is None:
            os.killpg(node.pid, signal.SIGTERM)
    for node in nodes:
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()


def done_count(app: Conveyor) -> int:
    stats = app.queue_stats()
    return sum(q.counts.get("succeeded", 0) + q.counts.get("failed", 0) for q in stats)


def drain(app: Conveyor, total: int, timeout: float = 600) -> float:
    """Jobs per second between 10 % and 90 % done."""
    low, high = int(total * 0.1), int(total * 0.9)
    t_low = t_high = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        n = done_count(app)
        now = time.monotonic()
        if t_low is None and n >= low:
            t_low, n_low = now, n
        if n >= high:
            t_high, n_high = now, n
            break
        time.sleep(0.05)
    if t_low is None or t_high is None or t_high <= t_low:
        raise RuntimeError(f"did not drain {total} jobs within {timeout} s")
    return (n_high - n_low) / (t_high - t_low)


def run_once(
    engine: str, workload: str, hosts: list[Host], args: argparse.Namespace, pg: LabPostgres, redis: LabRedis
) -> dict[str, Any]:
    store = Store(engine, pg, redis)
    app = make_app(store.local)
    total = args.noop_jobs if workload == "noop" else args.cpu_jobs
    task, task_args = ("scale.noop", {}) if workload == "noop" else ("scale.cpu", {"ms": args.cpu_ms})
    reqs = [app.build_request(task, dict(task_args)) for _ in range(total)]
    for i in range(0, total, 500):
        batch = reqs[i : i + 500]
        app.run_sync(lambda b, batch=batch: b.enqueue_many(batch))
    profile_start = engine_profile(engine, store, pg, redis)
    logs = Path(tempfile.mkdtemp(prefix="scale-"))
    nodes = [start_node(h, store.remote, args.concurrency, logs / f"node{i}.log") for i, h in enumerate(hosts)]
    try:
        rate = drain(app, total)
    finally:
        stop_nodes(nodes)
    profile = profile_delta(profile_start, engine_profile(engine, store, pg, redis))
    app.close()
    drop(store, pg, redis)
    return {"engine": engine, "workload": workload, "hosts": len(hosts), "rate": rate, "profile": profile}


def idle_calls(engine: str, hosts: list[Host], args: argparse.Namespace, pg: LabPostgres, redis: LabRedis) -> float:
    """Engine calls per second made by idle nodes (maintenance + polling), over ``args.idle`` s."""
    store = Store(engine, pg, redis)
    logs = Path(tempfile.mkdtemp(prefix="scale-idle-"))
    nodes = [start_node(h, store.remote, 1, logs / f"node{i}.log") for i, h in enumerate(hosts)]
    try:
        time.sleep(5)  # start-up and migration out of the window
        before = engine_calls(engine, store, pg, redis)
        time.sleep(args.idle)
        after = engine_calls(engine, store, pg, redis)
    finally:
        stop_nodes(nodes)
    drop(store, pg, redis)
    return (after - before) / args.idle


def engine_calls(engine: str, store: Store, pg: LabPostgres, redis: LabRedis) -> float:
    if engine == "postgres":
        import psycopg

        with psycopg.connect(pg.url(store.name), autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = %s", (store.name,)
            )
            return float(row.fetchone()[0])  # type: ignore[index]
    import redis as redis_lib

    client = redis_lib.Redis(port=redis.port)
    try:
        return float(client.info("stats")["total_commands_processed"])
    finally:
        client.close()


def engine_profile(engine: str, store: Store, pg: LabPostgres, redis: LabRedis) -> dict[str, float]:
    """Cumulative engine time per statement / command (ms), to diff around a run."""
    if engine == "postgres":
        import psycopg

        with psycopg.connect(pg.url(store.name), autocommit=True) as conn:
            rows = conn.execute(
                "SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 70), total_exec_time FROM pg_stat_statements "
                "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)",
                (store.name,),
            ).fetchall()
        out: dict[str, float] = {}
        for query, ms in rows:
            out[query] = out.get(query, 0.0) + float(ms)
        return out
    import redis as redis_lib

    client = redis_lib.Redis(port=redis.port)
    try:
        stats = client.info("commandstats")
    finally:
        client.close()
    return {name.removeprefix("cmdstat_"): float(v["usec"]) / 1000 for name, v in stats.items()}


def profile_delta(before: dict[str, float], after: dict[str, float]) -> list[tuple[str, float]]:
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    return sorted(((k, round(v, 1)) for k, v in delta.items() if v > 0), key=lambda kv: -kv[1])[:5]


def drop(store: Store, pg: LabPostgres, redis: LabRedis) -> None:
    if store.engine == "postgres":
        import psycopg

        with psycopg.connect(pg.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{store.name}" WITH (FORCE)')
    else:
        import redis as redis_lib

        client = redis_lib.Redis(port=redis.port)
        keys = list(client.scan_iter(match=f"{store.name}*", count=1000))
        for i in range(0, len(keys), 500):
            client.delete(*keys[i : i + 500])
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default="postgres,redis")
    parser.add_argument("--hosts", default="1,2,3")
    parser.add_argument("--workloads", default="noop,cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="executors per worker node")
    parser.add_argument("--noop-jobs", type=int, default=3000)
    parser.add_argument("--cpu-jobs", type=int, default=150)
    parser.add_argument("--cpu-ms", type=float, default=40.0)
    parser.add_argument("--idle", type=float, default=10.0, help="seconds of the idle-maintenance window")
    args = parser.parse_args()
    engines, counts = args.engines.split(","), [int(n) for n in args.hosts.split(",")]
    lab = Lab().open()
    pg = LabPostgres(lab.engine_ip, "-c shared_preload_libraries=pg_stat_statements -c fsync=on").init()
    redis = LabRedis(Path(tempfile.mkdtemp(prefix="scale-redis-")), lab.engine_ip)
    results: list[dict[str, Any]] = []
    idle: list[dict[str, Any]] = []
    try:
        pg.start()
        with __import__("psycopg").connect(pg.url(), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        pg_template_extension(pg)
        redis.start()
        hosts = [lab.host() for _ in range(max(counts))]
        for repeat in range(args.repeats):
            for engine in engines:
                for workload in args.workloads.split(","):
                    for n in counts:
                        result = run_once(engine, workload, hosts[:n], args, pg, redis)
                        result["repeat"] = repeat
                        results.append(result)
                        print(
                            f"{engine:8} {workload:5} hosts={n} repeat={repeat}: {result['rate']:.0f} jobs/s",
                            flush=True,
                        )
                for n in sorted({1, max(counts)}):
                    calls = idle_calls(engine, hosts[:n], args, pg, redis)
                    idle.append({"engine": engine, "hosts": n, "calls_per_s": calls, "repeat": repeat})
                    print(f"{engine:8} idle  hosts={n} repeat={repeat}: {calls:.1f} engine calls/s", flush=True)
    finally:
        redis.stop()
        pg.destroy()
        lab.close()
    write(results, idle, args)


def pg_template_extension(pg: LabPostgres) -> None:
    """pg_stat_statements is shared; its view must exist in each new database (from template1)."""
    import psycopg

    with psycopg.connect(pg.url("template1"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")


def median_of(rows: list[dict[str, Any]], key: str, **match: Any) -> float:
    values = [r[key] for r in rows if all(r[k] == v for k, v in match.items())]
    return statistics.median(values) if values else float("nan")


def write(results: list[dict[str, Any]], idle: list[dict[str, Any]], args: argparse.Namespace) -> None:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "scale_out.json").write_text(
        json.dumps({"runs": results, "idle": idle, "args": vars(args)}, indent=1)
    )
    counts = sorted({r["hosts"] for r in results})
    lines = [
        f"Scale-out: drain rate (jobs/s, median of {args.repeats}), {args.concurrency} executors per host, "
        f"{os.cpu_count()} CPUs on the machine",
        "",
        "| engine | workload | " + " | ".join(f"{n} host{'s' if n > 1 else ''}" for n in counts) + " |",
        "|---|---|" + "---|" * len(counts),
    ]
    for engine in sorted({r["engine"] for r in results}):
        for workload in sorted({r["workload"] for r in results}):
            base = median_of(results, "rate", engine=engine, workload=workload, hosts=counts[0])
            cells = []
            for n in counts:
                rate = median_of(results, "rate", engine=engine, workload=workload, hosts=n)
                cells.append(f"{rate:.0f} (x{rate / base:.2f})")
            lines.append(f"| {engine} | {workload} | " + " | ".join(cells) + " |")
    lines += ["", "Idle nodes (leader-free maintenance and polling): engine calls per second", ""]
    lines += ["| engine | " + " | ".join(f"{n} hosts" for n in sorted({i["hosts"] for i in idle})) + " |"]
    lines += ["|---|" + "---|" * len({i["hosts"] for i in idle})]
    for engine in sorted({i["engine"] for i in idle}):
        cells = [
            f"{median_of(idle, 'calls_per_s', engine=engine, hosts=n):.1f}" for n in sorted({i["hosts"] for i in idle})
        ]
        lines.append(f"| {engine} | " + " | ".join(cells) + " |")
    lines += ["", "Where the engine spends its time, no-op workload at the most hosts (last repeat, ms):", ""]
    for r in results:
        if r["workload"] == "noop" and r["hosts"] == counts[-1] and r["repeat"] == args.repeats - 1:
            lines.append(f"- {r['engine']}: " + "; ".join(f"`{k}` {v}" for k, v in r["profile"]))
    (RESULTS_DIR / "scale_out.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
