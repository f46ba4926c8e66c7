"""Data export: a query result streamed into a CSV or JSON Lines artifact, memory flat.

The rows never sit in memory together: the cursor is read ``fetchmany`` by ``fetchmany`` and
each batch is written to a file in the job's scratch directory, which is then stored as the
artifact by streaming the file (``ctx.save_artifact(name, path)``). A million-row export uses
the memory of one batch. Submitters pick a named query and its parameters, never SQL text.

Parquet would need pyarrow (a ~100 MB wheel) for one example; CSV and JSON Lines cover the
same need with the standard library (see docs/workloads.md).
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from conveyor import DoNotRetry, JobContext
from examples.contacts import database_path

Query = Literal["contacts", "contacts_by_domain"]
Format = Literal["csv", "jsonl"]
Domain = Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[A-Za-z0-9.-]+$")]
BATCH = 5_000
CONTENT_TYPES = {"csv": "text/csv", "jsonl": "application/x-ndjson"}


@dataclass(frozen=True)
class NamedQuery:
    sql: str
    count_sql: str


QUERIES: dict[str, NamedQuery] = {
    "contacts": NamedQuery(
        "SELECT email, name, age, source_job FROM contacts WHERE (:domain IS NULL OR email LIKE '%@' || :domain)"
        " ORDER BY email",
        "SELECT count(*) FROM contacts WHERE (:domain IS NULL OR email LIKE '%@' || :domain)",
    ),
    "contacts_by_domain": NamedQuery(
        "SELECT substr(email, instr(email, '@') + 1) AS domain, count(*) AS contacts, avg(age) AS average_age"
        " FROM contacts WHERE (:domain IS NULL OR email LIKE '%@' || :domain) GROUP BY domain ORDER BY domain",
        "SELECT count(DISTINCT substr(email, instr(email, '@') + 1)) FROM contacts"
        " WHERE (:domain IS NULL OR email LIKE '%@' || :domain)",
    ),
}


def _batches(cursor: sqlite3.Cursor) -> Iterator[list[tuple[object, ...]]]:
    while batch := cursor.fetchmany(BATCH):
        yield batch


def write_rows(
    conn: sqlite3.Connection, query: NamedQuery, params: dict[str, object], fmt: Format, target: Path
) -> Iterator[int]:
    """Stream the query's rows into ``target``; yields the rows written so far after each batch."""
    cursor = conn.execute(query.sql, params)
    columns = [d[0] for d in cursor.description]
    written = 0
    with open(target, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out) if fmt == "csv" else None
        if writer is not None:
            writer.writerow(columns)
        for batch in _batches(cursor):
            if writer is not None:
                writer.writerows(batch)
            else:
                out.writelines(json.dumps(dict(zip(columns, row, strict=True))) + "\n" for row in batch)
            written += len(batch)
            yield written


def export(ctx: JobContext, query: Query = "contacts", format: Format = "csv", domain: Domain | None = None) -> dict:
    """Run a named query on the examples database and store its rows as ``<query>.<format>``."""
    path = database_path()
    if not path.exists():
        raise DoNotRetry(f"no examples database at {path}: import some contacts first")
    named = QUERIES[query]
    params = {"domain": domain.lower() if domain else None}
    target = ctx.scratch_dir / f"{query}.{format}"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as conn:
        total = conn.execute(named.count_sql, params).fetchone()[0]
        ctx.progress(0.0, f"exporting {total} rows")
        written = 0
        for written in write_rows(conn, named, params, format, target):
            ctx.raise_if_cancelled()
            ctx.progress(min(1.0, written / total) if total else 1.0, f"{written}/{total} rows")
    artifact = ctx.save_artifact(target.name, target, CONTENT_TYPES[format])
    return {"rows": written, "bytes": artifact.size, "artifact": artifact.name}
