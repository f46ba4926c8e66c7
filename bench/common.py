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


def tree_rss_mb(pid: int) -> float:
    """RSS of a process and all its descendants in MiB: a worker node's supervisor plus its children."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        value = rss_mb(current)
        if value == value:  # not NaN: the process still exists
            total += value
        todo.extend(children.get(current, []))
    return total


def machine() -> dict[str, object]:
    info: dict[str, object] = {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "loadavg_at_save": os.getloadavg(),
    }
    try:
        with open("/proc/cpuinfo") as handle:
            info["cpu"] = next((ln.split(":", 1)[1].strip() for ln in handle if ln.startswith("model name")), "")
    except OSError:
        pass
    return info


def table(measurements: list[Measurement], baseline: str = "conveyor") -> str:
    """A Markdown table: one row per metric, one column per system, medians and ratio vs baseline.

    The ratio in brackets is how many times better Conveyor is on that row (above 1: Conveyor
    wins; below 1: the other system wins), whichever direction "better" is for the metric.
    """
    metrics: dict[tuple[str, str], dict[str, Measurement]] = {}
    for m in measurements:
        metrics.setdefault((m.engine, m.metric), {})[m.system] = m
    systems = sorted({m.system for m in measurements}, key=lambda s: (not s.startswith(baseline), s))
    lines = ["| engine | metric | " + " | ".join(systems) + " |", "|---|---|" + "---:|" * len(systems)]
    for (engine, metric), by_system in metrics.items():
        base = by_system.get(baseline)
        unit = next((x.unit for x in by_system.values() if x.unit), "")
        cells = []
        for system in systems:
            got = by_system.get(system)
            if got is None or not got.values:
                cells.append("-")
                continue
            cell = _fmt(got.median)
            if base is not None and not system.startswith(baseline) and base.values and got.median and base.median:
                ratio = base.median / got.median if got.higher_is_better else got.median / base.median
                cell += f" (x{ratio:.2f})"
            cells.append(cell)
        label = f"{metric} ({unit})" if unit else metric
        lines.append(f"| {engine} | {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _fmt(value: float) -> str:
    if value != value:
        return "nan"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def save(
    name: str,
    measurements: list[Measurement],
    *,
    directory: Path | None = None,
    extra: dict[str, object] | None = None,
) -> Path:
    """Write raw repeats and medians to bench/results/<name>.json (or ``directory``)."""
    directory = directory or RESULTS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    payload = {
        "machine": machine(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "measurements": [asdict(m) | {"median": m.median} for m in measurements],
        **(extra or {}),
    }
    path.write_text(json.dumps(payload, indent=2))
    return path
