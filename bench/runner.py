"""Measure one system on one engine, once; run in that system's interpreter by bench/__main__.py.

Phases, each in a fresh namespace so they cannot disturb one another:

1. ``enqueue_single``: n_single jobs, one call each, from one client; no worker running.
2. ``drain 1 proc``: n jobs enqueued in batches (timed: ``enqueue_batch``), then one worker node
   started; drain rate = (n - 1) / (last finish - first finish), so worker start-up time is
   not counted. Peak RSS of the worker's whole process tree is sampled meanwhile.
3. ``drain 2 procs``: the same with two worker nodes.
4. ``pickup``: one idle worker node; a probe job stamped with time.time() just before its
   enqueue call, recorded by the task on arrival; random 0.05-0.55 s pauses between probes so
   polling systems (arq polls every 0.5 s) are caught at every phase of their poll interval.

Prints one JSON object on the last line of stdout: {"metrics": {...}, "notes": {...}, "errors": {...}}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.apps import record
from bench.common import percentile, tree_rss_mb
from bench.systems import load
from bench.systems.base import NotSupported, System

ROOT = Path(__file__).resolve().parent.parent
BATCH = 500


class Workers:
    """k worker nodes as real processes, each in its own session so the whole tree can be stopped."""

    def __init__(self, system: System, count: int, files: dict[str, str]) -> None:
        env = os.environ | system.worker_env() | files
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
        self.procs: list[subprocess.Popen[bytes]] = []
        self.log = open(system.workdir / f"worker-{system.name}.log", "ab")  # noqa: SIM115 - closed in stop
        for _ in range(count):
            self.procs.append(
                subprocess.Popen(
                    system.worker_command(),
                    cwd=ROOT,
                    env=env,
                    stdout=self.log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def rss_mb(self) -> float:
        return sum(tree_rss_mb(p.pid) for p in self.procs)

    def check_alive(self) -> None:
        for p in self.procs:
            if p.poll() is not None:
                raise RuntimeError(f"worker exited early with code {p.returncode}; see {self.log.name}")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it may exit between poll and kill
                    os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        for p in self.procs:  # executor children left behind in the group
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
        self.log.close()


def wait_count(count: Any, target: int, deadline_s: float, workers: Workers | None, on_tick: Any = None) -> bool:
    end = time.monotonic() + deadline_s
    while count() < target:
        if time.monotonic() > end:
            return False
        if workers is not None:
            workers.check_alive()
        if on_tick is not None:
            on_tick()
        time.sleep(0.02)
    return True


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix=f"bench-{args.system}-", dir=args.workdir))
        self.system = load(args.system)(args.engine, self.workdir, args.concurrency)
        self.system.name = args.system
        self.metrics: dict[str, float] = {}
        self.notes: dict[str, str] = {}
        self.errors: dict[str, str] = {}

    def files(self, tag: str) -> dict[str, str]:
        return {
            record.DONE_ENV: str(self.workdir / f"done-{tag}.bin"),
            record.PICKUP_ENV: str(self.workdir / f"pickup-{tag}.bin"),
        }

    def phase(self, name: str, fn: Any) -> None:
        self.system.setup()
        try:
            fn()
        except NotSupported as exc:
            self.notes[name] = str(exc)
        except Exception as exc:
            self.errors[name] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc(file=sys.stderr)
        finally:
            self.system.teardown()

    def enqueue_single(self) -> None:
        n = self.args.single
        start = time.perf_counter()
        self.system.enqueue_single(n)
        self.metrics["enqueue_single_per_s"] = n / (time.perf_counter() - start)

    def fill(self, n: int) -> None:
        """Enqueue n no-op jobs the fastest way the library offers; time it if that is a batch API."""
        try:
            start = time.perf_counter()
            for i in range(0, n, BATCH):
                self.system.enqueue_batch(min(BATCH, n - i))
            self.metrics.setdefault("enqueue_batch_per_s", n / (time.perf_counter() - start))
        except NotSupported as exc:
            self.notes["enqueue_batch_per_s"] = str(exc)
            self.system.enqueue_single(n)

    def drain(self, procs: int, metric: str, history: int = 0) -> None:
        n = self.args.jobs
        if history:
            self.system.add_history(history)  # type: ignore[attr-defined]
        self.fill(n)
        files = self.files(metric)
        os.environ.update(files)  # the in-process producer of some adapters needs none; harmless
        workers = Workers(self.system, procs, files)
        peak = [0.0]
        last = [0.0]

        def sample() -> None:
            now = time.monotonic()
            if now - last[0] > 0.25:
                last[0] = now
                peak[0] = max(peak[0], workers.rss_mb())

        try:
            finished = wait_count(
                lambda: record.count_done(files[record.DONE_ENV]), n, self.args.deadline, workers, sample
            )
        finally:
            sample()
            workers.stop()
        stamps = record.read_done(files[record.DONE_ENV]) if Path(files[record.DONE_ENV]).exists() else []
        if len(stamps) < 2:
            raise RuntimeError(f"only {len(stamps)} of {n} jobs finished")
        rate = (len(stamps) - 1) / (max(stamps) - min(stamps))
        self.metrics[metric] = rate
        if not finished:
            self.notes[metric] = f"timed out after {self.args.deadline:.0f}s with {len(stamps)}/{n} done"
        if procs == 1 and not history:
            self.metrics["worker_rss_mb"] = peak[0]

    def pickup(self) -> None:
        files = self.files("pickup")
        path = files[record.PICKUP_ENV]
        workers = Workers(self.system, 1, files)
        try:
            self.system.enqueue_probe(0.0)  # warm-up: the worker is up once this one arrives
            if not wait_count(lambda: len(record.read_pickups(path)), 1, 120, workers):
                raise RuntimeError("worker never picked up the warm-up probe")
            time.sleep(0.5)
            for i in range(self.args.samples):
                time.sleep(random.uniform(0.05, 0.55))
                self.system.enqueue_probe(time.time())
                if not wait_count(lambda: len(record.read_pickups(path)), i + 2, 60, workers):
                    raise RuntimeError(f"probe {i + 1} never picked up")
        finally:
            workers.stop()
        latencies = [(arrived - stamp) * 1000 for stamp, arrived in record.read_pickups(path)[1:]]
        self.metrics["pickup_p50_ms"] = percentile(latencies, 50)
        self.metrics["pickup_p99_ms"] = percentile(latencies, 99)

    def run(self) -> dict[str, Any]:
        self.phase("enqueue_single_per_s", self.enqueue_single)
        self.phase("drain_1proc_per_s", lambda: self.drain(1, "drain_1proc_per_s"))
        self.phase("drain_2proc_per_s", lambda: self.drain(2, "drain_2proc_per_s"))
        self.phase("pickup", self.pickup)
        if self.args.history:
            self.phase(
                "drain_1proc_history_per_s",
                lambda: self.drain(1, "drain_1proc_history_per_s", history=self.args.history),
            )
        for key in ("concurrency_note", "batch_note"):
            text = getattr(self.system, key, "")
            if text:
                self.notes[key.removesuffix("_note")] = text
        if not self.errors:  # keep the worker logs of a failed run for inspection
            shutil.rmtree(self.workdir, ignore_errors=True)
        return {"metrics": self.metrics, "notes": self.notes, "errors": self.errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--system", required=True)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--single", type=int, default=2_000)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--history", type=int, default=0)
    parser.add_argument("--deadline", type=float, default=600.0)
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    result = Run(args).run()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
