"""Generic clients work without custom code: absolute LRO URLs (azure-core's poller follows
them), a stable ``code`` in every problem, the OpenAPI document at ``/openapi.json`` too."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
from azure.core import PipelineClient
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import HeadersPolicy
from azure.core.polling import LROPoller
from azure.core.polling.base_polling import LROBasePolling
from azure.core.rest import HttpRequest

from conveyor.api.problems import CODES, STATUS_CODES
from tests.api.conftest import Stack

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_an_azure_lro_poller_follows_the_absolute_operation_location(stack: Stack) -> None:
    client: PipelineClient[Any, Any] = PipelineClient(
        stack.server.url, per_call_policies=[HeadersPolicy({"Authorization": f"Bearer {stack.keys.tenant_a}"})]
    )
    with client:
        initial = client.send_request(
            HttpRequest("POST", f"{stack.server.url}/v1/jobs", json={"task": "add", "args": {"a": 2, "b": 3}}),
            _return_pipeline_response=True,
        )
        assert initial.http_response.status_code == 202
        location = initial.http_response.headers["Operation-Location"]
        assert location.startswith(f"{stack.server.url}/v1/jobs/"), location
        assert initial.http_response.headers["Location"] == location

        def result_of(response: PipelineResponse[Any, Any]) -> Any:
            return response.http_response.json()

        poller = LROPoller(client, initial, result_of, LROBasePolling(timeout=1))
        body = poller.result(timeout=120)
    assert poller.status().lower() == "succeeded"
    assert body["status"] == "succeeded" and body["result"] == 5


def test_public_url_is_the_base_of_every_location(stack: Stack) -> None:
    server = stack.env.serve("--public-url", "https://jobs.example.test/conveyor/")
    try:
        with server.http(stack.keys.tenant_a) as http:
            response = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 1}, "delay": 3600})
            assert response.status_code == 202, response.text
            job = response.json()["id"]
            assert response.headers["Operation-Location"] == f"https://jobs.example.test/conveyor/v1/jobs/{job}"
            http.post(f"/v1/jobs/{job}:cancel")
    finally:
        stack.env.stop(server.proc)


FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "jobs.example.test"}


def test_forwarded_headers_are_believed_from_trusted_proxies_only(stack: Stack) -> None:
    submit = {"task": "add", "args": {"a": 1, "b": 1}, "delay": 3600}
    with stack.server.http(stack.keys.tenant_a) as http:
        untrusted = http.post("/v1/jobs", json=submit, headers=FORWARDED)
        assert untrusted.headers["Location"].startswith(f"{stack.server.url}/v1/jobs/"), untrusted.headers
        http.post(f"/v1/jobs/{untrusted.json()['id']}:cancel")
    proxied = stack.env.serve("--trusted-proxy", "127.0.0.1")
    try:
        with proxied.http(stack.keys.tenant_a) as http:
            trusted = http.post("/v1/jobs", json=submit, headers=FORWARDED)
            job = trusted.json()["id"]
            assert trusted.headers["Location"] == f"https://jobs.example.test/v1/jobs/{job}"
            http.post(f"/v1/jobs/{job}:cancel")
    finally:
        stack.env.stop(proxied.proc)


def test_every_problem_carries_a_stable_code(stack: Stack) -> None:
    with stack.server.http(stack.keys.tenant_a) as http:
        cases = {
            "UnknownTask": http.post("/v1/jobs", json={"task": "no-such-task"}),
            "InvalidArguments": http.post("/v1/jobs", json={"task": "add", "args": {"a": "x", "b": 1}}),
            "InvalidRequest": http.post("/v1/jobs", json={"task": "add", "args": {}, "priority": "high"}),
            "InvalidJson": http.post("/v1/jobs", content=b"{", headers={"Content-Type": "application/json"}),
            "JobNotFound": http.get("/v1/jobs/00000000-0000-0000-0000-000000000000"),
            "NotFound": http.get("/v1/no-such-route"),
            "Unauthenticated": httpx.get(f"{stack.server.url}/v1/jobs"),
        }
        for code, response in cases.items():
            assert response.headers["content-type"] == "application/problem+json", response.text
            assert response.json()["code"] == code, (code, response.text)
    documented = set(re.findall(r"^\| `([A-Za-z]+)` \|", DOCS.read_text(), re.MULTILINE))
    assert set(CODES.values()) | set(STATUS_CODES.values()) <= documented


def test_the_openapi_document_is_served_at_the_conventional_address_too(stack: Stack) -> None:
    root = httpx.get(f"{stack.server.url}/openapi.json")
    assert root.status_code == 200
    assert root.json() == httpx.get(f"{stack.server.url}/v1/openapi.json").json()
    body = root.json()["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["discriminator"]["propertyName"] == "task"
    assert {"add", "steps", "hold"} <= set(body["discriminator"]["mapping"])
    add = root.json()["components"]["schemas"]["Submit_add"]
    assert add["properties"]["args"]["required"] == ["a", "b"]
