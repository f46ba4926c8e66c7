"""One adapter per system: the same small interface over each library's normal API and worker CLI."""

from __future__ import annotations

import importlib

from bench.systems.base import System

# system name -> module under bench.systems, and the engines it is measured on
SYSTEMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "conveyor": ("conveyor", ("sqlite", "postgres", "redis")),
    "conveyor-sync": ("conveyor", ("sqlite", "postgres", "redis")),
    "procrastinate": ("procrastinate", ("postgres",)),
    "pgqueuer": ("pgqueuer", ("postgres",)),
    "celery": ("celery_", ("redis",)),
    "rq": ("rq_", ("redis",)),
    "dramatiq": ("dramatiq_", ("redis",)),
    "arq": ("arq_", ("redis",)),
    "saq": ("saq_", ("redis",)),
    "taskiq": ("taskiq_", ("redis",)),
    "streaq": ("streaq_", ("redis",)),
}


def load(name: str) -> type[System]:
    """The adapter class of a system (imports the library, so call it in that system's interpreter)."""
    module = importlib.import_module(f"bench.systems.{SYSTEMS[name][0]}")
    cls: type[System] = module.ADAPTERS[name] if hasattr(module, "ADAPTERS") else module.Adapter
    return cls


def systems_for(engine: str) -> list[str]:
    return [name for name, (_, engines) in SYSTEMS.items() if engine in engines]
