"""Load the Lua transition scripts: ``scripts/<name>.lua`` with ``scripts/lib.lua`` in front.

Each script is registered with redis-py (``register_script``): it runs by EVALSHA and is
loaded again by itself after NOSCRIPT (e.g. after a Redis restart or SCRIPT FLUSH).

``SCRIPTS`` declares, in this one place, what a script does when the engine sends it again
after a lost connection (the first send may or may not have run; see ``RedisBackend._script``):

* ``READ``: reads only; redoing it is harmless.
* ``IDEMPOTENT``: redoing it leaves the same state and gives the same answer (a heartbeat
  extends the same leases again; a pause sets the same flag).
* ``REPLY``: changes state. The caller sends a call id (fresh per logical call, the same on
  the retry) and the script body is wrapped by ``lib.lua``'s ``replied``: the body's reply is
  stored under ``<base>:reply:<call id>`` for ``REPLY_TTL_MS`` in the same script run, and
  any later run with that call id (the retry, or a first send that Redis runs late, after a
  socket timeout) returns the stored reply without running the body again. One extra SET per
  call (and a GET of a missing key), no extra round trip.
"""

from __future__ import annotations

import enum
import secrets
from functools import cache
from importlib import resources
from typing import Any

from conveyor import serde, states

PACKAGE = "conveyor.backend.redis"


class RetrySafety(enum.StrEnum):
    READ = "read"
    IDEMPOTENT = "idempotent"
    REPLY = "reply"


READ, IDEMPOTENT, REPLY = RetrySafety.READ, RetrySafety.IDEMPOTENT, RetrySafety.REPLY

SCRIPTS: dict[str, RetrySafety] = {
    "enqueue": REPLY,
    "claim": REPLY,
    "heartbeat": IDEMPOTENT,
    "complete": REPLY,
    "complete_many": REPLY,
    "fail": REPLY,
    "release": REPLY,
    "move": REPLY,
    "checkpoint": IDEMPOTENT,
    "progress": REPLY,
    "artifact": REPLY,
    "cancel": REPLY,
    "redrive": REPLY,
    "expired": READ,
    "expire": REPLY,
    "promote": REPLY,
    "prune": REPLY,
    "effect": REPLY,
    "pause": IDEMPOTENT,
    "position": READ,
    "list": READ,
    "stats": READ,
    "drain": READ,
    "now": READ,
    "outbox_take": REPLY,
    "outbox_ack": IDEMPOTENT,
    "apikey": IDEMPOTENT,  # handles its own retry flag (see the script header)
    "workers": IDEMPOTENT,
}
NAMES = tuple(SCRIPTS)


def new_call_id(name: str) -> str:
    """The call id of one logical call of script ``name``: random for REPLY scripts, else ""."""
    return secrets.token_hex(12) if SCRIPTS[name] is RetrySafety.REPLY else ""


@cache
def script_source(name: str) -> str:
    """The full text sent to Redis for ``name``: the shared library, then the script.

    A REPLY script's body becomes the function ``main`` run through ``replied`` (lib.lua), so
    no script has to remember to store its reply on every ``return``.
    """
    folder = resources.files(PACKAGE).joinpath("scripts")
    lib = folder.joinpath("lib.lua").read_text()
    body = folder.joinpath(f"{name}.lua").read_text()
    if SCRIPTS[name] is RetrySafety.REPLY:
        body = f"local function main()\n{body}\nend\nreturn replied(main)\n"
    return f"{dependency_rules()}\n{lib}\n-- {name}.lua\n{body}"


def dependency_rules() -> str:
    """The dependency rules of ``conveyor.states`` as a Lua global (``DEP_RULES``), so lib.lua
    applies them without restating which state counts as done or lost under which policy."""
    table = {"rules": states.dependency_rules_table()}
    return f"local DEP_RULES = cjson.decode({lua_string(serde.dumps(table))})"


def lua_string(text: str) -> str:
    """``text`` as a Lua long-bracket string literal (no escapes needed)."""
    level = "="
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def register_all(client: Any) -> dict[str, Any]:
    """``{name: AsyncScript}`` bound to ``client``."""
    return {name: client.register_script(script_source(name)) for name in NAMES}
