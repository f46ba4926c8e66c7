"""Queue declarations: the rules that read them at submit time, and the config file loader.

Queues are declared in one place: ``Conveyor(queues=[QueueConfig(...)])`` in code, plus a TOML
file that ``conveyor worker``/``serve``/``queues`` read with ``--queues-config`` (a file whose
queues sit under ``[queues.<name>]``, or a ``pyproject.toml`` with ``[tool.conveyor.queues.<name>]``).
A file entry replaces the code declaration of the same name. Every key is checked: an unknown
key or a wrong type is a ConfigError naming the file, the queue and the key, never ignored.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import ConfigError
from conveyor.limits import parse_rate
from conveyor.types import QueueConfig

QUEUES_CONFIG_ENV = "CONVEYOR_QUEUES_CONFIG"
"""The config file every process that loads the app reads (``--queues-config`` sets it)."""

KEYS: dict[str, tuple[type, ...]] = {
    "max_depth": (int,),
    "max_runtime": (int, float),
    "overflow_to": (str,),
    "priority": (int,),
    "paused": (bool,),
    "concurrency": (int,),
    "rate_limit": (str,),
    "retention": (int, float),
}
"""What a queue entry of the config file may set, and the TOML types each key accepts."""


def route_queue(queues: Mapping[str, QueueConfig], queue: str, expected_runtime: float | None) -> str:
    """The queue a submit goes to: a task that expects to outrun ``queue``'s ``max_runtime``
    goes straight to its overflow queue (and on down the chain), instead of overrunning first."""
    seen = {queue}
    while expected_runtime is not None:
        config = queues.get(queue)
        if config is None or config.max_runtime is None or config.overflow_to is None:
            break
        if expected_runtime <= config.max_runtime or config.overflow_to in seen:
            break
        queue = config.overflow_to
        seen.add(queue)
    return queue


def default_priority(config: QueueConfig, task_priority: int, call_priority: int | None) -> int:
    """A submit's own priority, else the task's (when not 0), else the queue's default."""
    if call_priority is not None:
        return call_priority
    if task_priority == 0 and config.priority is not None:
        return config.priority
    return task_priority


def check_overflow(queues: Mapping[str, QueueConfig]) -> None:
    """Refuse overflow chains that loop (a -> b -> a): a job would be moved for ever."""
    for name in queues:
        seen = [name]
        nxt = queues[name].overflow_to
        while nxt is not None:
            if nxt in seen:
                chain = " -> ".join([*seen, nxt])
                raise ConfigError(f"queue {name!r}: overflow_to loops ({chain})")
            seen.append(nxt)
            config = queues.get(nxt)
            nxt = config.overflow_to if config is not None else None


def parse_queues(data: Mapping[str, Any], source: str) -> list[QueueConfig]:
    """QueueConfigs from the ``queues`` table of a config file (``source`` names it in errors)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: queues must be a table of [queues.<name>] tables")
    out: list[QueueConfig] = []
    for name, entry in data.items():
        where = f"{source}: queues.{name}"
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{where} must be a table (e.g. [queues.{name}] with max_depth = 100)")
        unknown = sorted(set(entry) - set(KEYS))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(KEYS)})")
        for key, value in entry.items():
            allowed = KEYS[key]
            if (isinstance(value, bool) and bool not in allowed) or not isinstance(value, allowed):
                kinds = " or ".join(t.__name__ for t in allowed)
                raise ConfigError(f"{where}.{key}: expected {kinds}, got {value!r}")
        try:
            if "rate_limit" in entry:
                parse_rate(entry["rate_limit"])  # "100/m": a bad text is refused with the key named
            out.append(QueueConfig(str(name), **entry))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return out


def load_queues_config(path: str | Path) -> list[QueueConfig]:
    """Read ``path``: ``[queues.<name>]`` tables, or ``[tool.conveyor.queues.<name>]`` in pyproject."""
    file = Path(path)
    try:
        data = tomllib.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"queues config {file} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    tool = data.get("tool", {}).get("conveyor", {}) if isinstance(data.get("tool"), dict) else {}
    if "queues" in data:
        found = parse_queues(data["queues"], str(file))
    elif isinstance(tool, dict) and "queues" in tool:
        found = parse_queues(tool["queues"], str(file))
    else:
        raise ConfigError(f"{file}: no [queues.<name>] or [tool.conveyor.queues.<name>] table")
    try:
        check_overflow({q.name: q for q in found})
    except ConfigError as exc:
        raise ConfigError(f"{file}: {exc}") from None
    return found
