"""Load named queries from a `.sql` file, so SQL lives in SQL files, not Python strings.

A file holds blocks that start with a line ``-- name: some_query``; everything up to the next
such line is that query's text.

``{schema}`` in a file (PostgreSQL: ``{schema}.jobs``, the NOTIFY channel) is the one place the
schema name appears; it is replaced when the file is loaded, so one database can hold several
Conveyor schemas (``?schema=NAME`` in the URL; the tests use one per xdist worker). Plain
``str.replace``, not ``str.format``: SQL has braces of its own (``'{}'`` JSON literals).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from conveyor.errors import ConfigError

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
SCHEMA_PLACEHOLDER = "{schema}"
DEFAULT_SCHEMA = "conveyor"
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def check_schema(name: str) -> str:
    """``name`` if it is a plain lower-case SQL identifier (spliced into SQL unquoted), else ConfigError."""
    if not _SCHEMA.match(name):
        raise ConfigError(f"schema must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63), got {name!r}")
    return name


def _resolve(text: str, schema: str) -> str:
    return text.replace(SCHEMA_PLACEHOLDER, check_schema(schema))


@cache
def load_queries(package: str, filename: str = "queries.sql", schema: str = DEFAULT_SCHEMA) -> dict[str, str]:
    """Return ``{name: sql}`` for every named block of ``package/filename``, ``{schema}`` resolved."""
    text = _resolve(resources.files(package).joinpath(filename).read_text(), schema)
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{package}/{filename}: query {name!r} defined twice")
        queries[name] = body.strip()
    return queries


def migration_files(package: str, schema: str = DEFAULT_SCHEMA) -> list[tuple[str, str]]:
    """``[(name, sql)]`` of ``package/migrations/*.sql`` in version order, ``{schema}`` resolved."""
    folder = resources.files(package).joinpath("migrations")
    files = sorted((f.name, f) for f in folder.iterdir() if f.name.endswith(".sql"))
    return [(name[: -len(".sql")], _resolve(f.read_text(), schema)) for name, f in files]
