"""Once-only side effects (``record_effect`` / ``get_effect``): recorded once per key and
fenced with the lease token like progress and artifacts, on every engine."""

from __future__ import annotations

import asyncio

from conveyor.backend import Backend
from conveyor.backend.protocol import Capability, CompleteRequest, EffectOutcome, EffectRequest
from conveyor.reaper import reap_expired
from conveyor.types import Job
from tests.conformance.conftest import OpenBackend, claim_one, enqueue, requires

RECORDED, EXISTS, LOST = EffectOutcome.RECORDED, EffectOutcome.EXISTS, EffectOutcome.LOST


async def record(backend: Backend, job: Job, key: str, value: object = None, token: str | None = None) -> EffectOutcome:
    return await backend.record_effect(EffectRequest(job.id, token or job.lease_token or "", key, value))


async def take_over(backend: Backend, stale: Job) -> Job:
    """Let ``stale``'s lease expire, reap it, and claim the job again (a new owner, a new token)."""
    backend.clock_offset += 60
    assert stale.id in await reap_expired(backend)
    owner = await claim_one(backend, worker="w2")
    assert owner.id == stale.id and owner.lease_token != stale.lease_token
    return owner


async def test_the_lease_holder_records_an_effect_once(backend: Backend) -> None:
    requires(backend, Capability.EFFECTS)
    await enqueue(backend)
    job = await claim_one(backend)
    assert await backend.get_effect(job.id, "email") == (False, None)
    assert await record(backend, job, "email", {"message_id": "m-1"}) is RECORDED
    assert await record(backend, job, "email", {"message_id": "m-2"}) is EXISTS
    assert await backend.get_effect(job.id, "email") == (True, {"message_id": "m-1"})
    assert await record(backend, job, "charge") is RECORDED
    assert await backend.get_effect(job.id, "charge") == (True, None)
    other = await enqueue(backend)
    assert await backend.get_effect(other.id, "email") == (False, None)


async def test_a_stale_token_is_refused_and_stores_nothing(backend: Backend) -> None:
    requires(backend, Capability.EFFECTS)
    await enqueue(backend)
    stale = await claim_one(backend, lease=1.0)
    await take_over(backend, stale)
    assert await record(backend, stale, "charge", "stale") is LOST
    assert await backend.get_effect(stale.id, "charge") == (False, None)


async def test_the_new_owner_after_a_reap_records_and_the_stale_one_cannot_overwrite(backend: Backend) -> None:
    requires(backend, Capability.EFFECTS)
    await enqueue(backend)
    stale = await claim_one(backend, lease=1.0)
    owner = await take_over(backend, stale)
    assert await record(backend, owner, "charge", {"by": "owner"}) is RECORDED
    assert await record(backend, stale, "charge", {"by": "stale"}) is LOST
    assert await backend.get_effect(owner.id, "charge") == (True, {"by": "owner"})


async def test_an_effect_recorded_by_an_earlier_attempt_is_kept(backend: Backend) -> None:
    requires(backend, Capability.EFFECTS)
    await enqueue(backend)
    first = await claim_one(backend, lease=1.0)
    assert await record(backend, first, "charge", {"attempt": 1}) is RECORDED
    second = await take_over(backend, first)
    assert await record(backend, second, "charge", {"attempt": 2}) is EXISTS
    assert await backend.get_effect(second.id, "charge") == (True, {"attempt": 1})


async def test_an_unknown_or_not_running_job_is_refused(backend: Backend) -> None:
    requires(backend, Capability.EFFECTS)
    assert await backend.record_effect(EffectRequest("no-such-job", "no-token", "charge", 1)) is LOST
    assert await backend.get_effect("no-such-job", "charge") == (False, None)
    queued = await enqueue(backend)
    assert await backend.record_effect(EffectRequest(queued.id, "guess", "charge", 1)) is LOST
    running = await claim_one(backend)
    assert await backend.complete(CompleteRequest(running.id, running.lease_token or ""))
    assert await record(backend, running, "charge", 1) is LOST  # its own token, but the job is finished
    assert await backend.get_effect(running.id, "charge") == (False, None)


async def test_concurrent_records_of_one_key_have_one_winner(backend: Backend, open_backend: OpenBackend) -> None:
    requires(backend, Capability.EFFECTS)
    await enqueue(backend)
    job = await claim_one(backend)
    instances = [backend, *await asyncio.gather(*(open_backend() for _ in range(5)))]
    outcomes = await asyncio.gather(*(record(b, job, "pay", i) for i, b in enumerate(instances)))
    assert sorted(outcomes) == sorted([RECORDED] + [EXISTS] * 5)
    done, value = await backend.get_effect(job.id, "pay")
    assert done and value == outcomes.index(RECORDED)
