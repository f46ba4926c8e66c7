"""The HTTP benchmark: ``conveyor serve`` on each engine, loaded by a separate process.

For each engine (a fresh SQLite file / PostgreSQL database / Redis database index) and repeat:
start ``conveyor serve --app bench.apps.conveyor_app:app --no-auth --port P`` (one uvicorn
process, no worker: only submission is measured), wait for /healthz, then run
``python -m bench.http_load`` at 1, 32 and 128 concurrent keep-alive clients. Metrics per level:
accepted submits per second (202s only) and request latency p50/p99.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.common import Measurement, save, table
from bench.systems.base import System

ROOT = Path(__file__).resolve().parent.parent
LEVELS = (1, 32, 128)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"conveyor serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("conveyor serve did not become healthy")


class _Namespace(System):
    """Reuses the adapters' fresh-namespace logic (database per run, emptied Redis index)."""

    name = "http"
    redis_prefixed = True


def one_run(engine: str, args: argparse.Namespace, log: Path) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    ns = _Namespace(engine, workdir, args.concurrency)
    ns.setup()
    url = ns.url if engine != "redis" else f"{ns.url}?prefix={ns.redis_prefix}"
    port = free_port()
    env = os.environ | {"BENCH_URL": url, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "conveyor", "serve", "--app", "bench.apps.conveyor_app:app", "--no-auth"]
    cmd += ["--port", str(port), "--log-level", "warning"]
    metrics: dict[str, float] = {}
    with open(log, "a") as out:
        out.write(f"\n=== {time.strftime('%H:%M:%S')} http/{engine}: {' '.join(cmd)}\n")
        out.flush()
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_healthy(port, server)
            for level in LEVELS:
                load = [sys.executable, "-m", "bench.http_load", "--port", str(port), "--concurrency", str(level)]
                load += ["--seconds", str(args.http_seconds), "--warmup", str(min(1.0, args.http_seconds / 2))]
                proc = subprocess.run(load, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
                out.write(proc.stderr)
                result = json.loads(proc.stdout.strip().splitlines()[-1])
                out.write(json.dumps(result) + "\n")
                metrics[f"submit_c{level}_per_s"] = float(result["accepted_per_s"])
                metrics[f"submit_c{level}_p50_ms"] = float(result["p50_ms"])
                metrics[f"submit_c{level}_p99_ms"] = float(result["p99_ms"])
                bad = {k: v for k, v in result["statuses"].items() if k != "202"}
                if bad:
                    out.write(f"non-202 answers at c={level}: {bad}\n")
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            ns.teardown()
            shutil.rmtree(workdir, ignore_errors=True)
    return metrics


def bench_http(args: argparse.Namespace) -> list[Measurement]:
    from bench.__main__ import conveyor_engine_built, engine_problem

    args.results_dir.mkdir(parents=True, exist_ok=True)
    log = args.results_dir / "http.log"
    engines = [e for e in args.http_engines.split(",") if conveyor_engine_built(e) and engine_problem(e) is None]
    found: dict[tuple[str, str], Measurement] = {}
    for repeat in range(args.repeats):
        for engine in engines:
            try:
                metrics = one_run(engine, args, log)
            except Exception as exc:  # recorded, the other engines still run
                print(f"[http/{engine}] repeat {repeat + 1}: failed: {exc}", flush=True)
                continue
            print(f"[http/{engine}] repeat {repeat + 1}/{args.repeats}: " + json.dumps(metrics), flush=True)
            for metric, value in metrics.items():
                unit, higher = ("jobs/s", True) if metric.endswith("_per_s") else ("ms", False)
                m = found.setdefault(
                    (engine, metric), Measurement("conveyor", f"http/{engine}", metric, [], unit, higher)
                )
                m.values.append(value)
    measurements = list(found.values())
    settings = {"seconds_per_level": args.http_seconds, "levels": LEVELS, "repeats": args.repeats}
    path = save("http", measurements, directory=args.results_dir, extra={"settings": settings})
    markdown = table(measurements)
    (args.results_dir / "http.md").write_text(markdown + "\n")
    print(f"\n{markdown}\nwrote {path}\n", flush=True)
    return measurements
