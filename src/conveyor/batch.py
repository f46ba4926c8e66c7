"""Plan a batch of submits (``POST /v1/jobs:batch``, ``conveyor submit --from-file``) as one
engine call: every item validated, dependencies on earlier items resolved, ids pre-assigned.

An item may depend on an earlier item of the same batch by its ``step`` name: the job ids are
chosen here (``types.new_job_id``, time-ordered) before anything is stored, so the whole batch
goes to ``Backend.enqueue_many`` in one transaction, all items sharing one workflow id. Every bad
item is reported (``BatchInvalid``, one ``ItemError`` per bad field, naming the item's index), so
a client fixes its batch in one round; nothing is stored unless every item is valid.

Idempotency keys are per item and all-or-none: a batch whose every item has a key is safe to
send again (each item answers its original job); with only some keys, a replay would enqueue the
unkeyed items again, pointing at dependencies that were never stored, so it is refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from conveyor.errors import ConfigError, ConveyorError, InvalidArguments, UnknownTask
from conveyor.task import CallOptions
from conveyor.types import Job, new_job_id

if TYPE_CHECKING:
    from conveyor.app import Conveyor
    from conveyor.backend.protocol import EnqueueRequest

MAX_BATCH = 1000
"""Most items one batch may hold (one transaction; larger work: several batches or a fan-out)."""
MAX_DEPENDENCIES = 1000
STEP_PATTERN = r"^[A-Za-z0-9_.\-]{1,100}$"
"""A step name: letters, digits, ``_ . -`` (it is shown in URLs, tables and ``ctx.results`` keys)."""
_STEP_RE = re.compile(STEP_PATTERN)


@dataclass(frozen=True)
class ItemError:
    """One bad field of one item: ``field`` is relative to the item (``args.title``, ``depends_on[1]``)."""

    index: int
    field: str
    message: str


class BatchInvalid(ConveyorError):
    """At least one item of a batch is invalid; ``errors`` lists every bad field of every item."""

    def __init__(self, errors: list[ItemError]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"item {first.index}: {first.field}: {first.message}{more}")
        self.errors = errors


@dataclass(frozen=True)
class BatchItem:
    """One submit of a batch: ``options.depends_on`` holds step names of earlier items or job ids."""

    task: str
    args: dict[str, Any]
    options: CallOptions


@dataclass(frozen=True)
class BatchPlan:
    workflow_id: str
    requests: list[EnqueueRequest]


def check_dependencies(depends_on: Sequence[str], quorum: int | None) -> list[tuple[str, str]]:
    """What is wrong with a job's dependency options, as (field, message) pairs."""
    problems: list[tuple[str, str]] = []
    if len(depends_on) > MAX_DEPENDENCIES:
        problems.append(("depends_on", f"at most {MAX_DEPENDENCIES} dependencies"))
    seen: set[str] = set()
    for i, dep in enumerate(depends_on):
        if dep in seen:
            problems.append((f"depends_on[{i}]", f"{dep!r} is listed twice"))
        seen.add(dep)
    if quorum is not None:
        if not depends_on:
            problems.append(("quorum", "a quorum needs depends_on"))
        elif not 1 <= quorum <= len(depends_on):
            problems.append(("quorum", f"must be between 1 and the number of dependencies ({len(depends_on)})"))
    return problems


def joined_workflow(
    workflow_id: str | None, depends_on: Sequence[str], step: str | None, first_dependency: Job | None
) -> str | None:
    """The workflow a single submit joins: the one it names; else its first dependency's; else,
    when it has a step name or dependencies, a new one (so a chain built one submit at a time is
    still one workflow). A job with neither belongs to no workflow."""
    if workflow_id is not None:
        return workflow_id
    if first_dependency is not None and first_dependency.workflow_id:
        return first_dependency.workflow_id
    if depends_on or step is not None:
        return new_job_id()
    return None


def check_step(step: str | None) -> str | None:
    """Why ``step`` is not a valid step name, or None."""
    if step is None or _STEP_RE.match(step):
        return None
    return "must be 1-100 letters, digits, '_', '.' or '-'"


def plan_batch(
    app: Conveyor,
    items: Sequence[BatchItem],
    *,
    workflow_id: str | None = None,
    hidden: Callable[[str], bool] = lambda name: False,
) -> BatchPlan:
    """The engine requests of a batch, or BatchInvalid naming every bad field of every item.

    ``hidden`` names tasks this caller may not submit (the API hides internal tasks): they are
    reported as unknown.
    """
    if not items:
        raise BatchInvalid([ItemError(0, "items", "a batch needs at least one item")])
    if len(items) > MAX_BATCH:
        raise BatchInvalid([ItemError(MAX_BATCH, "items", f"a batch holds at most {MAX_BATCH} items")])
    workflow = workflow_id or new_job_id()
    errors: list[ItemError] = []
    ids: list[str] = []
    steps: dict[str, int] = {}
    for index, item in enumerate(items):
        ids.append(new_job_id())
        step = item.options.step
        if step is None:
            continue
        if (why := check_step(step)) is not None:
            errors.append(ItemError(index, "step", why))
        elif step in steps:
            errors.append(ItemError(index, "step", f"{step!r} is also the step of item {steps[step]}"))
        else:
            steps[step] = index
    keyed = [item.options.idempotency_key is not None for item in items]
    if any(keyed) and not all(keyed):
        for index, has_key in enumerate(keyed):
            if not has_key:
                message = "give every item an idempotency key, or none (a partial replay cannot be matched)"
                errors.append(ItemError(index, "idempotency_key", message))
    requests: list[EnqueueRequest] = []
    for index, item in enumerate(items):
        opts = item.options
        resolved: list[str] = []
        for j, ref in enumerate(opts.depends_on):
            target = steps.get(ref)
            if target is None:
                resolved.append(ref)  # a job id outside the batch: the engine checks it exists
            elif target >= index:
                where = "this item itself" if target == index else f"item {target}, which comes later"
                errors.append(ItemError(index, f"depends_on[{j}]", f"step {ref!r} is {where}"))
            else:
                resolved.append(ids[target])
        errors += [ItemError(index, f, m) for f, m in check_dependencies(opts.depends_on, opts.quorum)]
        if opts.workflow_id is not None and opts.workflow_id != workflow:
            errors.append(ItemError(index, "workflow_id", "every item joins the batch's workflow: set it on the batch"))
        if hidden(item.task):
            errors.append(ItemError(index, "task", f"unknown task {item.task!r}"))
            continue
        options = replace(opts, depends_on=tuple(resolved), workflow_id=workflow)
        try:
            request = app.build_request(item.task, item.args, options)
        except UnknownTask as exc:
            errors.append(ItemError(index, "task", str(exc)))
        except InvalidArguments as exc:
            errors += [ItemError(index, f"args.{e['field']}", e["message"]) for e in exc.errors] or [
                ItemError(index, "args", str(exc))
            ]
        except ConfigError as exc:
            errors.append(ItemError(index, "delay" if "delay" in str(exc) else "options", str(exc)))
        else:
            requests.append(replace(request, job_id=ids[index]))
    if errors:
        raise BatchInvalid(errors)
    return BatchPlan(workflow, requests)
