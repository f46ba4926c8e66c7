"""Load named queries from a `.sql` file, so SQL lives in SQL files, not Python strings.

A file holds blocks that start with a line ``-- name: some_query``; everything up to the next
such line is that query's text.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


@cache
def load_queries(package: str, filename: str = "queries.sql") -> dict[str, str]:
    """Return ``{name: sql}`` for every named block of ``package/filename``."""
    text = resources.files(package).joinpath(filename).read_text()
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{package}/{filename}: query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


def migration_files(package: str) -> list[tuple[str, str]]:
    """``[(name, sql)]`` of ``package/migrations/*.sql`` in version order (file name order)."""
    folder = resources.files(package).joinpath("migrations")
    files = sorted((f.name, f) for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(name[: -len(".sql")], f.read_text()) for name, f in files]
