"""Peak memory of the streaming CSV import: ``python -m bench.csv_import --mb 200``.

Writes a CSV of about ``--mb`` megabytes (one row in 1,000 invalid, so the rejects artifact is
exercised too), uploads it into a result store (a directory, or ``--results s3://...``), and
runs ``import_contacts`` on it in this fresh process exactly as an executor does (a claimed job,
its real lease and context). Prints JSON: rows, file size, the process's peak RSS before the
task (imports, engine, upload) and after it, and their difference, the memory the import
itself added. That difference stays flat as the file grows.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def peak_rss_bytes() -> int:
    """This process's peak resident set size so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def make_csv(path: Path, megabytes: float) -> int:
    """A contacts CSV of about ``megabytes`` MB; returns its data rows."""
    target = int(megabytes * 1024 * 1024)
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("name,email,age\n")
        written = 15
        while written < target:
            block = []
            for i in range(rows, rows + 1000):
                email = f"person{i}@example.com" if i % 1000 != 999 else f"person{i}-at-example.com"
                block.append(f"Person Number {i},{email},{i % 100}\n")
            text = "".join(block)
            out.write(text)
            written += len(text)
            rows += 1000
    return rows


def measure(csv_path: Path, workdir: Path, results: str | None, batch_size: int) -> dict[str, Any]:
    os.environ["EXAMPLES_DB"] = str(workdir / "examples.db")
    from conveyor import Conveyor, JobContext
    from conveyor.backend.protocol import ClaimRequest
    from examples import contacts

    app = Conveyor(f"sqlite:///{workdir / 'conveyor.db'}", result_store=results or str(workdir / "results"))
    try:
        task = app.task(name="import_contacts", queue="imports")(contacts.import_contacts)
        ref = app.upload(csv_path)
        job = app.enqueue("import_contacts", {"csv": ref, "batch_size": batch_size})
        [claimed] = app.run_sync(lambda b: b.claim(ClaimRequest("bench", ("imports",), 1, 3600.0)))
        assert claimed.id == job.id
        ctx = JobContext(app, claimed)
        before = peak_rss_bytes()
        started = time.perf_counter()
        try:
            result = task.fn(ctx, **task.bind(claimed.args))
        finally:
            ctx.cleanup()
        seconds = time.perf_counter() - started
        after = peak_rss_bytes()
    finally:
        app.close()
    return {
        "file_bytes": csv_path.stat().st_size,
        "result": result,
        "peak_rss_before_bytes": before,
        "peak_rss_after_bytes": after,
        "import_rss_growth_bytes": after - before,
        "seconds": round(seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=200.0, help="Size of the generated CSV in MB.")
    parser.add_argument("--results", default=None, help="Result store (a directory or s3:// URL); default a temp dir.")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--workdir", type=Path, default=None, help="Where the CSV and databases go (default: temp).")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="conveyor-csv-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        csv_path = workdir / "contacts.csv"
        rows = make_csv(csv_path, args.mb)
        report = {"rows_written": rows, **measure(csv_path, workdir, args.results, args.batch_size)}
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
