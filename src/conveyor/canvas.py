"""Workflows from Python: signatures, chains, groups and chunked fan-out.

A ``Signature`` is a job not enqueued yet: a task, its arguments, its options and the other
signatures it runs after. Each signature gets its job id when it is made, so a batch can point
inside itself; ``plan`` orders a set of signatures (every dependency before its dependents)
and turns them into engine requests that all share one workflow id, and the app enqueues the
lot in ONE engine call (``enqueue_many``): either every step exists, or none does.

Nothing here waits for anything: a fan-in is a job that the engine releases when its
dependencies end (docs/decisions/0004-dependency-policies.md), so no worker slot is ever held
while children run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError
from conveyor.task import CallOptions
from conveyor.types import DependencyPolicy, Job, JSONValue, new_job_id

if TYPE_CHECKING:
    from conveyor.backend.protocol import EnqueueRequest
    from conveyor.task import Task

OPTION_NAMES = frozenset(
    {
        "step",
        "queue",
        "priority",
        "delay",
        "run_at",
        "idempotency_key",
        "depends_on",
        "tenant",
        "max_attempts",
        "timeout",
        "on_dependency_failure",
        "quorum",
    }
)
"""What ``Signature.set`` accepts: the per-call options of ``CallOptions`` except the workflow id
(one per enqueue, given to ``enqueue_many`` / ``chain`` / ``group``)."""


@dataclass(frozen=True)
class Signature:
    """One step to enqueue: ``task.s(**args)``, refined with ``.set(...)`` and ``.after(...)``.

    ``after`` are the signatures it depends on (enqueued in the same call); ``options.depends_on``
    may name jobs that exist already. The job id is fixed when the signature is made.
    """

    task: Task
    args: dict[str, Any]
    options: CallOptions = field(default_factory=CallOptions)
    after_: tuple[Signature, ...] = ()
    job_id: str = field(default_factory=new_job_id)

    def set(self, **options: Any) -> Signature:
        """The same step (same job id) with options changed: step, queue, priority, delay,
        run_at, idempotency_key, depends_on (existing job ids), tenant, max_attempts, timeout,
        on_dependency_failure, quorum."""
        unknown = sorted(set(options) - OPTION_NAMES)
        if unknown:
            raise ConfigError(f"unknown signature option(s): {', '.join(unknown)}")
        if "on_dependency_failure" in options:
            options["on_dependency_failure"] = DependencyPolicy(options["on_dependency_failure"])
        if "depends_on" in options:
            options["depends_on"] = tuple(options["depends_on"])
        return replace(self, options=replace(self.options, **options))

    def after(self, *parents: Signature) -> Signature:
        """The same step, also depending on ``parents`` (enqueued in the same call)."""
        return replace(self, after_=self.after_ + tuple(parents))

    @property
    def step(self) -> str | None:
        return self.options.step


def signature(task: Task, args: dict[str, Any], **options: Any) -> Signature:
    """``task.s(**args)``: a signature with default options (``options`` as ``Signature.set``)."""
    sig = Signature(task, dict(args))
    return sig.set(**options) if options else sig


@dataclass(frozen=True)
class Workflow:
    """What ``enqueue_many`` / ``chain`` / ``group`` / ``fan_out`` enqueued: the workflow id and
    every job as stored, in plan order (dependencies first). Iterable and indexable like a list."""

    id: str
    jobs: list[Job]

    def __iter__(self) -> Iterator[Job]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, index: int) -> Job:
        return self.jobs[index]

    def step(self, name: str) -> Job:
        """The job of the step called ``name``; KeyError when there is none."""
        for job in self.jobs:
            if job.step == name:
                return job
        raise KeyError(name)

    @property
    def last(self) -> Job:
        """The last job of the plan: a chain's final step, a group's fan-in."""
        return self.jobs[-1]


def new_workflow_id() -> str:
    return str(uuid.uuid4())


def ordered(items: Iterable[Signature]) -> list[Signature]:
    """Every signature given plus the ones they run after, each once, dependencies first (in
    the order given otherwise). A cycle cannot be built (a signature only points at older
    ones), but a job id used by two different signatures is refused."""
    out: list[Signature] = []
    seen: dict[str, Signature] = {}

    def visit(sig: Signature) -> None:
        known = seen.get(sig.job_id)
        if known is not None:
            if known is not sig and known != sig:
                raise ConfigError(f"two different steps share job id {sig.job_id}: .set() it once, not twice")
            return
        seen[sig.job_id] = sig
        for parent in sig.after_:
            visit(parent)
        out.append(sig)

    for sig in items:
        visit(sig)
    return out


def step_names(sigs: Sequence[Signature]) -> list[str]:
    """Each step's name: its own, or its task's short name (``reports.fetch`` -> ``fetch``),
    numbered when the workflow has it more than once (``fetch``, ``fetch-2``, ...)."""
    taken = {s.options.step for s in sigs if s.options.step}
    names: list[str] = []
    for sig in sigs:
        if sig.options.step:
            names.append(sig.options.step)
            continue
        base = name = sig.task.name.rsplit(".", 1)[-1]
        n = 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names.append(name)
    return names


def plan(items: Iterable[Signature], workflow_id: str) -> tuple[list[Signature], list[EnqueueRequest]]:
    """The signatures in enqueue order and their engine requests, all in ``workflow_id``."""
    sigs = ordered(items)
    if not sigs:
        raise ConfigError("nothing to enqueue: give at least one signature")
    requests = []
    for sig, name in zip(sigs, step_names(sigs), strict=True):
        depends_on = tuple(dict.fromkeys((*sig.options.depends_on, *(p.job_id for p in sig.after_))))
        quorum = sig.options.quorum
        if quorum is not None and not 1 <= quorum <= len(depends_on):
            raise ConfigError(f"step {name!r}: quorum must be between 1 and its {len(depends_on)} dependencies")
        options = replace(sig.options, step=name, depends_on=depends_on, workflow_id=workflow_id)
        request = sig.task.app.build_request(sig.task.name, sig.args, options)
        requests.append(replace(request, job_id=sig.job_id))
    return sigs, requests


def chained(sigs: Sequence[Signature]) -> list[Signature]:
    """Each signature after the previous one."""
    if not sigs:
        raise ConfigError("a chain needs at least one signature")
    out = [sigs[0]]
    for sig in sigs[1:]:
        out.append(sig.after(out[-1]))
    return out


def grouped(
    sigs: Sequence[Signature],
    then: Signature | None,
    quorum: int | None,
    on_dependency_failure: DependencyPolicy | None,
) -> list[Signature]:
    """The members, and ``then`` after all of them (released at ``quorum`` if given)."""
    if not sigs:
        raise ConfigError("a group needs at least one signature")
    if then is None:
        if quorum is not None or on_dependency_failure is not None:
            raise ConfigError("quorum and on_dependency_failure apply to the group's `then` step: give one")
        return list(sigs)
    fan_in = then.after(*sigs)
    if quorum is not None:
        fan_in = fan_in.set(quorum=quorum)
    if on_dependency_failure is not None:
        fan_in = fan_in.set(on_dependency_failure=on_dependency_failure)
    return [*sigs, fan_in]


def chunks(
    task: Task, items: Sequence[JSONValue], chunk_size: int, then: Signature | None, arg: str
) -> list[Signature]:
    """``task`` once per ``chunk_size`` items (named ``<task>[<n>]``), then ``then`` after all."""
    if chunk_size < 1:
        raise ConfigError("chunk_size must be at least 1")
    items = list(items)
    base = task.name.rsplit(".", 1)[-1]
    parts = [
        signature(task, {arg: items[start : start + chunk_size]}, step=f"{base}[{n}]")
        for n, start in enumerate(range(0, len(items), chunk_size))
    ]
    if not parts:
        raise ConfigError("fan_out needs at least one item")
    return grouped(parts, then, None, None)
