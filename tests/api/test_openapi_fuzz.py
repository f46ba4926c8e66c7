"""Schemathesis fuzzes the served OpenAPI document against the real server process.

Every generated request must get an answer that is not a 5xx and that conforms to the
document: a declared status code, content type, headers and body schema.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode, checks

from tests.api.conftest import Stack

# one worker runs the module: its job service (module-scoped ``stack``) starts once per engine
pytestmark = pytest.mark.xdist_group("api-openapi_fuzz")

CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]


def _seed_jobs(stack: Stack) -> None:
    """A few real jobs, so list and queue responses carry data."""
    with stack.server.http(stack.keys.admin) as http:
        for i in range(3):
            assert http.post("/v1/jobs", json={"task": "add", "args": {"a": i, "b": i}}).status_code == 202


@pytest.mark.timeout(900)  # one Hypothesis run per operation and mode (28 runs): minutes on a loaded machine
def test_every_route_conforms_to_the_openapi_document(stack: Stack) -> None:
    """Each operation of the served document gets its own Hypothesis run (positive and negative data)."""
    _seed_jobs(stack)
    schema = schemathesis.openapi.from_url(f"{stack.server.url}/v1/openapi.json")
    headers = {"Authorization": f"Bearer {stack.keys.admin}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 13
    runs = [(op, mode) for op in operations for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    for operation, mode in runs:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=stack.server.url, headers=headers, checks=CHECKS, timeout=30)

        try:
            check()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE, operation.label  # nothing to make invalid (e.g. /healthz)
        except Exception as exc:
            raise AssertionError(f"{operation.label} ({mode.value} data): {exc}") from exc


def test_document_describes_problems_and_headers(stack: Stack) -> None:
    doc = httpx.get(f"{stack.server.url}/v1/openapi.json").json()
    submit = doc["paths"]["/v1/jobs"]["post"]
    assert set(submit["responses"]) >= {"202", "401", "403", "404", "413", "422", "429", "503"}
    assert {"Location", "Operation-Location", "Retry-After"} <= set(submit["responses"]["202"]["headers"])
    assert "Retry-After" in submit["responses"]["429"]["headers"]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            for code, response in op["responses"].items():
                if int(code) >= 400 and path != "/readyz":
                    assert list(response["content"]) == ["application/problem+json"], (path, method, code)


def test_generated_submits_are_accepted(stack: Stack) -> None:
    """The per-task submit schemas (served at /openapi.json) describe what the server stores:
    every positive submit is stored (202) or meets a full queue (429) or a reused idempotency
    key, never a 4xx for input the document calls valid."""
    schema = schemathesis.openapi.from_url(f"{stack.server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {stack.keys.admin}"}
    [submit] = [r.ok() for r in schema.get_all_operations() if r.ok().label == "POST /v1/jobs"]
    statuses: list[int] = []

    @given(case=submit.as_strategy(generation_mode=GenerationMode.POSITIVE))
    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: schemathesis.Case) -> None:
        response = case.call_and_validate(base_url=stack.server.url, headers=headers, checks=CHECKS, timeout=30)
        # the one 4xx a valid submit may meet: its generated Idempotency-Key was used before
        reused = response.status_code == 422 and response.json().get("code") == "IdempotencyKeyReused"
        assert response.status_code in (202, 429) or reused, (case.body, case.headers, response.text)
        statuses.append(response.status_code)

    check()
    assert statuses.count(202) >= len(statuses) // 2, statuses
