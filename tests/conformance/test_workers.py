"""The live-node registry every engine keeps: beat, list with silence on the engine clock, forget."""

from __future__ import annotations

from conveyor.backend import Backend
from conveyor.backend.protocol import ForgetWorkersRequest, WorkerBeat
from tests.conformance.conftest import OpenBackend


async def test_a_beat_registers_the_node_and_a_later_beat_replaces_its_info(backend: Backend) -> None:
    before = await backend.now()
    info = {"pid": 10, "queues": ["default"], "in_flight": 0, "jobs": [], "extra": {}}
    await backend.beat_worker(WorkerBeat("host-1", info))
    [first] = await backend.list_workers()
    after = await backend.now()
    assert first.worker_id == "host-1" and first.info == info, "info comes back as sent (empty lists stay lists)"
    assert before <= first.started_at <= after and first.last_seen == first.started_at
    assert first.silent_for >= 0

    backend.clock_offset = 5.0
    await backend.beat_worker(WorkerBeat("host-1", {"pid": 10, "queues": ["default"], "in_flight": 3}))
    [second] = await backend.list_workers()
    assert second.info["in_flight"] == 3, "the latest beat's info is shown"
    assert second.started_at == first.started_at, "a beat keeps the node's first registration time"
    assert second.last_seen >= first.last_seen + 5.0


async def test_silence_is_measured_on_the_engine_clock(backend: Backend) -> None:
    await backend.beat_worker(WorkerBeat("quiet", {}))
    backend.clock_offset = 40.0
    await backend.beat_worker(WorkerBeat("chatty", {}))
    workers = {w.worker_id: w for w in await backend.list_workers()}
    assert workers["quiet"].silent_for >= 40.0
    assert workers["chatty"].silent_for < 40.0


async def test_forget_one_node_or_every_node_silent_long_enough(open_backend: OpenBackend) -> None:
    node_a, node_b = await open_backend(), await open_backend()
    await node_a.beat_worker(WorkerBeat("a", {}))
    await node_b.beat_worker(WorkerBeat("b", {}))
    await node_b.beat_worker(WorkerBeat("c", {}))
    assert [w.worker_id for w in await node_a.list_workers()] == ["a", "b", "c"], "one registry for all nodes"

    assert await node_a.forget_workers(ForgetWorkersRequest(worker_id="a")) == 1
    assert await node_a.forget_workers(ForgetWorkersRequest(worker_id="a")) == 0, "already forgotten"
    assert await node_a.forget_workers(ForgetWorkersRequest(silent_for=60.0)) == 0, "nobody silent that long"

    node_a.clock_offset = 120.0
    await node_a.beat_worker(WorkerBeat("c", {}))
    assert await node_a.forget_workers(ForgetWorkersRequest(silent_for=60.0)) == 1
    assert [w.worker_id for w in await node_b.list_workers()] == ["c"]
    assert await node_a.forget_workers(ForgetWorkersRequest()) == 0, "no selector forgets nothing"
