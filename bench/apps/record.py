"""What every benchmark task does: append one fixed-size record to a file, nothing else.

The same stdlib-only code runs inside every system's workers, so counting finished jobs and
measuring pickup latency cost the same everywhere and need no result backend. Each record is
written with one ``write`` on an ``O_APPEND`` descriptor, which Linux keeps whole even when
several worker processes append to the same file at once.
"""

from __future__ import annotations

import os
import struct
import time

DONE_ENV = "BENCH_DONE_FILE"
PICKUP_ENV = "BENCH_PICKUP_FILE"
DONE_RECORD = struct.Struct("<d")  # finish time
PICKUP_RECORD = struct.Struct("<dd")  # (stamp taken just before enqueue, arrival in the task)

_fds: dict[str, int] = {}


def _fd(env: str) -> int:
    path = os.environ[env]
    key = f"{os.getpid()}:{path}"
    fd = _fds.get(key)
    if fd is None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        _fds[key] = fd
    return fd


def done() -> None:
    """The body of the no-op task: note that one job finished, and when."""
    os.write(_fd(DONE_ENV), DONE_RECORD.pack(time.time()))


def pickup(stamp: float) -> None:
    """The body of the probe task: note when the job reached task code."""
    os.write(_fd(PICKUP_ENV), PICKUP_RECORD.pack(float(stamp), time.time()))


def count_done(path: str) -> int:
    try:
        return os.path.getsize(path) // DONE_RECORD.size
    except FileNotFoundError:
        return 0


def read_done(path: str) -> list[float]:
    with open(path, "rb") as handle:
        data = handle.read()
    usable = len(data) - len(data) % DONE_RECORD.size
    return [v[0] for v in DONE_RECORD.iter_unpack(data[:usable])]


def read_pickups(path: str) -> list[tuple[float, float]]:
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return []
    usable = len(data) - len(data) % PICKUP_RECORD.size
    return [(a, b) for a, b in PICKUP_RECORD.iter_unpack(data[:usable])]
