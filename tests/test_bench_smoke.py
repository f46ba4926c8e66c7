"""Smoke-run the benchmark harness in quick mode: it must produce a result file with every metric.

This never asserts a speed: the machine is shared and numbers vary; it checks that the harness
still drives a real worker end to end and writes what docs/benchmarks.md describes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines import _reachable, engine_built, unavailable

ROOT = Path(__file__).resolve().parent.parent
EXPECTED = {
    "enqueue_single_per_s",
    "enqueue_batch_per_s",
    "drain_1proc_per_s",
    "drain_2proc_per_s",
    "pickup_p50_ms",
    "pickup_p99_ms",
    "worker_rss_mb",
}
SERVERS = {"postgres": 5432, "redis": 6379}

pytestmark = pytest.mark.timeout(600)


def run_quick(engine: str, results: Path) -> dict[str, float]:
    cmd = [sys.executable, "-m", "bench", "--quick", "--engine", engine, "--systems", "conveyor"]
    cmd += ["--results-dir", str(results), "--no-install"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=540, env=os.environ.copy())
    log = results / f"{engine}.log"
    detail = proc.stdout + proc.stderr + (log.read_text()[-4000:] if log.exists() else "")
    assert proc.returncode == 0, detail
    payload = json.loads((results / f"{engine}.json").read_text())
    assert (results / f"{engine}.md").exists()
    found = {m["metric"]: m["median"] for m in payload["measurements"] if m["system"] == "conveyor"}
    assert found.keys() >= EXPECTED, f"missing {EXPECTED - found.keys()}\n{detail}"
    return found


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "redis"])
def test_quick_bench_produces_every_metric(engine: str, tmp_path: Path) -> None:
    if not engine_built(engine):
        unavailable(f"{engine} engine not implemented in this tree")
    port = SERVERS.get(engine)
    if port and not _reachable("127.0.0.1", port):
        unavailable(f"{engine} server not running")
    found = run_quick(engine, tmp_path)
    # rates and latencies are real measurements: positive, finite numbers
    for metric in EXPECTED:
        value = found[metric]
        assert value > 0 and value == value and value != float("inf"), (metric, value)


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "redis"])
def test_fanout_bench_runs_one_fan_in_per_workflow(engine: str, tmp_path: Path) -> None:
    """``bench.fanout`` end to end with a small fan-out: it exits non-zero unless the fan-in ran
    exactly once with the sum of every chunk, and writes every metric it documents."""
    port = SERVERS.get(engine)
    if port and not _reachable("127.0.0.1", port):
        unavailable(f"{engine} server not running")
    cmd = [sys.executable, "-m", "bench.fanout", "--engines", engine, "--chunks", "30", "--repeats", "1"]
    cmd += ["--results-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=540, env=os.environ.copy())
    log = tmp_path / "fanout.log"
    assert proc.returncode == 0, proc.stdout + proc.stderr + (log.read_text()[-4000:] if log.exists() else "")
    payload = json.loads((tmp_path / "fanout.json").read_text())
    found = {m["metric"]: m["median"] for m in payload["measurements"]}
    assert found.keys() == {"release_ms", "fan_in_start_ms", "enqueue_ms", "total_s"}
    assert found["fan_in_start_ms"] >= 0 and found["total_s"] > 0


@pytest.mark.parametrize("engine", ["sqlite", "postgres", "redis"])
def test_mixed_bench_moves_the_long_jobs_and_resumes_them(engine: str, tmp_path: Path) -> None:
    """``python -m bench.mixed`` drives real nodes: in the ``move`` variant both long jobs are
    moved once and resume from a checkpoint (what the table in docs/benchmarks.md relies on)."""
    if not engine_built(engine):
        unavailable(f"{engine} engine not implemented in this tree")
    if engine in SERVERS and not _reachable("127.0.0.1", SERVERS[engine]):
        unavailable(f"{engine} is not running on 127.0.0.1:{SERVERS[engine]}")
    cmd = [sys.executable, "-m", "bench.mixed", "--quick", "--engine", engine, "--variants", "move"]
    cmd += ["--max-runtime", "3", "--results-dir", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=540, env=os.environ.copy())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (row,) = json.loads((tmp_path / "mixed.json").read_text())
    assert row["variant"] == "move" and row["short_jobs"] > 0
    assert row["long_moves"] == 2
    assert all(step > 0 for step in row["long_resumed_from"]), row
    assert "| move |" in (tmp_path / "mixed.md").read_text()
