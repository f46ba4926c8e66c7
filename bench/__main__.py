"""``python -m bench``: Conveyor side by side with the libraries users would pick instead.

    python -m bench --quick                          # seconds: conveyor on SQLite, tiny sizes
    python -m bench --engine postgres --repeats 3    # full run, every system of that engine
    python -m bench --engine redis --systems conveyor,celery,rq
    python -m bench --engine http
    python -m bench --setup                          # build the competitors' virtualenvs only

Each (system, repeat) runs in a fresh subprocess with that system's interpreter (see
bench/runner.py); repeats are interleaved across systems so machine noise spreads evenly.
Full runs write bench/results/<engine>.json (raw repeats) and <engine>.md (medians, ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import venvs
from bench.common import RESULTS_DIR, Measurement, save, table
from bench.systems import SYSTEMS, systems_for

ENGINES = ("sqlite", "postgres", "redis", "http")
METRICS: dict[str, tuple[str, bool]] = {  # metric -> (unit, higher is better)
    "enqueue_single_per_s": ("jobs/s", True),
    "enqueue_batch_per_s": ("jobs/s", True),
    "drain_1proc_per_s": ("jobs/s", True),
    "drain_2proc_per_s": ("jobs/s", True),
    "drain_1proc_history_per_s": ("jobs/s", True),
    "pickup_p50_ms": ("ms", False),
    "pickup_p99_ms": ("ms", False),
    "worker_rss_mb": ("MiB", False),
}


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def conveyor_engine_built(engine: str) -> bool:
    module = {"sqlite": "sqlite", "postgres": "postgres", "redis": "redis"}[engine]
    try:
        __import__(f"conveyor.backend.{module}.backend")
    except ImportError:
        return False
    return True


def engine_problem(engine: str) -> str | None:
    """Why an engine's server cannot be used now (None when it can)."""
    if engine == "postgres" and not _reachable(5432):
        return "PostgreSQL is not running on 127.0.0.1:5432"
    if engine == "redis" and not _reachable(6379):
        return "Redis is not running on 127.0.0.1:6379"
    return None


def run_system(system: str, engine: str, args: argparse.Namespace, log: Path) -> dict[str, Any]:
    """One repeat of one system on one engine, in that system's interpreter."""
    python = venvs.python_for(system)
    if python is None:
        if args.no_install:
            return {"errors": {"setup": f"no virtualenv for {system}; run python -m bench --setup"}}
        try:
            python = venvs.ensure(system, log=log)
        except Exception as exc:  # one competitor that will not install must not stop the run
            return {"errors": {"setup": f"could not install {system}: {exc}"}}
    cmd = [str(python), "-m", "bench.runner", "--system", system, "--engine", engine]
    cmd += ["--jobs", str(args.jobs), "--single", str(args.single), "--samples", str(args.samples)]
    cmd += ["--concurrency", str(args.concurrency), "--deadline", str(args.deadline)]
    if args.history and engine == "postgres" and system == "conveyor":
        cmd += ["--history", str(args.history)]
    env = os.environ | {"PYTHONPATH": str(venvs.ROOT)}
    with open(log, "a") as err:
        err.write(f"\n=== {time.strftime('%H:%M:%S')} {' '.join(cmd)}\n")
        err.flush()
        proc = subprocess.run(cmd, cwd=venvs.ROOT, env=env, stdout=subprocess.PIPE, stderr=err, text=True)
    lines = proc.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"errors": {"run": f"runner exited {proc.returncode} without a result; see {log}"}}
    return result


def bench_engine(engine: str, systems: list[str], args: argparse.Namespace) -> list[Measurement]:
    log = args.results_dir / f"{engine}.log"
    args.results_dir.mkdir(parents=True, exist_ok=True)
    found: dict[tuple[str, str], Measurement] = {}
    notes: dict[str, dict[str, str]] = {}
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for system in systems:
            started = time.monotonic()
            load_before = os.getloadavg()[0]
            result = run_system(system, engine, args, log)
            took = time.monotonic() - started
            runs.append(
                {"system": system, "repeat": repeat + 1, "seconds": round(took, 1)}
                | {"load1_before": load_before, "load1_after": os.getloadavg()[0]}
            )
            for metric, value in result.get("metrics", {}).items():
                unit, higher = METRICS.get(metric, ("", True))
                m = found.setdefault((system, metric), Measurement(system, engine, metric, [], unit, higher))
                m.values.append(float(value))
            merged = notes.setdefault(system, {})
            merged.update(result.get("notes", {}))
            for phase, error in result.get("errors", {}).items():
                merged[f"error:{phase}"] = error
            print(
                f"[{engine}] repeat {repeat + 1}/{args.repeats} {system}: {took:.0f}s "
                + ", ".join(f"{k}={v:,.1f}" for k, v in result.get("metrics", {}).items())
                + (f"  errors: {result['errors']}" if result.get("errors") else ""),
                flush=True,
            )
    order = {name: i for i, name in enumerate(METRICS)}
    measurements = sorted(found.values(), key=lambda m: (order.get(m.metric, 99), m.system))
    settings = {k: v for k, v in vars(args).items() if k in ("jobs", "single", "samples", "concurrency", "repeats")}
    extra: dict[str, object] = {"notes": notes, "settings": settings, "runs": runs}
    path = save(engine, measurements, directory=args.results_dir, extra=extra)
    markdown = table(measurements) + "\n" + noise_md(measurements, runs) + _notes_md(notes)
    (args.results_dir / f"{engine}.md").write_text(markdown + "\n")
    print(f"\n{markdown}\nwrote {path}\n", flush=True)
    return measurements


