"""Fan-out benchmark: N chunk jobs and ONE fan-in, on each engine, with a real worker node.

    python -m bench.fanout --quick                        # SQLite, 100 chunks, one repeat (results/raw)
    python -m bench.fanout --engines sqlite,postgres,redis --chunks 1000 --repeats 3

Per run (fresh store): enqueue the workflow with ``app.fan_out`` (one engine call), start one
``conveyor worker`` on queue ``fanout``, wait for the fan-in to succeed, then read from the
engine (engine clock, so no clock of this process is involved):

* ``release_ms``: the fan-in's ``queued`` event minus the last chunk's ``finished_at``: 0 when
  the release happens in the completing transaction, as it must;
* ``fan_in_start_ms``: the fan-in's ``started_at`` (claimed by the worker) minus the last
  chunk's ``finished_at``: what a user waits between "all chunks done" and "fan-in running";
* ``enqueue_ms``: the one ``fan_out`` call; ``total_s``: first chunk start to fan-in end.

Also checked every run: exactly one fan-in ran (one ``running`` event, attempts == 1) and its
result is the sum over all chunks. Results: bench/results/fanout.json (raw repeats) and the
medians printed as a table (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import RESULTS_DIR, Measurement, save, table
from bench.systems.base import System

ROOT = Path(__file__).resolve().parent.parent
APP = "bench.apps.conveyor_fanout_app:app"


class _Namespace(System):
    """A fresh store per run (database per run, or a Redis key prefix of its own)."""

    name = "fanout"
    redis_prefixed = True


def one_run(engine: str, chunks: int, chunk_size: int, log: Path, deadline_s: float) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fanout-"))
    ns = _Namespace(engine, workdir, 1)
    ns.setup()
    url = ns.url if engine != "redis" else f"{ns.url}?prefix={ns.redis_prefix}"
    os.environ["BENCH_URL"] = url
    from bench.apps import conveyor_fanout_app as mod
    from conveyor.types import JobState

    app = mod.app
    app.url = url  # this run's store (the app was closed after the previous run)
    worker = None
    try:
        items = list(range(chunks * chunk_size))
        began = time.perf_counter()
        wf = app.fan_out(app.get_task("fanout.chunk"), items, chunk_size=chunk_size, then=mod.total.s())
        enqueue_ms = (time.perf_counter() - began) * 1000
        path = os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")]))
        env = os.environ | {"BENCH_URL": url, "PYTHONPATH": path}
        cmd = [sys.executable, "-m", "conveyor", "worker", "--app", APP, "--queues", "fanout"]
        cmd += ["--concurrency", "1", "--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")]
        with open(log, "a") as out:
            out.write(f"\n=== {time.strftime('%H:%M:%S')} fanout/{engine} chunks={chunks}: {' '.join(cmd)}\n")
            out.flush()
            worker = subprocess.Popen(
                cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        fan_in_id = wf.last.id
        end = time.monotonic() + deadline_s
        while True:
            fan_in = app.get(fan_in_id)
            assert fan_in is not None
            if fan_in.terminal:
                break
            if time.monotonic() > end:
                raise RuntimeError(f"fan-in still {fan_in.state} after {deadline_s} s")
            time.sleep(0.05)
        if fan_in.state is not JobState.SUCCEEDED or fan_in.result != chunks * chunk_size:
            raise RuntimeError(f"fan-in {fan_in.state}, result {fan_in.result!r}")
        finished = [app.get(j.id) for j in wf.jobs[:-1]]
        last_done = max(j.finished_at or 0.0 for j in finished if j is not None)
        first_start = min(j.started_at or 0.0 for j in finished if j is not None)
        events = app.events(fan_in_id)
        released = next(e.at for e in events if e.state is JobState.QUEUED)
        runs = sum(1 for e in events if e.state is JobState.RUNNING)
        if runs != 1 or fan_in.attempts != 1:
            raise RuntimeError(f"the fan-in ran {runs} times")
        assert fan_in.started_at is not None and fan_in.finished_at is not None
        return {
            "release_ms": (released - last_done) * 1000,
            "fan_in_start_ms": (fan_in.started_at - last_done) * 1000,
            "enqueue_ms": enqueue_ms,
            "total_s": fan_in.finished_at - first_start,
        }
    finally:
        if worker is not None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        app.close()
        ns.teardown()
        shutil.rmtree(workdir, ignore_errors=True)


UNITS = {"release_ms": "ms", "fan_in_start_ms": "ms", "enqueue_ms": "ms", "total_s": "s"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__.split("\n")[0])
    parser.add_argument("--engines", default="sqlite,postgres,redis")
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--chunk-size", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=600.0, help="seconds one run may take")
    parser.add_argument("--quick", action="store_true", help="SQLite, 100 chunks, one repeat")
    parser.add_argument("--results-dir", type=Path, default=None, help="default bench/results (quick: .../raw)")
    args = parser.parse_args(argv)
    if args.quick:
        args.engines, args.chunks, args.repeats = "sqlite", 100, 1
    args.results_dir = args.results_dir or (RESULTS_DIR / "raw" if args.quick else RESULTS_DIR)
    args.results_dir.mkdir(parents=True, exist_ok=True)
    log = args.results_dir / "fanout.log"
    found: dict[tuple[str, str], Measurement] = {}
    failed = False
    for repeat in range(args.repeats):
        for engine in args.engines.split(","):
            try:
                metrics = one_run(engine, args.chunks, args.chunk_size, log, args.deadline)
            except Exception as exc:  # recorded; the other engines still run
                print(f"[fanout/{engine}] repeat {repeat + 1}: failed: {exc}", flush=True)
                failed = True
                continue
            print(f"[fanout/{engine}] repeat {repeat + 1}/{args.repeats}: {metrics}", flush=True)
            for metric, value in metrics.items():
                m = found.setdefault(
                    (engine, metric),
                    Measurement("conveyor", f"fanout/{engine}", metric, [], UNITS[metric], False),
                )
                m.values.append(value)
    measurements = list(found.values())
    settings = {"chunks": args.chunks, "chunk_size": args.chunk_size, "repeats": args.repeats, "concurrency": 1}
    path = save("fanout", measurements, directory=args.results_dir, extra={"settings": settings})
    markdown = table(measurements)
    (args.results_dir / "fanout.md").write_text(markdown + "\n")
    print(f"\n{markdown}\nwrote {path}\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
