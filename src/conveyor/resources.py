"""Resources: tasks say what they need (``resources={"gpu": 1}``), nodes what they have
(``conveyor worker --resources gpu=1``); a job is only claimed by a node that has room for it.

No engine knows about resources. Jobs of a task that needs some are routed at enqueue to a
*resource queue* named after the task's queue and its needs (``"default@gpu"``,
``"render@gpu=2+ram=8"``); a node that lacks a resource never names such a queue in a claim,
so it can never take the job. A node that has the resources serves the resource queues of
its queues besides the queues themselves, and ``ResourceGate`` caps each claim from a resource
queue by how many more jobs fit in what it has free: a node with ``gpu=1`` holds at most one
``gpu`` job at a time. See docs/decisions/0008-email-and-resources.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from conveyor.errors import ConfigError
from conveyor.types import Job

SEPARATOR = "@"
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
MAX_AMOUNT = 1_000_000


def check_needs(needs: Mapping[str, int]) -> dict[str, int]:
    """``needs`` with names and amounts checked (lower-case names, amounts >= 1)."""
    out: dict[str, int] = {}
    for name, amount in needs.items():
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"resource name {name!r} must be lower-case letters, digits, - or _ (e.g. gpu)")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= MAX_AMOUNT:
            raise ConfigError(f"resource {name}: amount must be a whole number from 1, got {amount!r}")
        out[name] = amount
    return dict(sorted(out.items()))


def resource_queue(queue: str, needs: Mapping[str, int]) -> str:
    """The queue jobs of ``queue`` needing ``needs`` go to: ``q@gpu``, ``q@gpu=2+ram=8``; ``queue`` if none."""
    if not needs:
        return queue
    parts = [name if amount == 1 else f"{name}={amount}" for name, amount in sorted(needs.items())]
    return f"{queue}{SEPARATOR}{'+'.join(parts)}"


def split_queue(name: str) -> tuple[str, dict[str, int]]:
    """(base queue, needs) of a queue name; needs are empty for a plain queue."""
    base, sep, spec = name.rpartition(SEPARATOR)
    if not sep:
        return name, {}
    needs: dict[str, int] = {}
    for part in spec.split("+"):
        key, eq, amount = part.partition("=")
        if not NAME.match(key) or (eq and not amount.isdigit()):
            return name, {}  # an ordinary queue that happens to contain "@"
        needs[key] = int(amount) if eq else 1
    return base, needs


def parse_resources(text: str) -> dict[str, int]:
    """``--resources gpu=1,ram=16`` as a dict; a bare name means 1."""
    have: dict[str, int] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, eq, amount = item.partition("=")
        try:
            value = int(amount) if eq else 1
        except ValueError:
            raise ConfigError(f"--resources: {item!r} must be name=amount, e.g. gpu=1") from None
        if key.strip() in have:
            raise ConfigError(f"--resources names {key.strip()!r} twice")
        have[key.strip()] = value
    return check_needs(have)


def served_queues(queues: Iterable[str], have: Mapping[str, int], needs_by_queue: Iterable[str]) -> tuple[str, ...]:
    """The resource queues (among ``needs_by_queue``, the app's) a node with ``have`` serves for ``queues``."""
    bases = set(queues)
    out = []
    for name in needs_by_queue:
        base, needs = split_queue(name)
        if needs and base in bases and all(have.get(r, 0) >= n for r, n in needs.items()):
            out.append(name)
    return tuple(sorted(set(out)))


class ResourceGate:
    """What a node has and what its held jobs use; how many more jobs of a resource queue fit."""

    def __init__(self, have: Mapping[str, int], queues: Iterable[str]) -> None:
        self.have = dict(have)
        self.in_use = dict.fromkeys(self.have, 0)
        self.queues = tuple(queues)
        self._held: dict[str, dict[str, int]] = {}

    def room(self, queue: str) -> int:
        """Jobs of ``queue`` that fit in what is free now (0 when one more would not)."""
        needs = split_queue(queue)[1]
        if not needs:
            return 0
        return min((self.have.get(r, 0) - self.in_use.get(r, 0)) // n for r, n in needs.items())

    def take(self, job: Job) -> None:
        """A claimed job of a resource queue holds its needs until ``release``."""
        needs = split_queue(job.queue)[1]
        if not needs or job.id in self._held:
            return
        for r, n in needs.items():
            self.in_use[r] = self.in_use.get(r, 0) + n
        self._held[job.id] = needs

    def release(self, job: Job) -> None:
        for r, n in self._held.pop(job.id, {}).items():
            self.in_use[r] -= n
