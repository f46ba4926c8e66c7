"""The CSV import streams: the memory it adds does not grow with the file.

Runs ``bench.csv_import`` (a real upload into the store, the task run as an executor runs it, in
a fresh process) on a 4 MB and a 32 MB file and compares the peak RSS each import added.
Reading the file whole, or keeping its rows, would add at least the file's size (a str of it
alone is that big); streaming adds a fixed amount (buffers, SQLite's page cache). No timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MB = 1024 * 1024


def _measure(megabytes: float, workdir: Path) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.csv_import", "--mb", str(megabytes), "--workdir", str(workdir)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    rows = report["rows_written"]
    assert report["result"] == {"rows": rows, "imported": rows - rows // 1000, "rejected": rows // 1000}
    return report


@pytest.mark.timeout(1200)  # two real imports (36 MB of CSV) on a loaded 2-core machine
def test_import_memory_stays_flat_as_the_file_grows(tmp_path: Path) -> None:
    small = _measure(4, tmp_path / "small")
    large = _measure(32, tmp_path / "large")
    grown_file = large["file_bytes"] - small["file_bytes"]
    assert grown_file > 24 * MB
    # the larger import adds far less memory than its file is large ...
    assert large["import_rss_growth_bytes"] < large["file_bytes"] / 2, large
    # ... and hardly more than the small one did: memory does not follow the file's size
    assert large["import_rss_growth_bytes"] - small["import_rss_growth_bytes"] < grown_file / 4, (small, large)
