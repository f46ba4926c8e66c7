"""The job service end to end: a real server process and a real worker process on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest

from conveyor.client import AsyncConveyorClient, ClientError, ConveyorClient, JobStatus
from tests.api.conftest import Stack
from tests.api.procs import wait_until

# one worker runs the module: its job service (module-scoped ``stack``) starts once per engine
pytestmark = pytest.mark.xdist_group("api-jobs")


def sse_events(http: httpx.Client, job_id: str, last_event_id: str | None = None) -> list[tuple[int, str, dict]]:
    """Read a job's event stream until the server ends it; (id, event, data) per event."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    out: list[tuple[int, str, dict]] = []
    block: dict[str, str] = {}
    with http.stream("GET", f"/v1/jobs/{job_id}/events", headers=headers, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "":
                if "data" in block:
                    out.append((int(block["id"]), block["event"], orjson.loads(block["data"])))
                block = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                block[name] = value
    return out


def test_submit_runs_to_completion_and_serves_the_artifact(stack: Stack) -> None:
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        submitted = client.submit("report", {"title": "Q3", "rows": 5})
        assert submitted.status == "notStarted"
        seen: list[JobStatus] = []
        final = client.wait(submitted.id, timeout=60, on_update=seen.append)
    assert final.status == "succeeded" and final.state == "succeeded"
    assert final.result == {"rows": 5}
    assert final.attempts == 1 and final.finished_at is not None
    assert seen[-1].status == "succeeded"
    [artifact] = final.artifacts
    with stack.server.http(stack.keys.tenant_a) as http:
        response = http.get(artifact.url)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text.splitlines()[0] == "row,Q3" and len(response.text.splitlines()) == 6
        assert http.get(f"/v1/jobs/{final.id}/artifacts/nope.csv").status_code == 404


def test_202_has_lro_headers_and_status_has_retry_after_until_terminal(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as http:
        response = http.post("/v1/jobs", json={"task": "add", "args": {"a": 2, "b": 3}})
        assert response.status_code == 202
        body = response.json()
        assert response.headers["Location"] == f"{stack.server.url}/v1/jobs/{body['id']}"
        assert response.headers["Operation-Location"] == response.headers["Location"]
        assert int(response.headers["Retry-After"]) >= 1
        final = wait_until(
            lambda: (r := http.get(response.headers["Location"])).json()["status"] == "succeeded" and r,
            what="job to succeed",
        )
        assert final.json()["result"] == 5
        assert "Retry-After" not in final.headers


def test_invalid_arguments_are_422_naming_each_field(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as http:
        response = http.post("/v1/jobs", json={"task": "add", "args": {"a": "x", "c": 1}})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        fields = {e["field"] for e in response.json()["errors"]}
        assert fields == {"args.a", "args.b", "args.c"}
        model = http.post("/v1/jobs", json={"task": "report", "args": {"title": "", "rows": 0}})
        assert {e["field"] for e in model.json()["errors"]} == {"args.title", "args.rows"}
        assert http.post("/v1/jobs", json={"task": "no.such.task", "args": {}}).status_code == 404
        assert http.post("/v1/jobs", json={"args": {}}).json()["errors"][0]["field"] == "task"
        big = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 2, "pad": "x" * 2_000_000}})
        assert big.status_code == 413


