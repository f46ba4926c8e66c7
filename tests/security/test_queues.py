"""Finding 4: only declared queues accept submits."""

from __future__ import annotations

from tests.security.conftest import Stack


def test_a_submit_to_an_undeclared_queue_is_422_naming_the_allowed_ones(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        response = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "queue": "made-up-queue"})
        assert response.status_code == 422, response.text
        problem = response.json()
        assert problem["errors"][0]["field"] == "body.queue"
        assert {"default", "reports", "conveyor.webhooks"} <= set(problem["allowed"])
        for name in ("default", "reports"):
            assert name in problem["detail"]
        declared = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "queue": "reports", "delay": 3600})
        assert declared.status_code == 202, declared.text
        http.post(f"/v1/jobs/{declared.json()['id']}:cancel")
