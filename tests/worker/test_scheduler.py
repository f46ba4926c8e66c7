"""The scheduler pass on every engine, driven by the engine clock (``clock_offset``): a running
node enqueues every tick after its cursor, two schedulers racing make one job per tick, a node
that starts after downtime skips old ticks unless ``catch_up``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.backend import Backend
from conveyor.worker.scheduler import Scheduler
from tests.engines import ENGINES, engine_url


def make_app(url: str) -> Conveyor:
    app = Conveyor(url)

    @app.task(name="tick")
    def tick() -> None: ...

    app.schedule(tick, every=10.0, name="ten")
    app.schedule(tick, every=10.0, name="caught", catch_up=True)
    return app


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Conveyor]:
    with engine_url(request.param, tmp_path) as url:
        application = make_app(url)
        try:
            yield application
        finally:
            await application.aclose()


async def keys(app: Conveyor, name: str) -> list[str]:
    page = await app.list_jobs_async(task="tick", limit=1000)
    return sorted(k for j in page.jobs if (k := j.idempotency_key) and k.startswith(f"schedule:{name}:"))


async def test_a_running_node_enqueues_every_tick_once_even_racing_another(app: Conveyor) -> None:
    backend: Backend = await app.backend()
    app.schedules.pop("caught")
    one, two = Scheduler(app, backend), Scheduler(app, backend)
    await one.run_once()
    await two.run_once()
    first = await keys(app, "ten")
    assert len(first) <= 1  # at most the tick of the last 10 s (the start-up lookback)
    backend.clock_offset += 45  # a late pass: 4 or 5 ticks fell since
    await one.run_once()
    await two.run_once()
    await one.run_once()
    after = await keys(app, "ten")
    assert len(after) == len(set(after)), "one job per tick"
    assert len(after) - len(first) in (4, 5), after


async def test_a_node_starting_after_downtime_skips_old_ticks_unless_catch_up(app: Conveyor) -> None:
    backend: Backend = await app.backend()
    await Scheduler(app, backend).run_once()
    # a new schedule has nothing to catch up: at most the tick of its start-up lookback
    assert len(await keys(app, "caught")) <= 1
    backend.clock_offset += 10  # make sure both schedules have a tick on record
    node = Scheduler(app, backend)
    await node.run_once()
    await node.run_once()
    before_ten, before_caught = await keys(app, "ten"), await keys(app, "caught")
    assert before_ten and before_caught
    backend.clock_offset += 600  # the whole fleet was down for 10 minutes (60 ticks)
    await Scheduler(app, backend).run_once()  # a fresh node: no cursor
    missed_ten = len(await keys(app, "ten")) - len(before_ten)
    missed_caught = len(await keys(app, "caught")) - len(before_caught)
    assert missed_ten <= 1, "only the tick within one period runs; no burst"
    assert missed_caught == 60, "catch_up enqueues every tick missed since the last one, once each"
    caught_up = set(await keys(app, "caught"))
    await Scheduler(app, backend).run_once()  # another node starting: no tick enqueued twice
    again = await keys(app, "caught")
    assert len(again) == len(set(again)), "every tick's job exists once"
    # the only new job may be a tick that came due on the engine clock meanwhile (a loaded machine)
    assert len(set(again) - caught_up) <= 1
