"""An idempotent replay answers exactly what the first submit answered, however far the job has
moved on since (IETF httpapi Idempotency-Key draft): same status, same body, byte for byte."""

from __future__ import annotations

import asyncio

import httpx

from conveyor.backend import create_backend
from conveyor.backend.protocol import EnqueueRequest
from tests.api.procs import Env, wait_until

REPLAY_APP = "tests.api.replay_app:app"


async def _enqueue_dependent(url: str, parent: str, key: str) -> str:
    backend = create_backend(url)
    await backend.open()
    try:
        req = EnqueueRequest(task="echo", args={"text": "x"}, idempotency_key=key, depends_on=(parent,))
        result = await backend.enqueue(req)
        assert result.job.state.value == "waiting"
        return result.job.id
    finally:
        await backend.close()


def _state(http: httpx.Client, job_id: str) -> str:
    return str(http.get(f"/v1/jobs/{job_id}").json()["state"])


def test_replays_of_scheduled_and_waiting_jobs_answer_the_first_body(env: Env) -> None:
    server = env.serve("--no-auth", "--workers", "1", "--concurrency", "1", app=REPLAY_APP)
    parent_body = {"task": "flaky", "args": {"n": 7}, "delay": 0.5}
    child_body = {"task": "echo", "args": {"text": "x"}}
    with server.http() as http:
        first = http.post("/v1/jobs", json=parent_body, headers={"Idempotency-Key": "parent"})
        assert first.status_code == 202 and first.json()["state"] == "scheduled", first.text
        parent = first.json()["id"]
        # a dependent enqueued by the application; its first HTTP answer is a replay: waiting
        child = asyncio.run(_enqueue_dependent(env.url, parent, "child"))
        waiting = http.post("/v1/jobs", json=child_body, headers={"Idempotency-Key": "child"})
        assert waiting.status_code == 202 and waiting.json()["id"] == child
        assert waiting.json()["state"] == "waiting", waiting.text

        # the parent runs, fails once, is retried later (a new run_at) and succeeds; the child runs
        wait_until(lambda: _state(http, child) == "succeeded", timeout=60, what="the dependent to succeed")
        assert http.get(f"/v1/jobs/{parent}").json()["attempts"] == 2

        again = http.post("/v1/jobs", json=parent_body, headers={"Idempotency-Key": "parent"})
        assert (again.status_code, again.content) == (first.status_code, first.content)
        waiting_again = http.post("/v1/jobs", json=child_body, headers={"Idempotency-Key": "child"})
        assert (waiting_again.status_code, waiting_again.content) == (waiting.status_code, waiting.content)
