"""Per-submit ``callback_url`` on POST /v1/jobs: validated, stored with the job, signed, delivered."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import WebhookVerificationError

from conveyor.api.server import create_app
from conveyor.app import Conveyor
from conveyor.types import JobState
from conveyor.webhooks import WebhookEndpoint, check_url
from tests.apps.webhooks_app import CALLBACK_SECRET, SECRET, make_app
from tests.webhooks.conftest import Hooks


@pytest.fixture(scope="module")
def api_app(hooks: Hooks) -> Iterator[Conveyor]:
    """A second app instance on the same engine, serving the API in the test process."""
    app = make_app(hooks.app.url, hooks.receiver.url)
    yield app
    app.close()


def post(app: Conveyor, body: dict[str, Any]) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(app, auth=False, dashboard=False))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            response = await client.post("/v1/jobs", json=body)
        await app.aclose()
        return response

    return asyncio.run(go())


def test_callback_url_gets_the_signed_event(hooks: Hooks, api_app: Conveyor) -> None:
    url = f"{hooks.receiver.url}/cb/one?ref=7"
    response = post(api_app, {"task": "hooks.plain", "args": {"value": 5}, "callback_url": url})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    hooks.wait_state(job_id, JobState.SUCCEEDED)
    [delivery] = hooks.settled(job_id, 1)
    assert delivery.args["endpoint"] == "callback"

    [request] = hooks.received("/cb/one?ref=7", job_id)
    payload = request.verify(CALLBACK_SECRET)
    assert payload["type"] == "job.succeeded"
    assert payload["data"]["result"] == 5
    with pytest.raises(WebhookVerificationError):
        request.verify(SECRET)  # callbacks are signed with the callback secret, not an endpoint's


def test_callback_of_a_job_that_fails_and_a_configured_endpoint_both_get_it(hooks: Hooks, api_app: Conveyor) -> None:
    url = f"{hooks.receiver.url}/cb/two"
    response = post(api_app, {"task": "hooks.boom", "args": {"message": "x"}, "callback_url": url})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    hooks.wait_state(job_id, JobState.FAILED)
    deliveries = hooks.settled(job_id, 2)
    assert sorted(d.args["endpoint"] for d in deliveries) == ["callback", "main"]
    [to_callback] = hooks.received("/cb/two", job_id)
    [to_main] = hooks.received("/main", job_id)
    assert to_callback.verify(CALLBACK_SECRET)["type"] == to_main.verify(SECRET)["type"] == "job.failed"
    assert to_callback.headers["webhook-id"] != to_main.headers["webhook-id"]


def test_the_callback_url_is_stored_on_the_job_and_not_shown_to_the_tenant(hooks: Hooks, api_app: Conveyor) -> None:
    url = f"{hooks.receiver.url}/cb/hidden"
    response = post(
        api_app, {"task": "hooks.plain", "args": {"value": 1}, "queue": "tiny", "delay": 3600, "callback_url": url}
    )
    assert response.status_code == 202, response.text
    assert "callback_url" not in response.text and url not in response.text
    job = hooks.app.get(response.json()["id"])
    assert job is not None and job.callback_url == url
    hooks.app.cancel(job.id)
    hooks.settled(job.id, 1)
    [request] = hooks.received("/cb/hidden", job.id)
    assert request.verify(CALLBACK_SECRET)["type"] == "job.canceled"
    assert "callback_url" not in request.body.decode()


def test_a_refused_submit_with_a_callback_leaves_nothing_behind(hooks: Hooks, api_app: Conveyor) -> None:
    url = f"{hooks.receiver.url}/cb/refused"
    first = post(api_app, {"task": "hooks.plain", "args": {"value": 1}, "queue": "tiny", "delay": 3600})
    assert first.status_code == 202, first.text
    before = {j.id for j in hooks.app.list_jobs(limit=200).jobs}
    body = {"task": "hooks.plain", "args": {"value": 2}, "queue": "tiny", "delay": 3600, "callback_url": url}
    refused = post(api_app, body)
    assert refused.status_code == 429, refused.text  # "tiny" holds one pending job
    assert {j.id for j in hooks.app.list_jobs(limit=200).jobs} == before
    hooks.app.cancel(first.json()["id"])  # frees the queue for the next test


@pytest.mark.parametrize(
    "url, message",
    [
        ("ftp://example.com/hook", "http:// or https://"),
        ("https:///no-host", "must name a host"),
        ("https://user:pw@example.com/", "credentials"),
        ("https://example.com/" + "a" * 2100, "2048"),
        ("not a url", "spaces"),
    ],
)
def test_bad_callback_url_is_one_clear_422(api_app: Conveyor, url: str, message: str) -> None:
    response = post(api_app, {"task": "hooks.plain", "args": {"value": 1}, "callback_url": url})
    assert response.status_code == 422
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert any("callback_url" in e["field"] and message in e["message"] for e in problem["errors"]), problem


def test_callbacks_are_refused_without_a_callback_secret(tmp_path: Any) -> None:
    app = Conveyor(f"sqlite:///{tmp_path / 'c.db'}", webhooks=[WebhookEndpoint("https://example.com/h", SECRET)])
    app.task(name="t")(lambda: None)
    try:
        response = post(app, {"task": "t", "callback_url": "https://example.com/cb"})
        assert response.status_code == 422
        assert "callback secret" in response.json()["detail"]
        assert app.list_jobs().jobs == []  # nothing was stored
    finally:
        app.close()


def test_the_delivery_task_cannot_be_submitted_over_the_api(api_app: Conveyor) -> None:
    forged = {"job_id": "x", "event": "job.succeeded", "endpoint": "callback", "url": "http://evil", "payload": {}}
    response = post(api_app, {"task": "conveyor.webhooks.deliver", "args": forged})
    assert response.status_code == 404


def test_private_addresses_are_refused_unless_allowed() -> None:
    for url in ("http://127.0.0.1:8080/x", "http://169.254.169.254/latest", "http://10.1.2.3/", "http://localhost/"):
        with pytest.raises(ValueError, match="private"):
            check_url(url, allow_private=False)
        assert check_url(url, allow_private=True) == url
    assert check_url("https://hooks.example.com/x", allow_private=False)
