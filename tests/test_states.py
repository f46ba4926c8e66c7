"""The transition table of conveyor.states, checked over every (state, action) pair.

The table is the single source of truth every engine is tested against, so it is pinned here
explicitly: a change to the lifecycle must change this file too, on purpose.
"""

from __future__ import annotations

import itertools

import pytest

from conveyor.errors import InvalidTransition
from conveyor.states import (
    TRANSITIONS,
    Action,
    after_expiry,
    after_failure,
    initial_state,
    initial_state_table,
    is_legal,
    next_state,
    sources,
)
from conveyor.types import PENDING_STATES, TERMINAL_STATES, JobState

W, S, Q, R = JobState.WAITING, JobState.SCHEDULED, JobState.QUEUED, JobState.RUNNING
OK, FAILED, CANCELED = JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED

# The lifecycle of DESIGN §1, written out independently of states.py.
EXPECTED: dict[tuple[JobState, Action], JobState] = {
    (W, Action.DEPS_DONE): Q,
    (S, Action.PROMOTE): Q,
    (Q, Action.CLAIM): R,
    (S, Action.CLAIM): R,
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

ALL_PAIRS = list(itertools.product(JobState, Action))


def test_table_is_exactly_the_documented_lifecycle() -> None:
    assert TRANSITIONS == EXPECTED


@pytest.mark.parametrize(("state", "action"), ALL_PAIRS, ids=[f"{s.value}-{a.value}" for s, a in ALL_PAIRS])
def test_every_pair(state: JobState, action: Action) -> None:
    if (state, action) in EXPECTED:
        assert is_legal(state, action)
        assert next_state(state, action) is EXPECTED[(state, action)]
    else:
        assert not is_legal(state, action)
        with pytest.raises(InvalidTransition) as info:
            next_state(state, action)
        # The message names both the action and the state, so a user knows what went wrong.
        assert action.value in str(info.value)
        assert state.value in str(info.value)


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_accept_only_redrive_from_failed(state: JobState) -> None:
    legal = {a for a in Action if is_legal(state, a)}
    assert legal == ({Action.REDRIVE} if state is FAILED else set())


def test_every_non_terminal_state_can_be_canceled() -> None:
    for state in JobState:
        assert is_legal(state, Action.CANCEL) is (not state.terminal)


def test_running_is_reached_only_by_claim_and_left_by_every_worker_outcome() -> None:
    into_running = {(s, a) for (s, a), t in TRANSITIONS.items() if t is R and s is not R}
    assert into_running == {(Q, Action.CLAIM), (S, Action.CLAIM)}
    outcomes = {a: next_state(R, a) for a in Action if is_legal(R, a)}
    assert outcomes == {
        Action.HEARTBEAT: R,
        Action.COMPLETE: OK,
        Action.RETRY: S,
        Action.FAIL: FAILED,
        Action.EXPIRE_REQUEUE: Q,
        Action.EXPIRE_FAIL: FAILED,
        Action.RELEASE: Q,
        Action.CANCEL: CANCELED,
    }


def test_sources_match_the_table() -> None:
    for action in Action:
        assert sources(action) == frozenset(s for s in JobState if (s, action) in EXPECTED)
    assert sources(Action.CANCEL) == frozenset(PENDING_STATES | {R})
    assert sources(Action.CLAIM) == frozenset({Q, S})


def test_every_state_is_reachable_from_enqueue_and_every_pending_state_can_finish() -> None:
    """No dead states: from each initial state (waiting/scheduled/queued) all states are reachable,
    and from every non-terminal state some terminal state is reachable."""
    graph: dict[JobState, set[JobState]] = {s: set() for s in JobState}
    for (src, _), dst in TRANSITIONS.items():
        graph[src].add(dst)

    def reachable(start: JobState) -> set[JobState]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    assert reachable(W) == set(JobState)
    for state in JobState:
        if not state.terminal:
            assert reachable(state) & TERMINAL_STATES == TERMINAL_STATES


def test_state_and_action_values_are_stable_strings() -> None:
    # Stored in databases and sent over HTTP: renaming one is a migration, not a refactor.
    assert [s.value for s in JobState] == [
        "waiting",
        "scheduled",
        "queued",
        "running",
        "succeeded",
        "failed",
        "canceled",
    ]
    assert {a.value for a in Action} == {
        "deps_done",
        "promote",
        "claim",
        "heartbeat",
        "complete",
        "retry",
        "fail",
        "expire_requeue",
        "expire_fail",
        "release",
        "cancel",
        "redrive",
    }
    assert str(JobState.RUNNING) == "running"


# -- decisions: the lifecycle's policy, decided once in states.py ----------------------------


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "retryable", "expected"),
    [
        (1, 3, True, S),
        (2, 3, True, S),
        (3, 3, True, FAILED),
        (4, 3, True, FAILED),
        (1, 3, False, FAILED),
        (1, 1, True, FAILED),
    ],
)
def test_after_failure(attempts: int, max_attempts: int, retryable: bool, expected: JobState) -> None:
    assert after_failure(attempts, max_attempts, retryable=retryable) is expected


