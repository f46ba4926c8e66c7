"""The fleet over HTTP: /v1/workers for admins, /v1/scaling for an autoscaler's narrow key."""

from __future__ import annotations

import pytest

from tests.api.conftest import Stack
from tests.api.procs import wait_until

pytestmark = pytest.mark.xdist_group("api-fleet")


def test_a_scale_key_reads_the_scaling_signal_and_nothing_else(stack: Stack) -> None:
    scaler = stack.env.create_key("scale", tenant="keda")
    with stack.server.http(scaler) as http:
        signal = http.get("/v1/scaling")
        assert signal.status_code == 200, signal.text
        assert {"default", "limited"} <= set(signal.json()["queues"]), "declared queues appear before any job"
        for path in ("/v1/jobs", "/v1/workers", "/v1/queues", "/metrics"):
            refused = http.get(path)
            assert refused.status_code == 403, path
            assert "scope" in refused.json()["detail"]
    with stack.server.http(stack.keys.tenant_a) as tenant:
        assert tenant.get("/v1/scaling").status_code == 403, "a tenant's key does not read fleet-wide numbers"


def test_the_scaling_signal_counts_backlog_and_drain(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as tenant, stack.server.http(stack.keys.admin) as admin:
        later = tenant.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 2}, "delay": 3600})
        assert later.status_code == 202, later.text
        done = tenant.post("/v1/jobs", json={"task": "add", "args": {"a": 2, "b": 2}})
        job_url = done.headers["Location"]
        wait_until(lambda: tenant.get(job_url).json()["state"] == "succeeded", timeout=60, what="the job to run")

        default = wait_until(
            lambda: (q := admin.get("/v1/scaling").json()["queues"]["default"])["drain_rate"] > 0 and q,
            timeout=30,
            what="the finished job to count in the drain rate",
        )
        assert default["scheduled"] >= 1 and default["backlog"] == 0
        assert default["drain_seconds"] == 0.0, "nothing waits: the queue is drained"
        assert default["workers"] >= 1, "the node started by serve --workers consumes the default queue"


def test_admins_see_the_live_worker_nodes(stack: Stack) -> None:
    with stack.server.http(stack.keys.admin) as admin:
        listing = wait_until(
            lambda: (body := admin.get("/v1/workers").json())["alive"] >= 1 and body,
            timeout=60,
            what="the serve's worker node to register",
        )
        node = next(w for w in listing["workers"] if w["alive"])
        assert "default" in node["queues"] and node["state"] == "running"
        assert node["pid"] > 0 and node["host"] and node["version"]
    with stack.server.http(stack.keys.tenant_a) as tenant:
        assert tenant.get("/v1/workers").status_code == 403
