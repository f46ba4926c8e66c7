"""The one transition table of the job lifecycle (DESIGN §1).

Backends implement transitions atomically in their own language (SQL, Lua) but they never
decide what is legal: the conformance suite and the property test check every engine
against this table.
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