@pytest.mark.parametrize(
    ("attempts", "max_attempts", "expected"), [(1, 3, Q), (2, 3, Q), (3, 3, FAILED), (1, 1, FAILED)]
)
def test_after_expiry(attempts: int, max_attempts: int, expected: JobState) -> None:
    assert after_expiry(attempts, max_attempts) is expected


def test_initial_state_and_its_table_agree() -> None:
    assert initial_state(canceled_dependency=True, unfinished_dependencies=2, due=False) is CANCELED
    assert initial_state(canceled_dependency=False, unfinished_dependencies=1, due=True) is W
    assert initial_state(canceled_dependency=False, unfinished_dependencies=0, due=True) is Q
    assert initial_state(canceled_dependency=False, unfinished_dependencies=0, due=False) is S
    assert initial_state_table() == {"canceled": CANCELED, "waiting": W, "due": Q, "future": S}


def test_every_decision_is_a_legal_transition() -> None:
    for attempts in range(0, 5):
        for retryable in (True, False):
            assert is_legal(R, Action.RETRY if after_failure(attempts, 3, retryable=retryable) is S else Action.FAIL)
        assert after_expiry(attempts, 3) in (Q, FAILED)


# -- dependency policies (docs/decisions/0004-dependency-policies.md) --------------------------


def test_dependent_outcome_per_policy() -> None:
    from conveyor.states import DependentOutcome as O
    from conveyor.states import dependent_outcome
    from conveyor.types import DependencyPolicy as P

    cases = [
        # policy, quorum, dependency states, outcome
        (P.CANCEL, None, [OK, OK], O.RELEASE),
        (P.CANCEL, None, [OK, Q], O.WAIT),
        (P.CANCEL, None, [FAILED, Q], O.CANCEL),
        (P.CANCEL, None, [CANCELED, Q], O.CANCEL),
        (P.CANCEL, 2, [FAILED, Q, Q], O.WAIT),  # two may still succeed
        (P.CANCEL, 2, [FAILED, CANCELED, Q], O.CANCEL),
        (P.CANCEL, 2, [OK, FAILED, OK], O.RELEASE),
        (P.CONTINUE, None, [FAILED, CANCELED], O.RELEASE),
        (P.CONTINUE, None, [FAILED, R], O.WAIT),
        (P.CONTINUE, 1, [FAILED, R], O.RELEASE),
        (P.WAIT, None, [FAILED, OK], O.WAIT),  # a redrive may still satisfy it
        (P.WAIT, None, [CANCELED, OK], O.CANCEL),
        (P.WAIT, 1, [CANCELED, FAILED], O.WAIT),
        (P.CANCEL, None, [None, OK], O.RELEASE),  # a pruned dependency ended long ago
        (P.CANCEL, None, [], O.RELEASE),
    ]
    for policy, quorum, deps, want in cases:
        assert dependent_outcome(policy, quorum, deps) is want, (policy, quorum, deps)


def test_dependency_rules_table_and_error() -> None:
    from conveyor.states import dependency_failed_error, dependency_rules_table

    assert dependency_rules_table() == {
        "cancel": {"done": ["succeeded"], "lost": ["canceled", "failed"]},
        "continue": {"done": ["canceled", "failed", "succeeded"], "lost": []},
        "wait": {"done": ["succeeded"], "lost": ["canceled"]},
    }
    assert dependency_failed_error("j1", "fetch", FAILED) == {
        "type": "DependencyFailed",
        "message": "dependency j1 (fetch) failed",
        "dependency": "j1",
    }
    assert dependency_failed_error("j2", None, CANCELED)["message"] == "dependency j2 was canceled"
