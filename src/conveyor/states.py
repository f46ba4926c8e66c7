"""The one transition table of the job lifecycle (DESIGN §1).

Backends implement transitions atomically in their own language (SQL, Lua) but they never
decide what is legal or where a job goes next: the decisions below (``initial_state``,
``after_failure``, ``after_expiry``) are made here, at runtime, and handed to the engine as the
target state. The conformance suite and the property test check every engine against this table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from conveyor.errors import InvalidTransition
from conveyor.types import DependencyPolicy, JobState

W, S, Q, R = JobState.WAITING, JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING
OK, FAILED, CANCELED = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED


class Action(enum.StrEnum):
    """Every operation that moves a job from one state to another."""

    DEPS_DONE = "deps_done"  # all dependencies succeeded
    PROMOTE = "promote"  # run_at reached
    CLAIM = "claim"  # a worker takes it (attempt += 1, new lease token)
    HEARTBEAT = "heartbeat"  # lease extended, same token
    COMPLETE = "complete"  # task returned
    RETRY = "retry"  # task raised, attempts left: back to scheduled with backoff
    FAIL = "fail"  # task raised, attempts exhausted or not retryable: dead letter
    EXPIRE_REQUEUE = "expire_requeue"  # lease expired, attempts left
    EXPIRE_FAIL = "expire_fail"  # lease expired, attempts exhausted
    RELEASE = "release"  # graceful shutdown hands it back without charging an attempt
    CANCEL = "cancel"
    REDRIVE = "redrive"  # dead letter back to the queue, attempts reset


TRANSITIONS: dict[tuple[JobState, Action], JobState] = {
    (W, Action.DEPS_DONE): Q,
    (S, Action.PROMOTE): Q,
    (Q, Action.CLAIM): R,
    (S, Action.CLAIM): R,  # a due scheduled job may be claimed before the promoter runs
    (R, Action.HEARTBEAT): R,
    (R, Action.COMPLETE): OK,
    (R, Action.RETRY): S,
    (R, Action.FAIL): FAILED,
    (R, Action.EXPIRE_REQUEUE): Q,
    (R, Action.EXPIRE_FAIL): FAILED,
    (R, Action.RELEASE): Q,
    (W, Action.CANCEL): CANCELED,
    (S, Action.CANCEL): CANCELED,
    (Q, Action.CANCEL): CANCELED,
    (R, Action.CANCEL): CANCELED,
    (FAILED, Action.REDRIVE): Q,
}


def next_state(state: JobState, action: Action) -> JobState:
    """The state ``action`` leads to from ``state``; raises InvalidTransition if illegal."""
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(f"cannot {action.value} a job that is {state.value}") from None


def is_legal(state: JobState, action: Action) -> bool:
    return (state, action) in TRANSITIONS


def sources(action: Action) -> frozenset[JobState]:
    """States from which ``action`` is legal (what a backend's WHERE clause must test)."""
    return frozenset(s for (s, a) in TRANSITIONS if a is action)


# -- decisions -------------------------------------------------------------------------------
# The lifecycle's policy, decided once here and applied by every engine as a conditional write
# ("set X if running with this token"), as River's JobSetStateIfRunning does. Engines never
# re-derive these rules; what they must decide inside a transaction for atomicity (claim order,
# dependency release) is named in backend/protocol.py.


def attempts_exhausted(attempts: int, max_attempts: int) -> bool:
    """True once a job has been claimed ``max_attempts`` times: no attempt is left.

    Attempts are counted at claim time (DESIGN §1), so a job that kills every worker that
    touches it still reaches this point and is dead-lettered instead of looping forever.
    """
    return attempts >= max_attempts


def initial_state(*, canceled_dependency: bool, unfinished_dependencies: int, due: bool) -> JobState:
    """The state a new job starts in.

    A canceled dependency can never succeed, so the job is canceled at once; unfinished
    dependencies make it wait; otherwise it is queued when due, scheduled when its run_at lies
    in the engine's future.
    """
    if canceled_dependency:
        return CANCELED
    if unfinished_dependencies > 0:
        return W
    return Q if due else S


def initial_state_table() -> dict[str, JobState]:
    """``initial_state`` for each combination of facts an engine script can observe.

    An engine that cannot call Python inside its atomic step (a Redis Lua script) receives this
    table and looks the state up by the facts it found (``canceled``, ``waiting``, ``due``,
    ``future``), so the rule itself stays here.
    """
    return {
        "canceled": initial_state(canceled_dependency=True, unfinished_dependencies=0, due=True),
        "waiting": initial_state(canceled_dependency=False, unfinished_dependencies=1, due=True),
        "due": initial_state(canceled_dependency=False, unfinished_dependencies=0, due=True),
        "future": initial_state(canceled_dependency=False, unfinished_dependencies=0, due=False),
    }


def after_failure(attempts: int, max_attempts: int, *, retryable: bool) -> JobState:
    """Where a running job goes when its attempt raised: retried later, or dead-lettered.

    ``retryable`` is False for errors a retry cannot fix (invalid input, a task that said so).
    """
    if not retryable or attempts_exhausted(attempts, max_attempts):
        return next_state(R, Action.FAIL)
    return next_state(R, Action.RETRY)


def after_expiry(attempts: int, max_attempts: int) -> JobState:
    """Where a running job goes when its lease expired (its worker crashed or stalled)."""
    if attempts_exhausted(attempts, max_attempts):
        return next_state(R, Action.EXPIRE_FAIL)
    return next_state(R, Action.EXPIRE_REQUEUE)


def lease_expired_error(attempt: int) -> dict[str, str]:
    """The error recorded on a job whose worker lost its lease during ``attempt``."""
    return {"type": "LeaseExpired", "message": f"worker lost the lease during attempt {attempt} (crashed or stalled)"}


# -- dependencies ----------------------------------------------------------------------------
# What happens to a waiting dependent when one of its dependencies changes is decided here, as
# a count over the states of ALL its dependencies (not a counter kept on the side): a redrive
# that turns a failed dependency back into a queued one needs no bookkeeping, and the answer
# does not depend on the order the dependencies ended in. Engines call ``dependent_outcome``
# inside the transaction that changed the dependency (the Redis scripts apply the same two
# comparisons to ``dependency_rules_table()``, embedded in every script by scripts.py).


class DependentOutcome(enum.StrEnum):
    """What a waiting dependent does after looking at its dependencies' states."""

    WAIT = "wait"  # stays waiting
    RELEASE = "release"  # queued (scheduled if its run_at is still ahead)
    CANCEL = "cancel"  # canceled with a DependencyFailed error; the cancel cascades


@dataclass(frozen=True)
class DependencyRule:
    """Per policy: the dependency states that count toward release (``done``) and those that
    can never count any more (``lost``). States in neither may still change (unfinished, or
    failed under ``wait``, which a redrive may bring back)."""

    done: frozenset[JobState]
    lost: frozenset[JobState]


DEPENDENCY_RULES: dict[DependencyPolicy, DependencyRule] = {
    DependencyPolicy.CANCEL: DependencyRule(frozenset({OK}), frozenset({FAILED, CANCELED})),
    DependencyPolicy.CONTINUE: DependencyRule(frozenset({OK, FAILED, CANCELED}), frozenset()),
    DependencyPolicy.WAIT: DependencyRule(frozenset({OK}), frozenset({CANCELED})),
}

GONE = OK
"""How a dependency that no longer exists counts (pruned after it ended): a pruned job ended
long ago, and a dependent still waiting then was only ever waiting on its other dependencies."""


def needed(quorum: int | None, dependencies: int) -> int:
    """How many dependencies must be done: all, or the quorum (never more than there are)."""
    return dependencies if quorum is None else min(quorum, dependencies)


def dependent_outcome_counts(
    policy: DependencyPolicy, quorum: int | None, total: int, ended: Mapping[JobState, int]
) -> DependentOutcome:
    """Release once enough dependencies are done; cancel once enough are lost that the quorum
    (all, by default) can no longer be reached; else keep waiting.

    ``total`` is the number of distinct dependencies, ``ended`` how many of them are in each
    terminal state now (the engines keep these counts on the dependent, so settling a fan-in
    of a thousand chunks reads one row, not a thousand).
    """
    rule = DEPENDENCY_RULES[policy]
    need = needed(quorum, total)
    if sum(ended.get(s, 0) for s in rule.done) >= need:
        return DependentOutcome.RELEASE
    if total - sum(ended.get(s, 0) for s in rule.lost) < need:
        return DependentOutcome.CANCEL
    return DependentOutcome.WAIT


def ended_counts(dependency_states: Sequence[JobState | None]) -> dict[JobState, int]:
    """How many of these dependencies are in each terminal state (None: gone, see ``GONE``)."""
    counts = dict.fromkeys((OK, FAILED, CANCELED), 0)
    for state in dependency_states:
        state = GONE if state is None else state
        if state in counts:
            counts[state] += 1
    return counts


def dependent_outcome(
    policy: DependencyPolicy, quorum: int | None, dependency_states: Sequence[JobState | None]
) -> DependentOutcome:
    """``dependent_outcome_counts`` over the states of every dependency (one entry each)."""
    return dependent_outcome_counts(policy, quorum, len(dependency_states), ended_counts(dependency_states))


def first_lost(policy: DependencyPolicy, dependencies: Sequence[tuple[str, JobState | None]]) -> str | None:
    """The first dependency (in the order given) that counts as lost: the one a cancel at
    enqueue names."""
    rule = DEPENDENCY_RULES[policy]
    return next((dep for dep, state in dependencies if state in rule.lost), None)


def dependency_rules_table() -> dict[str, dict[str, list[str]]]:
    """``DEPENDENCY_RULES`` as plain JSON for an engine script (``{policy: {done, lost}}``)."""
    return {
        policy.value: {"done": sorted(s.value for s in rule.done), "lost": sorted(s.value for s in rule.lost)}
        for policy, rule in DEPENDENCY_RULES.items()
    }


def dependency_failed_error(dependency: str, step: str | None, state: JobState) -> dict[str, str]:
    """The error of a dependent canceled because ``dependency`` ended in ``state``."""
    name = f"dependency {dependency}" + (f" ({step})" if step else "")
    verb = "was canceled" if state is CANCELED else "failed"
    return {"type": "DependencyFailed", "message": f"{name} {verb}", "dependency": dependency}
