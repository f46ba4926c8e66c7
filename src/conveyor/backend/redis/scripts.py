"""Load the Lua transition scripts: ``scripts/<name>.lua`` with ``scripts/lib.lua`` in front.

Each script is registered with redis-py (``register_script``): it runs by EVALSHA and is
loaded again by itself after NOSCRIPT (e.g. after a Redis restart or SCRIPT FLUSH).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

PACKAGE = "conveyor.backend.redis"
NAMES = (
    "enqueue",
    "claim",
    "heartbeat",
    "complete",
    "complete_many",
    "fail",
    "release",
    "progress",
    "artifact",
    "cancel",
    "redrive",
    "reap",
    "promote",
    "prune",
    "effect",
    "pause",
    "position",
    "list",
    "stats",
    "drain",
    "now",
    "outbox_take",
    "outbox_ack",
)


@cache
def script_source(name: str) -> str:
    """The full text sent to Redis for ``name``: the shared library, then the script."""
    folder = resources.files(PACKAGE).joinpath("scripts")
    lib = folder.joinpath("lib.lua").read_text()
    body = folder.joinpath(f"{name}.lua").read_text()
    return f"{lib}\n-- {name}.lua\n{body}"


def register_all(client: Any) -> dict[str, Any]:
    """``{name: AsyncScript}`` bound to ``client``."""
    return {name: client.register_script(script_source(name)) for name in NAMES}
