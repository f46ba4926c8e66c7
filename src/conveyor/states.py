"""The one transition table of the job lifecycle (DESIGN §1).

Backends implement transitions atomically in their own language (SQL, Lua) but they never
decide what is legal or where a job goes next: the decisions below (``initial_state``,
``after_failure``, ``after_expiry``) are made here, at runtime, and handed to the engine as the
target state. The conformance suite and the property test check every engine against this table.
"""

from __future__ import annotations

import enum

from conveyor.errors import InvalidTransition
from conveyor.types import JobState

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
