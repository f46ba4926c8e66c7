"""Take back the jobs of workers that died or stalled: the lease reaper, River-style.

The engine lists running jobs whose lease expired (a read); the lifecycle decides each one's
fate here (``states.after_expiry``: queued again, or failed once its attempts are used up); the
engine applies each decision only if the job is still running with the same token and its lease
is still expired, so a heartbeat that arrives in between wins and nothing is decided twice.
Every worker node runs this from its maintenance loop; two reapers racing are harmless (the
conditional write lets one of them move each job).
"""

from __future__ import annotations

from conveyor import states
from conveyor.backend.protocol import Backend, ExpiredRequest, ExpireRequest, Expiry

REAP_BATCH = 1000


async def reap_expired(backend: Backend, limit: int = REAP_BATCH) -> list[str]:
    """Requeue or dead-letter every job whose lease expired; returns the ids moved."""
    expired = await backend.expired_leases(ExpiredRequest(limit))
    if not expired:
        return []
    decisions = tuple(
        Expiry(
            lease.job_id,
            lease.token,
            states.after_expiry(lease.attempts, lease.max_attempts),
            states.lease_expired_error(lease.attempts),
        )
        for lease in expired
    )
    return await backend.expire(ExpireRequest(decisions))
