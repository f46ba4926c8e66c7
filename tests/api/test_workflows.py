"""Workflows over HTTP on a real server and worker: the batch endpoint, the workflow resource,
its event stream and cancel, on every engine."""

from __future__ import annotations

import uuid

import httpx
import orjson
import pytest

from conveyor.client import ClientError, ConveyorClient, WorkflowView
from tests.api.conftest import Stack
from tests.api.procs import wait_until

# one worker runs the module: its job service (module-scoped ``stack``) starts once per engine
pytestmark = pytest.mark.xdist_group("api-workflows")


def _count_jobs(http: httpx.Client) -> int:
    """Every job this key's tenant can see (paged to the end)."""
    total, cursor = 0, None
    while True:
        params = {"limit": "200", **({"cursor": cursor} if cursor else {})}
        page = http.get("/v1/jobs", params=params).json()
        total += len(page["jobs"])
        cursor = page["next_cursor"]
        if cursor is None:
            return total


def workflow_events(http: httpx.Client, workflow_id: str) -> list[tuple[str, dict]]:
    """Read a workflow's event stream until the server ends it; (event, data) per event."""
    out: list[tuple[str, dict]] = []
    block: dict[str, str] = {}
    with http.stream("GET", f"/v1/workflows/{workflow_id}/events", timeout=90) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line == "":
                if "data" in block:
                    out.append((block["event"], orjson.loads(block["data"])))
                block = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                block[name] = value
    return out


def test_a_batch_is_one_workflow_whose_items_depend_on_earlier_ones_by_step_name(stack: Stack) -> None:
    items = [
        {"task": "add", "args": {"a": 1, "b": 2}, "step": "first"},
        {"task": "steps", "args": {"count": 3, "pause": 0.05}, "step": "middle", "depends_on": ["first"]},
        {"task": "add", "args": {"a": 3, "b": 4}, "step": "last", "depends_on": ["middle", "first"]},
    ]
    with stack.server.http(stack.keys.tenant_a) as http:
        response = http.post("/v1/jobs:batch", json={"items": items})
        assert response.status_code == 202, response.text
        body = response.json()
        workflow_id = body["workflow_id"]
        assert response.headers["Location"] == f"{stack.server.url}/v1/workflows/{workflow_id}"
        first, middle, last = body["jobs"]
        assert body["created"] == [True, True, True]
        assert [j["step"] for j in body["jobs"]] == ["first", "middle", "last"]
        assert {j["workflow_id"] for j in body["jobs"]} == {workflow_id}
        assert middle["depends_on"] == [first["id"]] and middle["state"] == "waiting"
        assert last["depends_on"] == [middle["id"], first["id"]]
        assert http.get(f"/v1/jobs/{last['id']}").json()["workflow_id"] == workflow_id
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        seen: list[WorkflowView] = []
        final = client.wait_workflow(workflow_id, timeout=90, on_update=seen.append)
    assert final.state == "succeeded" and final.status == "succeeded"
    assert final.progress == 1.0 and final.failed_steps == [] and final.finished_at is not None
    assert [(s.step, s.layer, s.state.value) for s in final.steps] == [
        ("first", 0, "succeeded"),
        ("middle", 1, "succeeded"),
        ("last", 2, "succeeded"),
    ]
    assert final.counts["succeeded"] == 3 and sum(final.counts.values()) == 3
    assert seen[-1].state == "succeeded"
    assert all(0.0 <= v.progress <= 1.0 for v in seen)


def test_one_bad_item_stores_nothing_and_every_bad_field_is_named(stack: Stack) -> None:
    items = [
        {"task": "add", "args": {"a": 1, "b": 2}, "step": "ok"},
        {"task": "add", "args": {"a": 1, "b": 2}, "depends_on": ["ok"], "quorum": 2},
        {"task": "nope", "args": {}},
        {"task": "add", "args": {"a": "x", "b": 2}, "depends_on": ["later"]},
        {"task": "add", "args": {"a": 1, "b": 2}, "step": "later"},
    ]
    with stack.server.http(stack.keys.tenant_b) as http:
        before = _count_jobs(http)
        response = http.post("/v1/jobs:batch", json={"items": items})
        assert response.status_code == 422
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["code"] == "InvalidBatch"
        fields = {e["field"] for e in problem["errors"]}
        assert fields == {"items[1].quorum", "items[2].task", "items[3].args.a", "items[3].depends_on[0]"}
        # a body-level error names the item the same way
        response = http.post("/v1/jobs:batch", json={"items": [items[0], {"task": "add", "args": {}, "bogus": 1}]})
        assert response.status_code == 422
        assert {e["field"] for e in response.json()["errors"]} == {"items[1].bogus"}
        # an item cannot leave the batch's workflow (silently ignoring it would lie)
        elsewhere = {"task": "add", "args": {"a": 1, "b": 2}, "workflow_id": "somewhere-else"}
        response = http.post("/v1/jobs:batch", json={"items": [items[0], elsewhere]})
        assert response.status_code == 422
        assert {e["field"] for e in response.json()["errors"]} == {"items[1].workflow_id"}
        # refused by the engine inside the transaction (a dependency that does not exist):
        # the items before it are not stored either
        unknown = {"task": "add", "args": {"a": 1, "b": 2}, "depends_on": [str(uuid.uuid4())]}
        response = http.post("/v1/jobs:batch", json={"items": [items[0], unknown]})
        assert response.status_code == 422 and response.json()["code"] == "UnknownDependency"
        assert _count_jobs(http) == before


