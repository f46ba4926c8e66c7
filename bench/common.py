"""Shared helpers of the benchmark harness: repeat, take medians, report ratios.

Every benchmark returns a `Measurement` per (system, metric); the report prints a table of
medians over repeats and the ratio to Conveyor on the same engine and machine.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass
class Measurement:
    system: str  # "conveyor", "procrastinate", "celery", ...
    engine: str  # "sqlite", "postgres", "redis", "http"
    metric: str  # "enqueue_single_per_s", "drain_1proc_per_s", "pickup_p50_ms", ...
    values: list[float] = field(default_factory=list)  # one per repeat
    unit: str = ""
    higher_is_better: bool = True
    note: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")


def percentile(samples: Iterable[float], pct: float) -> float:
    """Nearest-rank percentile (pct in 0..100)."""
    data = sorted(samples)
    if not data:
        return float("nan")
    rank = max(0, min(len(data) - 1, round(pct / 100 * len(data) + 0.5) - 1))
    return data[rank]


def rate(count: int, fn: Callable[[], object]) -> float:
    """Run fn once, return count / elapsed seconds."""
    start = time.perf_counter()
    fn()
    return count / (time.perf_counter() - start)


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MiB (Linux /proc)."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except FileNotFoundError:
        pass
    return float("nan")


def machine() -> dict[str, object]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def table(measurements: list[Measurement], baseline: str = "conveyor") -> str:
    """A Markdown table: one row per metric, one column per system, medians and ratio vs baseline."""
    metrics: dict[tuple[str, str], dict[str, Measurement]] = {}
    for m in measurements:
        metrics.setdefault((m.engine, m.metric), {})[m.system] = m
    systems = sorted({m.system for m in measurements}, key=lambda s: (s != baseline, s))
    lines = ["| engine | metric | " + " | ".join(systems) + " |", "|---|---|" + "---|" * len(systems)]
    for (engine, metric), by_system in metrics.items():
        base = by_system.get(baseline)
        cells = []
        for system in systems:
            m = by_system.get(system)
            if m is None or not m.values:
                cells.append("-")
                continue
            cell = f"{m.median:,.1f}{m.unit and ' ' + m.unit}"
            if base is not None and system != baseline and base.values and m.median:
                ratio = base.median / m.median if m.higher_is_better else m.median / base.median
                cell += f" (conveyor x{ratio:.2f})"
            cells.append(cell)
        lines.append(f"| {engine} | {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def save(name: str, measurements: list[Measurement]) -> Path:
    """Write raw repeats and medians to bench/results/<name>.json."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    payload = {
        "machine": machine(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "measurements": [asdict(m) | {"median": m.median} for m in measurements],
    }
    path.write_text(json.dumps(payload, indent=2))
    return path
