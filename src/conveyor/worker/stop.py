"""Why the supervisor stops a job before its task returned: the one representation of it.

The reason travels everywhere as this enum: on the ``JobRun``, in the executor's shared stop
flag (as ``flag``, an int a child process can read without a pipe round trip), in what
``ctx.cancelled`` reports, and in the log lines. It is a ``StrEnum``, so it logs and compares
as its value (``"canceled"``).
"""

from __future__ import annotations

from enum import StrEnum

NO_STOP_FLAG = 0
"""The executor's stop flag while its job may run on."""
OVERRUN_GRACE = 2.0
"""Least seconds a task moved for overrunning ``max_runtime`` gets to checkpoint and return."""


class StopReason(StrEnum):
    CANCELED = "canceled"
    """Someone canceled the job: its outcome is not recorded."""
    LEASE_LOST = "lease_lost"
    """The engine no longer lists this node as the job's owner: another node may run it."""
    SHUTDOWN = "shutdown"
    """The node is draining (or its executors cannot start): the job is handed back unfinished."""
    OVERRUN = "overrun"
    """The job ran past its queue's ``max_runtime``: it moves to the overflow queue (no attempt
    charged). The task is told (``ctx.cancelled``) so it can checkpoint before it stops."""

    @property
    def tells_task(self) -> bool:
        """True when the task sees this reason through ``ctx.cancelled`` and gets a grace period.

        A cancel or a lost lease asks the task to stop cooperatively first. A shutdown does not:
        the job is killed after the drain's grace period and handed back to run again elsewhere,
        so the task is never told it was "canceled".
        """
        return self is not StopReason.SHUTDOWN

    def grace(self, stop_grace: float) -> float:
        """Seconds the task gets to return once told, before its executor is killed.

        An overrun is not urgent like a cancel: the task is asked to checkpoint and return, and
        may be in the middle of an engine call (a fresh executor's first one opens its
        connection). Killing it there would lose the checkpoint and cost an executor respawn,
        so it gets at least ``OVERRUN_GRACE``.
        """
        return max(stop_grace, OVERRUN_GRACE) if self is StopReason.OVERRUN else stop_grace

    @property
    def flag(self) -> int:
        """The value written to an executor's shared stop flag (``NO_STOP_FLAG`` means run on)."""
        return _FLAGS[self]

    @classmethod
    def from_flag(cls, value: int) -> StopReason | None:
        """The reason a stop flag holds, None while the job may run on."""
        return _BY_FLAG.get(value)

    @classmethod
    def from_heartbeat(cls, status: str) -> StopReason | None:
        """What a heartbeat answer (``ok``, ``canceled``, ``lost``) means for the job."""
        if status == "ok":
            return None
        return cls.CANCELED if status == "canceled" else cls.LEASE_LOST


_FLAGS = {StopReason.CANCELED: 1, StopReason.LEASE_LOST: 2, StopReason.SHUTDOWN: 3, StopReason.OVERRUN: 4}
_BY_FLAG = {flag: reason for reason, flag in _FLAGS.items()}
