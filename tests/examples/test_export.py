"""The data export: a query streamed into a CSV / JSON Lines artifact on a real worker, memory flat."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import tracemalloc
from contextlib import closing
from pathlib import Path

from conveyor.types import JobState
from examples import contacts, export
from tests.examples.workers import Examples, examples  # noqa: F401 - the fixture


def _fill(path: Path, count: int) -> None:
    with closing(contacts._connect(path)) as conn:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO contacts (email, name, age, source_job) VALUES (?, ?, ?, ?)",
            (
                (f"person{i:07d}@{'example.com' if i % 4 else 'corp.example.org'}", f"Person {i}", i % 90, "seed")
                for i in range(count)
            ),
        )
        conn.execute("COMMIT")


def _artifact(examples: Examples, job_id: str) -> bytes:  # noqa: F811
    job = examples.app.get(job_id)
    assert job is not None
    [art] = job.artifacts
    return b"".join(examples.app.result_store.open(art))


def test_export_streams_every_row_into_a_csv_artifact(examples: Examples) -> None:  # noqa: F811
    _fill(contacts.database_path(), 12_345)
    examples.node("exports", concurrency=1)
    job = examples.app.enqueue("export", {"query": "contacts"})
    done = examples.wait_state(job.id, JobState.SUCCEEDED, JobState.FAILED)
    assert done.state is JobState.SUCCEEDED, done.error
    rows = list(csv.reader(io.StringIO(_artifact(examples, job.id).decode())))
    assert rows[0] == ["email", "name", "age", "source_job"]
    assert len(rows) == 1 + 12_345 and done.result["rows"] == 12_345  # type: ignore[index]
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
    progress = [e.data["fraction"] for e in examples.app.events(job.id) if e.type == "progress"]
    assert progress[0] == 0.0 and progress[-1] == 1.0 and len(progress) >= 3  # one per batch of rows


def test_export_filters_and_writes_json_lines(examples: Examples) -> None:  # noqa: F811
    _fill(contacts.database_path(), 1000)
    examples.node("exports", concurrency=1)
    job = examples.app.enqueue("export", {"query": "contacts_by_domain", "format": "jsonl"})
    filtered = examples.app.enqueue("export", {"query": "contacts", "format": "jsonl", "domain": "corp.example.org"})
    for j in (job, filtered):
        assert examples.wait_state(j.id, JobState.SUCCEEDED, JobState.FAILED).state is JobState.SUCCEEDED
    domains = [json.loads(line) for line in _artifact(examples, job.id).decode().splitlines()]
    assert [(d["domain"], d["contacts"]) for d in domains] == [("corp.example.org", 250), ("example.com", 750)]
    people = [json.loads(line) for line in _artifact(examples, filtered.id).decode().splitlines()]
    assert len(people) == 250 and all(p["email"].endswith("@corp.example.org") for p in people)


def test_export_without_a_database_fails_at_once(examples: Examples) -> None:  # noqa: F811
    examples.node("exports", concurrency=1)
    job = examples.app.enqueue("export", {})
    done = examples.wait_state(job.id, JobState.FAILED, JobState.SUCCEEDED)
    assert done.state is JobState.FAILED and done.attempts == 1
    assert "import some contacts first" in done.error["message"]  # type: ignore[index]


def _export_peak(tmp_path: Path, rows: int) -> tuple[int, int]:
    """(peak traced bytes, file size) of exporting ``rows`` contacts to CSV."""
    db = tmp_path / f"big-{rows}.db"
    _fill(db, rows)
    target = tmp_path / f"out-{rows}.csv"
    with closing(sqlite3.connect(db)) as conn:
        tracemalloc.start()
        try:
            for _ in export.write_rows(conn, export.QUERIES["contacts"], {"domain": None}, "csv", target):
                pass
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak, target.stat().st_size


def test_export_memory_stays_flat_as_rows_grow(tmp_path: Path) -> None:
    """Four times the rows, about the same peak memory: a batch at a time, never the whole result."""
    small_peak, small_size = _export_peak(tmp_path, 50_000)
    big_peak, big_size = _export_peak(tmp_path, 200_000)
    assert big_size > 3.9 * small_size
    assert big_peak < 1.5 * small_peak, f"peak {small_peak} -> {big_peak} bytes for {small_size} -> {big_size}"
    assert big_peak < big_size / 2