def noise_md(measurements: list[Measurement], runs: list[dict[str, Any]]) -> str:
    """How much repeats disagreed and how busy the machine was: the reader's error bars."""
    spreads = sorted((max(m.values) - min(m.values)) / m.median for m in measurements if len(m.values) > 1 and m.median)
    loads = [r["load1_before"] for r in runs] + [r["load1_after"] for r in runs]
    lines = []
    if spreads:
        mid = spreads[len(spreads) // 2]
        lines.append(f"\nSpread of repeats ((max - min) / median): median {mid:.0%}, worst {spreads[-1]:.0%}.")
    if loads:
        lines.append(f"\n1-minute load average during the runs: {min(loads):.1f} to {max(loads):.1f} (2 cores).")
    return "\n".join(lines) + "\n"


def _notes_md(notes: dict[str, dict[str, str]]) -> str:
    lines = [f"- **{system}** {key}: {text}" for system, items in notes.items() for key, text in items.items()]
    return ("\nNotes:\n" + "\n".join(lines)) if lines else ""


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 repeat, conveyor only (smoke run)")
    parser.add_argument("--engine", default="sqlite", choices=(*ENGINES, "all"))
    parser.add_argument("--systems", default=None, help="comma-separated; default: every system of the engine")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=None, help="jobs per drain (default 20000)")
    parser.add_argument("--single", type=int, default=None, help="jobs for the one-by-one enqueue (default 2000)")
    parser.add_argument("--samples", type=int, default=None, help="pickup-latency probes (default 100)")
    parser.add_argument("--concurrency", type=int, default=8, help="jobs in flight per worker node")
    parser.add_argument("--history", type=int, default=None, help="finished jobs in history (postgres, conveyor)")
    parser.add_argument(
        "--deadline", type=float, default=60.0, help="seconds per drain; a slower system's rate is taken over them"
    )
    parser.add_argument("--http-engines", default="sqlite,postgres,redis", help="engines behind conveyor serve")
    parser.add_argument("--http-seconds", type=float, default=None, help="seconds per concurrency level (default 10)")
    parser.add_argument("--results-dir", type=Path, default=None)
    parser.add_argument("--no-install", action="store_true", help="do not build missing competitor venvs")
    parser.add_argument("--setup", action="store_true", help="build every competitor's virtualenv and exit")
    args = parser.parse_args(argv)
    quick = args.quick
    args.repeats = args.repeats or (1 if quick else 3)
    args.jobs = args.jobs or (200 if quick else 20_000)
    args.single = args.single or (100 if quick else 2_000)
    args.samples = args.samples or (5 if quick else 100)
    args.http_seconds = args.http_seconds or (2.0 if quick else 10.0)
    if args.history is None:
        args.history = 2_000 if quick else 1_000_000
    args.results_dir = args.results_dir or (RESULTS_DIR / "raw" if quick else RESULTS_DIR)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.setup:
        for system in SYSTEMS:
            if not system.startswith("conveyor"):
                print(system, venvs.ensure(system, log=venvs.VENVS / "install.log"), flush=True)
        return 0
    engines = [e for e in ENGINES if e != "http"] + ["http"] if args.engine == "all" else [args.engine]
    failed = False
    for engine in engines:
        problem = engine_problem(engine) if engine != "http" else None
        if problem:
            print(f"[{engine}] skipped: {problem}", flush=True)
            continue
        if engine == "http":
            from bench.http_bench import bench_http

            bench_http(args)
            continue
        wanted = args.systems.split(",") if args.systems else (["conveyor"] if args.quick else systems_for(engine))
        unknown = [s for s in wanted if s not in SYSTEMS]
        if unknown:
            print(f"unknown systems: {', '.join(unknown)} (known: {', '.join(SYSTEMS)})", file=sys.stderr)
            return 2
        systems = [s for s in wanted if engine in SYSTEMS[s][1]]
        if not conveyor_engine_built(engine):
            dropped = [s for s in systems if s.startswith("conveyor")]
            if dropped:
                print(f"[{engine}] Conveyor's {engine} engine is not in this tree: skipping {dropped}", flush=True)
            systems = [s for s in systems if not s.startswith("conveyor")]
        if not systems:
            print(f"[{engine}] nothing to run", flush=True)
            continue
        measurements = bench_engine(engine, systems, args)
        failed = failed or not measurements
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
