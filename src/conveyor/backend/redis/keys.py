"""The Redis key layout and the ``redis://`` URL options Conveyor reads itself.

Every key of a namespace starts with ``<prefix>:{<prefix>}`` (the *base*). The part in braces
is a Redis Cluster hash tag, so all keys of a namespace (every queue, job, event, idempotency
key) live in one slot and every Lua script stays single-slot. See docs/operations-redis.md for
the full layout and why the tag is per namespace rather than per queue.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from conveyor.errors import ConfigError

DEFAULT_PREFIX = "conveyor"
_PREFIX_OK = re.compile(r"^[A-Za-z0-9_.:\-]+$")
CONVEYOR_OPTIONS = ("prefix",)


def parse_redis_url(url: str) -> tuple[str, str]:
    """Split ``redis://host:port/db?prefix=NAME&...`` into (URL for redis-py, prefix).

    Conveyor's own options are removed; every other query option goes to redis-py unchanged.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"not a Redis URL: {url!r} (expected redis://host:6379/0)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    rest: list[tuple[str, str]] = []
    for key, value in query:
        if key == "prefix":
            prefix = value
        else:
            rest.append((key, value))
    if not _PREFIX_OK.match(prefix):
        raise ConfigError(f"prefix must be letters, digits, '_', '.', ':' or '-' (got {prefix!r})")
    return urlunsplit(parts._replace(query=urlencode(rest))), prefix


def namespace_base(prefix: str) -> str:
    """``conveyor`` -> ``conveyor:{conveyor}``: starts with the prefix, hash-tagged by it."""
    return f"{prefix}:{{{prefix}}}"


class Keys:
    """Names of the keys the Python side touches directly (the Lua scripts build the rest)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.base = namespace_base(prefix)

    def job(self, job_id: str) -> str:
        return f"{self.base}:job:{job_id}"

    def events(self, job_id: str) -> str:
        return f"{self.base}:ev:{job_id}"

    def effects(self, job_id: str) -> str:
        return f"{self.base}:fx:{job_id}"

    def wake(self, queue: str) -> str:
        return f"{self.base}:wake:{queue}"

    def scheduled(self, queue: str) -> str:
        return f"{self.base}:sched:{queue}"

    def workflow(self, workflow_id: str) -> str:
        """The ids of a workflow's jobs (a sorted set, all scores 0: ordered by id)."""
        return f"{self.base}:wf:{workflow_id}"

    def schema(self) -> str:
        return f"{self.base}:schema"
