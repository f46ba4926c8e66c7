"""Finding 2: webhook deliveries belong to an internal tenant, are not named after the URL, and
URLs with secrets do not reach logs."""

from __future__ import annotations

from typing import Any

from conveyor.types import INTERNAL_TENANT
from conveyor.webhooks import DELIVER_TASK
from tests.api.procs import wait_until
from tests.security.conftest import APP, Stack
from tests.security.secure_app import URL_TOKEN


def test_deliveries_are_internal_jobs_no_tenant_can_see_or_cancel(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        job_id = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 2}}).json()["id"]
    with stack.server.http(stack.admin) as admin:

        def delivered() -> dict[str, Any] | None:
            jobs = admin.get("/v1/jobs", params={"task": DELIVER_TASK, "limit": 200}).json()["jobs"]
            done = [j for j in jobs if j["args"]["job_id"] == job_id and j["state"] == "succeeded"]
            return done[0] if done else None

        delivery = wait_until(delivered, what="the delivery to succeed")
        tenant_view = admin.get("/v1/jobs", params={"task": DELIVER_TASK, "tenant": INTERNAL_TENANT}).json()
        assert delivery["id"] in [j["id"] for j in tenant_view["jobs"]]
    # not named after the endpoint URL (which carries a token)
    assert URL_TOKEN not in str(delivery["args"]) and "127.0.0.1" not in delivery["args"]["endpoint"]
    with stack.server.http(stack.tenant_a) as http:
        listed = http.get("/v1/jobs", params={"task": DELIVER_TASK}).json()["jobs"]
        assert listed == []
        assert http.get(f"/v1/jobs/{delivery['id']}").status_code == 404
        assert http.post(f"/v1/jobs/{delivery['id']}:cancel").status_code == 404
    # no API key can be made for the internal tenant
    done = stack.env.cli("keys", "create", "--app", APP, "--tenant", INTERNAL_TENANT, "--scope", "read")
    assert done.returncode != 0 and "reserved" in (done.stderr + done.stdout)
    # the endpoint URL's token is not in any log of the server or its worker node
    logs = "".join(p.read_text(errors="replace") for p in stack.env.tmp.glob("*.log"))
    assert URL_TOKEN not in logs
