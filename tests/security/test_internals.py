"""Finding 6: tracebacks, storage locations and worker host ids stay with operators."""

from __future__ import annotations

import json

from tests.api.procs import wait_until
from tests.security.conftest import Stack


def _events(http: object, job_id: str) -> list[dict[str, object]]:
    response = http.get(f"/v1/jobs/{job_id}/events")  # type: ignore[attr-defined]
    return [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]


def test_tenants_get_error_type_and_message_but_no_server_internals(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        failed = http.post("/v1/jobs", json={"task": "boom", "args": {"message": "nope"}}).json()["id"]
        saved = http.post("/v1/jobs", json={"task": "artifact"}).json()["id"]
        for job_id in (failed, saved):
            wait_until(lambda j=job_id: http.get(f"/v1/jobs/{j}").json()["status"] in ("failed", "succeeded"))
        status = http.get(f"/v1/jobs/{failed}").json()
        assert status["error"] == {"type": "RuntimeError", "message": "nope"}
        listed = http.get("/v1/jobs", params={"task": "boom"}).json()["jobs"]
        assert all("traceback" not in (j["error"] or {}) for j in listed)
        shown = json.dumps(_events(http, failed)) + json.dumps(_events(http, saved))
    assert "Traceback" not in shown and "file://" not in shown and '"worker"' not in shown
    assert "/v1/jobs/" in shown  # the artifact event links its download instead
    with stack.server.http(stack.admin) as admin:  # operators still get the traceback
        assert "Traceback" in admin.get(f"/v1/jobs/{failed}").json()["error"]["traceback"]
        assert '"worker"' in json.dumps(_events(admin, failed))
    done = stack.env.cli("jobs", "show", failed, "--app", "tests.security.secure_app:app")  # the CLI is an operator's
    assert done.returncode == 0 and "Traceback" in done.stdout, done.stderr