def test_a_batch_sent_again_with_its_keys_answers_the_original_jobs(stack: Stack) -> None:
    key = f"batch-{uuid.uuid4()}"
    items = [
        {"task": "add", "args": {"a": 1, "b": 1}, "step": "one"},
        {"task": "add", "args": {"a": 2, "b": 2}, "step": "two", "depends_on": ["one"]},
    ]
    with stack.server.http(stack.keys.tenant_a) as http:
        before = _count_jobs(http)
        first = http.post("/v1/jobs:batch", json={"items": items}, headers={"Idempotency-Key": key})
        again = http.post("/v1/jobs:batch", json={"items": items}, headers={"Idempotency-Key": key})
        assert first.status_code == again.status_code == 202
        assert [j["id"] for j in again.json()["jobs"]] == [j["id"] for j in first.json()["jobs"]]
        assert again.json()["created"] == [False, False]
        assert again.json()["workflow_id"] == first.json()["workflow_id"]
        assert _count_jobs(http) == before + 2
        # per-item keys: same key, other payload is refused, nothing new stored
        changed = [items[0], {**items[1], "args": {"a": 9, "b": 9}}]
        response = http.post("/v1/jobs:batch", json={"items": changed}, headers={"Idempotency-Key": key})
        assert response.status_code == 422 and response.json()["code"] == "IdempotencyKeyReused"
        # keys on some items only cannot be replayed safely: refused
        partial = [{**items[0], "idempotency_key": "k1"}, items[1]]
        response = http.post("/v1/jobs:batch", json={"items": partial})
        assert response.status_code == 422
        assert {e["field"] for e in response.json()["errors"]} == {"items[1].idempotency_key"}
        assert _count_jobs(http) == before + 2


def test_a_batch_over_the_size_limit_is_refused(stack: Stack) -> None:
    items = [{"task": "add", "args": {"a": i, "b": 0}} for i in range(1001)]
    with stack.server.http(stack.keys.tenant_a) as http:
        response = http.post("/v1/jobs:batch", json={"items": items})
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["items"]


def test_another_tenants_workflow_is_not_found(stack: Stack) -> None:
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        batch = client.submit_batch([{"task": "add", "args": {"a": 1, "b": 1}, "step": "only"}])
        assert client.workflow(batch.workflow_id).id == batch.workflow_id
    with stack.server.http(stack.keys.tenant_b) as http:
        for method, path in (
            ("GET", f"/v1/workflows/{batch.workflow_id}"),
            ("GET", f"/v1/workflows/{batch.workflow_id}/events"),
            ("POST", f"/v1/workflows/{batch.workflow_id}:cancel"),
        ):
            response = http.request(method, path)
            assert response.status_code == 404, (method, path)
            assert response.json()["code"] == "WorkflowNotFound"
    with stack.server.http(stack.keys.admin) as http:
        assert http.get(f"/v1/workflows/{batch.workflow_id}").status_code == 200
        assert http.get("/v1/workflows/no-such-workflow").status_code == 404


def test_a_failed_step_is_named_and_fails_the_workflow(stack: Stack) -> None:
    items = [
        {"task": "boom", "args": {"message": "disk on fire"}, "step": "broken"},
        {"task": "add", "args": {"a": 1, "b": 1}, "step": "fine"},
    ]
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        batch = client.submit_batch(items)
        final = client.wait_workflow(batch.workflow_id, timeout=90)
    broken = final.steps[0]
    assert final.state == "failed" and final.status == "failed"
    assert final.failed_steps == [batch.jobs[0].id]
    assert broken.state.value == "failed" and broken.error is not None
    assert "disk on fire" in broken.error.message
    assert final.progress == 1.0  # a failed step has ended: it counts as done