def test_progress_is_streamed_and_a_reconnect_resumes_without_gaps(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as http:
        job_id = http.post("/v1/jobs", json={"task": "steps", "args": {"count": 4, "pause": 0.2}}).json()["id"]
        events = sse_events(http, job_id)
        ids = [e[0] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        fractions = [data["data"]["fraction"] for _, kind, data in events if kind == "progress"]
        assert fractions == [0.25, 0.5, 0.75, 1.0]
        assert events[-1][1] == "state" and events[-1][2]["status"] == "succeeded"
        # a client that saw only the first two events reconnects and gets exactly the rest
        resumed = sse_events(http, job_id, last_event_id=str(ids[1]))
        assert [e[0] for e in resumed] == ids[2:]


def test_cancel_a_running_job(stack: Stack) -> None:
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        job = client.submit("wait_for_cancel", {"seconds": 60})
        wait_until(lambda: client.get(job.id).status == "running", what="job to start")
        canceled = client.cancel(job.id)
        assert canceled.status == "canceled"
        final = client.wait(job.id, timeout=30)
        assert final.status == "canceled" and final.error is not None
        with pytest.raises(ClientError) as again:
            client.cancel(job.id)
        assert again.value.status_code == 409
    with stack.server.http(stack.keys.tenant_a) as http:
        assert sse_events(http, job.id)[-1][2]["state"] == "canceled"


def test_idempotent_replay_returns_the_original_and_a_mismatch_is_422(stack: Stack) -> None:
    key = f"order-{uuid.uuid4()}"
    with stack.server.http(stack.keys.tenant_a) as http:
        body = {"task": "add", "args": {"a": 1, "b": 1}}
        first = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        wait_until(lambda: http.get(f"/v1/jobs/{first.json()['id']}").json()["status"] == "succeeded", what="job")
        replay = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": f'"{key}"'})
        assert (replay.status_code, replay.content) == (first.status_code, first.content)
        assert replay.headers["Location"] == first.headers["Location"]
        mismatch = http.post("/v1/jobs", json={**body, "args": {"a": 1, "b": 2}}, headers={"Idempotency-Key": key})
        assert mismatch.status_code == 422
        assert mismatch.json()["job_id"] == first.json()["id"]
    # keys are scoped per tenant: tenant b's same key is a different job
    with stack.server.http(stack.keys.tenant_b) as http:
        other = http.post("/v1/jobs", json=body, headers={"Idempotency-Key": key})
        assert other.status_code == 202 and other.json()["id"] != first.json()["id"]


def test_fifty_concurrent_identical_submits_create_one_job(stack: Stack) -> None:
    key = f"burst-{uuid.uuid4()}"

    async def burst() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {stack.keys.tenant_a}", "Idempotency-Key": key}
        limits = httpx.Limits(max_connections=50)
        async with httpx.AsyncClient(base_url=stack.server.url, headers=headers, timeout=60, limits=limits) as http:
            body = {"task": "add", "args": {"a": 50, "b": 50}}
            return await asyncio.gather(*(http.post("/v1/jobs", json=body) for _ in range(50)))

    responses = asyncio.run(burst())
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert len({r.content for r in responses}) == 1
    with stack.server.http(stack.keys.tenant_a) as http:
        jobs = http.get("/v1/jobs", params={"task": "add", "limit": 200}).json()["jobs"]
        assert sum(1 for j in jobs if j["args"] == {"a": 50, "b": 50}) == 1


def test_tenants_never_see_each_others_jobs(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as a, stack.server.http(stack.keys.tenant_b) as b:
        job_id = a.post("/v1/jobs", json={"task": "add", "args": {"a": 7, "b": 7}}).json()["id"]
        assert a.get(f"/v1/jobs/{job_id}").status_code == 200
        for response in (
            b.get(f"/v1/jobs/{job_id}"),
            b.post(f"/v1/jobs/{job_id}:cancel"),
            b.get(f"/v1/jobs/{job_id}/events"),
            b.get(f"/v1/jobs/{job_id}/artifacts/x"),
        ):
            assert response.status_code == 404, response.text
        assert job_id not in {j["id"] for j in b.get("/v1/jobs", params={"limit": 200}).json()["jobs"]}
        assert job_id in {j["id"] for j in a.get("/v1/jobs", params={"limit": 200}).json()["jobs"]}
    with stack.server.http(stack.keys.admin) as admin:
        assert admin.get(f"/v1/jobs/{job_id}").status_code == 200


def test_list_filters_and_cursor_pagination(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_b) as http:
        ids = {http.post("/v1/jobs", json={"task": "add", "args": {"a": i, "b": 0}}).json()["id"] for i in range(5)}
        wait_until(
            lambda: all(http.get(f"/v1/jobs/{i}").json()["status"] == "succeeded" for i in ids), what="jobs to finish"
        )
        seen: list[str] = []
        cursor = None
        while True:
            params = {"task": "add", "state": "succeeded", "limit": 2, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/jobs", params=params).json()
            assert len(page["jobs"]) <= 2
            seen += [j["id"] for j in page["jobs"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert ids <= set(seen) and len(seen) == len(set(seen))
        assert http.get("/v1/jobs", params={"state": "bogus"}).status_code == 422


def test_dead_letters_and_redrive(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as http, stack.server.http(stack.keys.admin) as admin:
        job_id = http.post("/v1/jobs", json={"task": "boom", "args": {"message": "poison"}}).json()["id"]
        wait_until(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "failed", what="job to fail")
        failed = http.get(f"/v1/jobs/{job_id}").json()
        assert failed["error"]["type"] == "RuntimeError" and "poison" in failed["error"]["message"]
        letters = admin.get("/v1/dead-letters", params={"task": "boom"}).json()["jobs"]
        assert job_id in {j["id"] for j in letters}
        redriven = admin.post(f"/v1/dead-letters/{job_id}:redrive")
        # The answer is the job as read just after the redrive: a worker may already have taken
        # it (attempts 1) or even failed it again, so only its identity is certain here.
        assert redriven.status_code == 200 and redriven.json()["id"] == job_id
        wait_until(lambda: http.get(f"/v1/jobs/{job_id}").json()["attempts"] == 1, what="job to rerun")
        wait_until(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "failed", what="job to fail again")
        bulk = admin.post("/v1/dead-letters:redrive", json={"task": "boom"})
        assert bulk.status_code == 200 and bulk.json()["redriven"] >= 1
        ok = http.post("/v1/jobs", json={"task": "add", "args": {"a": 0, "b": 0}}).json()["id"]
        wait_until(lambda: http.get(f"/v1/jobs/{ok}").json()["status"] == "succeeded", what="job")
        assert admin.post(f"/v1/dead-letters/{ok}:redrive").status_code == 409


def test_tasks_queues_health_and_metrics(stack: Stack) -> None:
    with stack.server.http(stack.keys.admin) as http:
        tasks = {t["name"]: t for t in http.get("/v1/tasks").json()["tasks"]}
        assert tasks["add"]["args_schema"]["required"] == ["a", "b"]
        assert tasks["hold"]["queue"] == "limited"
        queues = {q["name"]: q for q in http.get("/v1/queues").json()["queues"]}
        assert queues["limited"]["max_depth"] == 3
        assert queues["default"]["counts"]["succeeded"] >= 0
        assert http.get("/healthz").json()["status"] == "ok"
        assert http.get("/readyz").json()["status"] == "ok"
        job = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 2}}).json()["id"]
        wait_until(lambda: http.get(f"/v1/jobs/{job}").json()["status"] == "succeeded", what="job")

        def scraped() -> str | None:
            text = http.get("/metrics").text
            return text if 'conveyor_jobs_finished_total{outcome="succeeded",task="add"}' in text else None

        text = wait_until(scraped, what="worker metrics to reach /metrics")
        for name in (
            "conveyor_queue_jobs{",
            "conveyor_queue_oldest_age_seconds{",
            "conveyor_job_run_seconds_bucket{",
            "conveyor_submit_seconds_bucket{",
            "conveyor_backend_call_seconds_bucket{",
        ):
            assert name in text


def test_async_client(stack: Stack) -> None:
    async def run() -> tuple[JobStatus, list[JobStatus]]:
        updates: list[JobStatus] = []
        async with AsyncConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
            job = await client.submit("steps", {"count": 2, "pause": 0.1}, idempotency_key=str(uuid.uuid4()))
            return await client.wait(job.id, timeout=60, on_update=updates.append), updates

    final, updates = asyncio.run(run())
    assert final.status == "succeeded" and final.result == 2
    assert updates[-1].status == "succeeded"


def test_polling_wait_follows_retry_after(stack: Stack) -> None:
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        job = client.submit("add", {"a": 4, "b": 4}, delay=1.5)
        assert job.state == "scheduled"
        final = client.wait(job.id, timeout=60, stream=False)
        assert final.result == 8


def test_many_submits_from_threads_all_stored(stack: Stack) -> None:
    def submit(i: int) -> str:
        with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_b) as client:
            return client.submit("add", {"a": i, "b": 1000}).id

    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(submit, range(20)))
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_b) as client:
        assert all(client.wait(i, timeout=60).status == "succeeded" for i in ids)


def test_a_unique_key_answers_the_pending_job_instead_of_a_second_one(stack: Stack) -> None:
    key = f"nightly-{uuid.uuid4().hex[:8]}"
    body = {"task": "add", "args": {"a": 1, "b": 2}, "delay": 3600, "unique_key": key}
    with stack.server.http(stack.keys.tenant_a) as http, stack.server.http(stack.keys.tenant_b) as other:
        first = http.post("/v1/jobs", json=body)
        again = http.post("/v1/jobs", json={**body, "args": {"a": 5, "b": 5}})
        theirs = other.post("/v1/jobs", json=body)
        assert first.status_code == again.status_code == theirs.status_code == 202
        assert again.json()["id"] == first.json()["id"] and again.json()["args"] == {"a": 1, "b": 2}
        assert theirs.json()["id"] != first.json()["id"], "unique keys are per tenant"
        bad = http.post("/v1/jobs", json={**body, "unique_key": ""})
        assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
        assert http.post(f"/v1/jobs/{first.json()['id']}:cancel").status_code == 200
        assert other.post(f"/v1/jobs/{theirs.json()['id']}:cancel").status_code == 200
        after = http.post("/v1/jobs", json=body)
        assert after.status_code == 202 and after.json()["id"] != first.json()["id"]
        assert http.post(f"/v1/jobs/{after.json()['id']}:cancel").status_code == 200
