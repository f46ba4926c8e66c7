"""Jobs that end on a real worker node produce exactly the signed notifications expected."""

from __future__ import annotations

import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from conveyor.types import INTERNAL_TENANT, JobState
from tests.apps.webhooks_app import CALLBACK_SECRET, DELIVERY_ATTEMPTS, SECRET
from tests.webhooks.conftest import Hooks

OTHER_SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3"


def test_success_is_announced_once_with_a_valid_signature(hooks: Hooks) -> None:
    job = hooks.app.enqueue("hooks.ok", {"value": 21})
    hooks.wait_state(job.id, JobState.SUCCEEDED)
    [delivery] = hooks.settled(job.id, 1)

    [request] = hooks.received("/main", job.id)
    payload = request.verify(SECRET)
    assert payload["type"] == "job.succeeded"
    assert payload["timestamp"].endswith("Z")
    data = payload["data"]
    assert (data["id"], data["status"], data["state"]) == (job.id, "succeeded", "succeeded")
    assert data["result"] == {"double": 42}
    assert data["task"] == "hooks.ok" and data["attempts"] == 1
    # webhook-id is the delivery job: stable across its retries, unique per event and endpoint
    assert request.headers["webhook-id"] == delivery.id
    assert delivery.args["endpoint"] == "main" and delivery.tenant == INTERNAL_TENANT


def test_a_wrong_secret_or_a_tampered_body_fails_verification(hooks: Hooks) -> None:
    job = hooks.app.enqueue("hooks.ok", {"value": 1})
    hooks.settled(job.id, 1)
    [request] = hooks.received("/main", job.id)
    with pytest.raises(WebhookVerificationError):
        request.verify(OTHER_SECRET)
    with pytest.raises(WebhookVerificationError):
        request.verify(CALLBACK_SECRET)
    tampered = type(request)(request.path, request.headers, request.body.replace(b'"double":2', b'"double":3'), 200)
    assert tampered.body != request.body
    with pytest.raises(WebhookVerificationError):
        tampered.verify(SECRET)
    assert request.verify(SECRET)["data"]["result"] == {"double": 2}


def test_failure_is_announced_once_after_the_last_attempt(hooks: Hooks) -> None:
    job = hooks.app.enqueue("hooks.boom", {"message": "no luck"})
    failed = hooks.wait_state(job.id, JobState.FAILED)
    assert failed.attempts == 2
    hooks.settled(job.id, 1)

    [request] = hooks.received("/main", job.id)  # the retry in between is not an event
    payload = request.verify(SECRET)
    assert payload["type"] == "job.failed"
    assert payload["data"]["status"] == "failed"
    assert payload["data"]["error"]["type"] == "ValueError"
    assert "no luck" in payload["data"]["error"]["message"]


def test_cancel_of_a_scheduled_and_of_a_running_job_is_announced(hooks: Hooks) -> None:
    later = hooks.app.tasks["hooks.ok"].with_options(delay=3600).enqueue(value=3)
    running = hooks.app.enqueue("hooks.wait", {"seconds": 60})
    hooks.wait_state(running.id, JobState.RUNNING)
    hooks.app.cancel(later.id)
    hooks.app.cancel(running.id)

    for job_id in (later.id, running.id):
        hooks.settled(job_id, 1)
        [request] = hooks.received("/main", job_id)
        payload = request.verify(SECRET)
        assert payload["type"] == "job.canceled"
        assert payload["data"]["status"] == "canceled"
    # the worker stopping the canceled task announces nothing more
    hooks.node.wait_for_log(rf"job\.stopped .*id={running.id}")
    assert len(hooks.deliveries(running.id)) == 1


def test_receiver_failing_twice_gets_the_event_on_the_third_attempt(hooks: Hooks) -> None:
    hooks.receiver.answer("/flaky", 500, 500)
    job = hooks.app.enqueue("hooks.flaky", {})
    [delivery] = hooks.settled(job.id, 1)

    requests = hooks.received("/flaky", job.id)
    assert [r.status for r in requests] == [500, 500, 200]
    assert delivery.attempts == 3
    assert {r.headers["webhook-id"] for r in requests} == {delivery.id}
    for request in requests:
        assert request.verify(SECRET)["type"] == "job.succeeded"
    assert hooks.received("/main", job.id) == []  # endpoint "main" does not want hooks.flaky


def test_an_endpoint_that_stays_down_dead_letters_the_delivery_and_redrive_sends_it(hooks: Hooks) -> None:
    hooks.receiver.answer("/down", *[503] * DELIVERY_ATTEMPTS)
    job = hooks.app.enqueue("hooks.unlucky", {})
    [dead] = hooks.settled(job.id, 1, JobState.FAILED)
    assert dead.attempts == DELIVERY_ATTEMPTS
    assert dead.error is not None and "HTTP 503" in dead.error["message"]
    assert dead.id in {j.id for j in hooks.app.list_jobs(states=["failed"], queue="conveyor.webhooks").jobs}
    assert hooks.deliveries(dead.id) == []  # a delivery's own end is never announced

    assert hooks.app.redrive([dead.id]) == 1
    [delivered] = hooks.settled(job.id, 1)
    requests = hooks.received("/down", job.id)
    assert [r.status for r in requests] == [503] * DELIVERY_ATTEMPTS + [200]
    assert {r.headers["webhook-id"] for r in requests} == {delivered.id}
    assert requests[-1].verify(SECRET)["data"]["id"] == job.id