def test_a_failed_step_cancels_its_dependents_by_default(stack: Stack) -> None:
    items = [
        {"task": "boom", "args": {"message": "no data"}, "step": "data"},
        {"task": "add", "args": {"a": 1, "b": 1}, "step": "pdf", "depends_on": ["data"]},
        {"task": "add", "args": {"a": 1, "b": 1}, "step": "notify", "depends_on": ["pdf"]},
    ]
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        batch = client.submit_batch(items)
        final = client.wait_workflow(batch.workflow_id, timeout=90)
    assert final.state == "failed"
    assert [s.state.value for s in final.steps] == ["failed", "canceled", "canceled"]
    assert final.failed_steps == [batch.jobs[0].id]
    pdf = final.steps[1]
    assert pdf.error is not None and batch.jobs[0].id in pdf.error.message


def test_cancel_a_workflow_cancels_every_unfinished_step(stack: Stack) -> None:
    items = [
        {"task": "add", "args": {"a": 1, "b": 1}, "step": "done"},
        {"task": "wait_for_cancel", "args": {"seconds": 120}, "step": "long", "depends_on": ["done"]},
        {"task": "add", "args": {"a": 2, "b": 2}, "step": "after", "depends_on": ["long"]},
    ]
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        batch = client.submit_batch(items)
        wait_until(
            lambda: client.workflow(batch.workflow_id).steps[1].state.value == "running",
            timeout=90,
            what="the long step to run",
        )
        view = client.cancel_workflow(batch.workflow_id)
        assert [s.state.value for s in view.steps] == ["succeeded", "canceled", "canceled"]
        assert view.state == "canceled"
        with pytest.raises(ClientError) as again:
            client.cancel_workflow(batch.workflow_id)
        assert again.value.status_code == 409 and again.value.problem["code"] == "WorkflowFinished"
        # the worker learns of the cancel at its next heartbeat; the step stays canceled
        final = client.wait_workflow(batch.workflow_id, timeout=60)
        assert final.steps[1].state.value == "canceled"


def test_the_workflow_stream_starts_whole_follows_steps_and_ends(stack: Stack) -> None:
    items = [
        {"task": "steps", "args": {"count": 4, "pause": 0.3}, "step": "work"},
        {"task": "add", "args": {"a": 1, "b": 1}, "step": "sum", "depends_on": ["work"]},
    ]
    with stack.server.http(stack.keys.tenant_a) as http:
        batch = http.post("/v1/jobs:batch", json={"items": items}).json()
        events = workflow_events(http, batch["workflow_id"])
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "workflow" and len(events[0][1]["steps"]) == 2
    assert "step" in kinds
    last_kind, last = events[-1]
    assert last_kind == "workflow" and last["state"] == "succeeded" and last["progress"] == 1.0
    step_states = [data["state"] for kind, data in events if kind == "step" and data["step"] == "sum"]
    assert step_states[-1] == "succeeded"
    # a late subscriber gets the whole, finished workflow at once, then the stream ends
    with stack.server.http(stack.keys.tenant_a) as http:
        late = workflow_events(http, batch["workflow_id"])
    assert [kind for kind, _ in late] == ["workflow"] and late[0][1]["state"] == "succeeded"


def test_a_single_submit_waits_for_its_dependency_and_joins_its_workflow(stack: Stack) -> None:
    with ConveyorClient(stack.server.url, api_key=stack.keys.tenant_a) as client:
        parent = client.submit("steps", {"count": 2, "pause": 0.2}, step="parent")
        assert parent.workflow_id is not None
        child = client.submit("add", {"a": 5, "b": 5}, depends_on=[parent.id], step="child")
        assert child.workflow_id == parent.workflow_id and child.depends_on == [parent.id]
        final = client.wait(child.id, timeout=60)
        assert final.result == 10
        assert client.get(parent.id).state.value == "succeeded"
        view = client.workflow(parent.workflow_id)
        assert [s.step for s in view.steps] == ["parent", "child"] and view.state == "succeeded"
    with stack.server.http(stack.keys.tenant_a) as http:
        bad = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 1}, "quorum": 1})
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["body.quorum"]
        bad = http.post(
            "/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 1}, "depends_on": [parent.id], "quorum": 2}
        )
        assert bad.status_code == 422 and [e["field"] for e in bad.json()["errors"]] == ["body.quorum"]
        # another tenant's job is no dependency of yours
    with stack.server.http(stack.keys.tenant_b) as http:
        bad = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 1}, "depends_on": [parent.id]})
        assert bad.status_code == 422 and bad.json()["code"] == "UnknownDependency"
