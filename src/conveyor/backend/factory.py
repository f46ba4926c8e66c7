"""Pick the engine from a URL. The only module that imports concrete engines."""

from __future__ import annotations

from urllib.parse import urlsplit

from conveyor.backend.protocol import Backend
from conveyor.errors import ConfigError

SCHEMES = ("sqlite", "postgresql", "postgres", "redis", "rediss")


def create_backend(url: str) -> Backend:
    """``sqlite:///path.db`` | ``postgresql://user@host/db`` | ``redis://host:6379/0``."""
    scheme = urlsplit(url).scheme
    if scheme == "sqlite":
        from conveyor.backend.sqlite.backend import SQLiteBackend

        return SQLiteBackend(url)
    if scheme in ("postgresql", "postgres"):
        try:
            from conveyor.backend.postgres.backend import PostgresBackend
        except ImportError as exc:  # pragma: no cover - engine not built yet
            raise ConfigError(f"PostgreSQL engine unavailable: {exc}") from None
        return PostgresBackend(url)
    if scheme in ("redis", "rediss"):
        try:
            from conveyor.backend.redis.backend import RedisBackend
        except ImportError as exc:  # pragma: no cover
            raise ConfigError(f"Redis engine unavailable: {exc}") from None
        return RedisBackend(url)
    raise ConfigError(f"unsupported backend URL {url!r}: scheme must be one of {', '.join(SCHEMES)}")
