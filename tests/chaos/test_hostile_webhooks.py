"""Hostile webhook receivers: deliveries retry with backoff for the configured attempts, honour
Retry-After, stop on 410 Gone, never follow a redirect, give up on a receiver that hangs or
streams forever after one deadline per attempt, and never hold up other work.

One real worker node (tests/chaos/hostile_app.py) on every engine, one receiver with one
misbehaving path per endpoint (tests/chaos/hostile_receiver.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.types import Job, JobState
from conveyor.webhooks import WEBHOOK_QUEUE
from conveyor.webhooks.deliver import RETRY_AFTER_CAP, retry_after_seconds
from tests.chaos.hostile_app import ATTEMPTS, make_app
from tests.chaos.hostile_receiver import RETRY_AFTER, HostileReceiver
from tests.engines import ENGINES, engine_url
from tests.faults.helpers import WorkerNode, wait_until

pytestmark = pytest.mark.chaos


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Conveyor, HostileReceiver, WorkerNode]]:
    receiver = HostileReceiver().start()
    with engine_url(request.param, tmp_path) as url:
        app = make_app(url, receiver.url)
        node = WorkerNode(
            url,
            tmp_path / "logs",
            app="tests.chaos.hostile_app:app",
            queues=f"default,{WEBHOOK_QUEUE}",
            concurrency=2,
            lease=5.0,
            env={"HOSTILE_RECEIVER": receiver.url, "CONVEYOR_RESULTS": str(tmp_path / "results")},
        ).start()
        try:
            yield app, receiver, node
        finally:
            node.close()
            app.close()
            receiver.stop()


def delivery_of(app: Conveyor, job_id: str) -> Job | None:
    page = app.list_jobs(queue=WEBHOOK_QUEUE, limit=200)
    found = [j for j in page.jobs if j.args.get("job_id") == job_id]
    return found[0] if found else None


def settled(app: Conveyor, job_id: str, node: WorkerNode) -> Job:
    def done() -> Job | None:
        job = delivery_of(app, job_id)
        return job if job is not None and job.terminal else None

    try:
        return wait_until(done, timeout=120, interval=0.1, message=f"the delivery for {job_id} to end")
    except pytest.fail.Exception:
        pytest.fail(f"delivery for {job_id}: {delivery_of(app, job_id)}; log:\n{node.log()[-3000:]}")


def test_hostile_receivers(setup: tuple[Conveyor, HostileReceiver, WorkerNode]) -> None:
    app, receiver, node = setup
    node.wait_for_log(r"executor\.started")
    sources = {name: app.enqueue(f"hostile.{name}", {}).id for name in ("hang", "stream")}
    sources.update({name: app.enqueue(f"hostile.{name}", {}).id for name in ("e500", "e429", "e410", "redirect", "ok")})

    # other work goes on while deliveries hang: ordinary jobs finish before the hanging one ends
    work = [app.enqueue("plain.work", {"seconds": 0.05}).id for _ in range(20)]
    wait_until(lambda: len(receiver.times("/hang")) >= 1, message="the hanging receiver to be called")
    wait_until(
        lambda: all(app.get(j).state is JobState.SUCCEEDED for j in work),  # type: ignore[union-attr]
        timeout=60,
        message="ordinary jobs to finish",
    )
    hang = delivery_of(app, sources["hang"])
    assert hang is not None and not hang.terminal, "the hanging delivery ended before the other work did"

    ends = {name: settled(app, job_id, node) for name, job_id in sources.items()}

    assert ends["ok"].state is JobState.SUCCEEDED
    # 500s: retried with backoff for the configured attempts, then a dead letter
    assert (ends["e500"].state, ends["e500"].attempts) == (JobState.FAILED, ATTEMPTS)
    # (each attempt is one request at most: on a loaded machine one may time out before it lands)
    assert 1 <= len(receiver.times("/e500")) <= ATTEMPTS
    assert ends["e500"].error is not None and "HTTP 500" in ends["e500"].error["message"]
    # 429 + Retry-After: the retry waits at least that long (the backoff alone is 0.2 s)
    # (on a loaded machine a later attempt may also time out: it is retried, the 429 rule holds)
    assert ends["e429"].state is JobState.SUCCEEDED and ends["e429"].attempts >= 2
    first, second = receiver.times("/e429")[:2]
    assert second - first >= RETRY_AFTER - 0.05, f"retried after {second - first:.2f} s, Retry-After {RETRY_AFTER}"
    # 410 Gone: the receiver disabled the endpoint: one request, no retry
    assert (ends["e410"].state, ends["e410"].attempts) == (JobState.FAILED, 1)
    assert len(receiver.times("/e410")) == 1
    assert ends["e410"].error is not None and "410" in ends["e410"].error["message"]
    # redirects are not followed: the target never sees a request
    assert (ends["redirect"].state, ends["redirect"].attempts) == (JobState.FAILED, ATTEMPTS)
    assert receiver.times("/target") == []
    # a receiver that hangs: one deadline per attempt, then a dead letter
    assert (ends["hang"].state, ends["hang"].attempts) == (JobState.FAILED, ATTEMPTS)
    assert 1 <= len(receiver.times("/hang")) <= ATTEMPTS
    # one that answers 200 and streams forever: accepted on its status, the body is never read
    assert ends["stream"].state is JobState.SUCCEEDED
    assert node.running


def test_a_sync_task_raising_retry_after_waits_that_long(
    setup: tuple[Conveyor, HostileReceiver, WorkerNode], tmp_path: Path
) -> None:
    """``RetryAfter`` from a sync task (run in an executor process) sets the retry's delay."""
    app = setup[0]
    log = tmp_path / "later.log"
    job = app.enqueue("plain.later", {"log": str(log)})
    wait_until(lambda: (j := app.get(job.id)) is not None and j.state is JobState.SUCCEEDED, timeout=60)
    first, second = (float(line) for line in log.read_text().split())
    assert second - first >= 2.0 - 0.05, f"retried after {second - first:.2f} s (backoff alone: 0.2 s)"


def test_retry_after_header_forms() -> None:
    """Delta-seconds and HTTP dates are read; a huge value is capped; garbage means "use the backoff"."""
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("7", now) == 7.0
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0  # in the past: at once
    assert retry_after_seconds("999999", now) == RETRY_AFTER_CAP
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None
