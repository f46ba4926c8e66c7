"""The CSV import example: per-row validation, idempotent upserts, rejected rows as an artifact."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import pytest

from conveyor.worker.errors import DoNotRetry
from examples import contacts
from tests.examples.conftest import Harness

CSV = """name,email,age
Ada Lovelace,ada@example.com,36
Alan Turing,ALAN@example.com,
,nobody@example.com,20
Grace Hopper,grace-at-example.com,85
Edsger Dijkstra,edsger@example.com,200
Barbara Liskov,barbara@example.com,84
"""


def _rows() -> list[tuple[str, str, int | None]]:
    with sqlite3.connect(contacts.database_path()) as conn:
        return conn.execute("SELECT email, name, age FROM contacts ORDER BY email").fetchall()


def test_import_upserts_valid_rows_and_reports_rejects(harness: Harness) -> None:
    run = harness.run("import_contacts", {"csv_text": CSV, "batch_size": 2})
    assert run.result == {"rows": 6, "imported": 3, "rejected": 3}
    assert _rows() == [
        ("ada@example.com", "Ada Lovelace", 36),
        ("alan@example.com", "Alan Turing", None),
        ("barbara@example.com", "Barbara Liskov", 84),
    ]
    job = harness.job(run.job.id)
    [art] = job.artifacts
    assert art.name == "rejected.csv"
    rejected = list(csv.DictReader(io.StringIO(b"".join(harness.app.result_store.open(art)).decode())))
    assert [(r["line"], r["email"]) for r in rejected] == [
        ("4", "nobody@example.com"),
        ("5", "grace-at-example.com"),
        ("6", "edsger@example.com"),
    ]
    assert "name" in rejected[0]["reason"] and "email" in rejected[1]["reason"] and "age" in rejected[2]["reason"]
    # progress is the position in the file: from 0 up to all of it
    fractions = [f for f, _ in harness.progress(run.job.id)]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0 and len(fractions) >= 3 and fractions == sorted(fractions)


def test_import_from_an_upload(harness: Harness, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(CSV.replace("\n", "\r\n"), encoding="utf-8-sig")  # Excel's BOM and line ends
    ref = harness.app.upload(path)
    run = harness.run("import_contacts", {"csv": ref, "batch_size": 2})
    assert run.result == {"rows": 6, "imported": 3, "rejected": 3}
    assert [email for email, _, _ in _rows()] == ["ada@example.com", "alan@example.com", "barbara@example.com"]
    [art] = harness.job(run.job.id).artifacts
    rejected = list(csv.DictReader(io.StringIO(b"".join(harness.app.result_store.open(art)).decode())))
    assert [r["line"] for r in rejected] == ["4", "5", "6"]


def test_exactly_one_source(harness: Harness) -> None:
    with pytest.raises(DoNotRetry, match="either"):
        harness.run("import_contacts", {})


def test_rerun_is_idempotent(harness: Harness) -> None:
    harness.run("import_contacts", {"csv_text": CSV})
    first = _rows()
    harness.run("import_contacts", {"csv_text": CSV})
    assert _rows() == first


def test_missing_columns_fail_without_retry(harness: Harness) -> None:
    with pytest.raises(DoNotRetry, match="email"):
        harness.run("import_contacts", {"csv_text": "name,phone\nAda,123\n"})
