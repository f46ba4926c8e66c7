"""Import contacts from CSV text: validate every row, upsert the good ones, report the bad.

Safe to retry: rows are upserted by email in batches, each batch one transaction, so a
retried job rewrites the same rows instead of duplicating them. Rows that fail validation do
not fail the job; they come back as ``rejected.csv`` with the reason per row. A file without
the required columns can never succeed, so it fails at once without retries (DoNotRetry).
"""

from __future__ import annotations

import csv
import io
import os
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Annotated, Any

import pydantic
from pydantic import Field

from conveyor import DoNotRetry, JobContext

REQUIRED_COLUMNS = ("name", "email")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
CsvText = Annotated[str, Field(min_length=1, max_length=5_000_000, description="CSV with a header row")]
BatchSize = Annotated[int, Field(ge=1, le=10_000)]


class Contact(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(pattern=EMAIL_PATTERN, max_length=320)
    age: int | None = Field(None, ge=0, le=150)

    @pydantic.field_validator("email")
    @classmethod
    def lower(cls, value: str) -> str:
        return value.lower()

    @pydantic.field_validator("age", mode="before")
    @classmethod
    def blank_age(cls, value: Any) -> Any:
        return None if value == "" else value


def database_path() -> Path:
    """Where imported contacts go (the example's own SQLite file, not the job store)."""
    return Path(os.environ.get("EXAMPLES_DB", "var/examples.db"))


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS contacts (email TEXT PRIMARY KEY, name TEXT NOT NULL, age INTEGER,"
        " source_job TEXT NOT NULL)"
    )
    return conn


def _batches(rows: list[dict[str, str]], size: int) -> Iterator[tuple[int, list[dict[str, str]]]]:
    for start in range(0, len(rows), size):
        yield start, rows[start : start + size]


def _reason(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))


def import_contacts(ctx: JobContext, csv_text: CsvText, batch_size: BatchSize = 500) -> dict[str, int]:
    """Validate and upsert contacts; rejected rows are saved as the artifact rejected.csv."""
    ctx.progress(0.0, "reading CSV")
    reader = csv.DictReader(io.StringIO(csv_text))
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DoNotRetry(f"CSV header lacks column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'})")
    rows = [{(k or "").strip().lower(): (v or "") for k, v in row.items()} for row in reader]
    imported, rejected = 0, []
    with closing(_connect(database_path())) as conn:
        for start, batch in _batches(rows, batch_size):
            ctx.raise_if_cancelled()
            good = []
            for offset, row in enumerate(batch):
                try:
                    good.append(Contact.model_validate({k: row.get(k) for k in ("name", "email", "age")}))
                except pydantic.ValidationError as exc:
                    rejected.append((start + offset + 2, row, _reason(exc)))  # +2: header is line 1
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO contacts (email, name, age, source_job) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (email) DO UPDATE SET name = excluded.name, age = excluded.age,"
                " source_job = excluded.source_job",
                [(c.email, c.name, c.age, ctx.job_id) for c in good],
            )
            conn.execute("COMMIT")
            imported += len(good)
            done = start + len(batch)
            ctx.progress(done / len(rows), f"{done}/{len(rows)} rows, {len(rejected)} rejected")
    if rejected:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["line", "name", "email", "age", "reason"])
        for line, row, reason in rejected:
            writer.writerow([line, row.get("name", ""), row.get("email", ""), row.get("age", ""), reason])
        ctx.save_artifact("rejected.csv", out.getvalue().encode(), "text/csv")
    return {"rows": len(rows), "imported": imported, "rejected": len(rejected)}
