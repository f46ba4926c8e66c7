"""Import contacts from a CSV file of any size: validate every row, upsert the good ones,
report the bad.

The file is an upload (``conveyor submit import_contacts csv=@contacts.csv``, or
``POST /v1/uploads`` then ``{"csv": "upload:..."}``), read as a stream straight from the result
store (a directory or a bucket) with the ``csv`` module: memory stays flat whatever the file's
size (docs/workloads.md has the measurement). Small inputs may still come as ``csv_text``.

Safe to retry: rows are upserted by email in batches, each batch one transaction, so a
retried job rewrites the same rows instead of duplicating them. Rows that fail validation do
not fail the job; they come back as ``rejected.csv`` with the line and reason per row, written
to disk as they are found. A file without the required columns can never succeed, so it fails
at once without retries (DoNotRetry). Progress is the position in the file.
"""

from __future__ import annotations

import csv as _csv  # the task's parameter is named csv
import io
import os
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated, Any, BinaryIO, TextIO

import pydantic
from pydantic import Field

from conveyor import DoNotRetry, JobContext

REQUIRED_COLUMNS = ("name", "email")
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$"
CsvText = Annotated[str, Field(min_length=1, max_length=1_000_000, description="Small CSV text with a header row")]
BatchSize = Annotated[int, Field(ge=1, le=10_000)]
UploadRef = Annotated[str, Field(pattern=r"^upload:[0-9a-f]{32}$", description="An uploaded CSV file (upload:<id>)")]
PROGRESS_STEP = 0.01
"""Report progress each time another 1 % of the file has been read (not on every batch)."""


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
    conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: no fsync per batch, still never corrupt
    conn.execute(
        "CREATE TABLE IF NOT EXISTS contacts (email TEXT PRIMARY KEY, name TEXT NOT NULL, age INTEGER,"
        " source_job TEXT NOT NULL)"
    )
    return conn


def _reason(exc: pydantic.ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False))


class _Counting(io.RawIOBase):
    """Counts the bytes read from the upload, for progress by position in the file."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        data = self.source.read(len(target))
        target[: len(data)] = data
        self.count += len(data)
        return len(data)

    def close(self) -> None:
        self.source.close()
        super().close()


@contextmanager
def _open_csv(ctx: JobContext, csv: str | None, csv_text: str | None) -> Iterator[tuple[TextIO, Callable[[], float]]]:
    """The CSV as a text stream (never read whole) and a function telling how far into it we are."""
    if (csv is None) == (csv_text is None):
        raise DoNotRetry("give the CSV either as an upload ref (csv=upload:...) or as text (csv_text=...), not both")
    if csv_text is not None:
        text = io.StringIO(csv_text)
        yield text, lambda: text.tell() / max(1, len(csv_text))
        return
    assert csv is not None
    size = ctx.input_info(csv).size
    counting = _Counting(ctx.open_input(csv))
    with io.TextIOWrapper(io.BufferedReader(counting, 1024 * 1024), encoding="utf-8-sig", newline="") as stream:
        yield stream, lambda: min(1.0, counting.count / max(1, size))


def _upsert(conn: sqlite3.Connection, contacts: list[Contact], job_id: str) -> None:
    """One transaction per batch; by email, so a retried job rewrites the same rows."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany(
        "INSERT INTO contacts (email, name, age, source_job) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (email) DO UPDATE SET name = excluded.name, age = excluded.age,"
        " source_job = excluded.source_job",
        [(c.email, c.name, c.age, job_id) for c in contacts],
    )
    conn.execute("COMMIT")


def import_contacts(
    ctx: JobContext, csv: UploadRef | None = None, csv_text: CsvText | None = None, batch_size: BatchSize = 500
) -> dict[str, int]:
    """Validate and upsert contacts from an uploaded CSV file (``csv=upload:...``, any size,
    streamed) or small CSV text; rejected rows are saved as the artifact rejected.csv."""
    ctx.progress(0.0, "reading CSV")
    rows = imported = rejected = 0
    last_report = 0.0
    rejects_path = ctx.scratch_dir / "rejected.csv"
    with (
        _open_csv(ctx, csv, csv_text) as (stream, position),
        closing(_connect(database_path())) as conn,
        rejects_path.open("w", newline="", encoding="utf-8") as rejects_file,
    ):
        reader = _csv.DictReader(stream)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise DoNotRetry(f"CSV header lacks column(s) {', '.join(missing)} (found: {', '.join(columns) or 'none'})")
        rejects = _csv.writer(rejects_file)
        rejects.writerow(["line", "name", "email", "age", "reason"])
        batch: list[Contact] = []
        for raw in reader:
            rows += 1
            row = {(k or "").strip().lower(): (v or "") for k, v in raw.items() if isinstance(v, str)}
            try:
                batch.append(Contact.model_validate({k: row.get(k) for k in ("name", "email", "age")}))
            except pydantic.ValidationError as exc:
                rejected += 1
                rejects.writerow(
                    [reader.line_num, row.get("name", ""), row.get("email", ""), row.get("age", ""), _reason(exc)]
                )
            if rows % batch_size == 0:
                ctx.raise_if_cancelled()
                _upsert(conn, batch, ctx.job_id)
                imported += len(batch)
                batch = []
                done = position()
                if done - last_report >= PROGRESS_STEP or rows == batch_size:
                    ctx.progress(done, f"{rows} rows, {rejected} rejected")
                    last_report = done
        _upsert(conn, batch, ctx.job_id)
        imported += len(batch)
    if rejected:
        ctx.save_artifact("rejected.csv", rejects_path, "text/csv")  # streamed from disk, like the input
    ctx.progress(1.0, f"{rows} rows, {imported} imported, {rejected} rejected")
    return {"rows": rows, "imported": imported, "rejected": rejected}
