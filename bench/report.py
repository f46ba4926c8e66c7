"""Rebuild a Markdown table from saved results, optionally replacing some systems' rows.

    python -m bench.report bench/results/redis.json
    python -m bench.report bench/results/redis.json --override bench/results/conveyor-rerun/redis.json

``--override`` takes every system found in the second file from there (e.g. Conveyor re-measured
after a harness fix) and the other systems from the first; say so wherever the table is quoted,
since the two files come from different runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import Measurement, table


def load(path: Path) -> list[Measurement]:
    payload = json.loads(path.read_text())
    fields = ("system", "engine", "metric", "values", "unit", "higher_is_better", "note")
    return [Measurement(**{k: m[k] for k in fields}) for m in payload["measurements"]]


def merged(base: Path, override: Path | None) -> list[Measurement]:
    rows = load(base)
    if override is None:
        return rows
    fresh = load(override)
    replaced = {m.system for m in fresh}
    order = {(m.system, m.metric): i for i, m in enumerate(rows)}
    combined = [m for m in rows if m.system not in replaced] + fresh
    return sorted(combined, key=lambda m: (_metric_rank(rows, m.metric), order.get((m.system, m.metric), 0)))


def _metric_rank(rows: list[Measurement], metric: str) -> int:
    names = list(dict.fromkeys(m.metric for m in rows))
    return names.index(metric) if metric in names else len(names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", type=Path)
    parser.add_argument("--override", type=Path, default=None)
    args = parser.parse_args()
    print(table(merged(args.base, args.override)))


if __name__ == "__main__":
    main()
