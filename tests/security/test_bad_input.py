"""Bad input gets a 4xx naming the field, never a 5xx (which clients retry) or a silent change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from conveyor.results import LocalResultStore
from tests.api.procs import wait_until
from tests.security.conftest import Limited, Stack


def _submit_raw(http: httpx.Client, text: str) -> httpx.Response:
    return http.post("/v1/jobs", content=text.encode(), headers={"Content-Type": "application/json"})


def _fields(response: httpx.Response) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def test_an_integer_over_64_bits_is_a_422_not_a_retryable_503(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        response = http.post("/v1/jobs", json={"task": "echo", "args": {"data": [1, 2**64]}})
        assert response.status_code == 422, response.text
        assert "retry-after" not in response.headers
        assert _fields(response) == ["args.data.1"]


def test_deeply_nested_args_are_a_422_naming_the_field(stack: Stack) -> None:
    nested = "[" * 900 + "]" * 900
    with stack.server.http(stack.tenant_a) as http:
        response = _submit_raw(http, '{"task": "echo", "args": {"data": ' + nested + "}}")
        assert response.status_code == 422, response.text
        assert _fields(response)[0].startswith("args.data")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_refused_not_stored_as_null(stack: Stack, constant: str) -> None:
    with stack.server.http(stack.tenant_a) as http:
        response = _submit_raw(http, '{"task": "echo", "args": {"data": {"x": ' + constant + "}}}")
        assert response.status_code == 422, response.text
        assert _fields(response) == ["args.data.x"]


def test_a_resume_point_over_2_63_is_refused_before_the_stream(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        job = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "delay": 3600}).json()
        try:
            events = f"/v1/jobs/{job['id']}/events"
            by_query = http.get(events, params={"after": str(2**63)})
            assert by_query.status_code == 422, by_query.text
            assert _fields(by_query) == ["query.after"]
            by_header = http.get(events, headers={"Last-Event-ID": str(2**63)})
            assert by_header.status_code == 422, by_header.text
            assert _fields(by_header) == ["header.Last-Event-ID"]
        finally:
            http.post(f"/v1/jobs/{job['id']}:cancel")


@pytest.mark.parametrize("field,value", [("priority", False), ("priority", "5"), ("delay", True)])
def test_a_boolean_or_string_number_is_refused_not_coerced(stack: Stack, field: str, value: object) -> None:
    with stack.server.http(stack.tenant_a) as http:
        response = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, field: value, "delay": 3600})
        if field == "delay":
            response = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "delay": value})
        assert response.status_code == 422, response.text
        assert _fields(response) == [field]


def test_an_empty_callback_url_is_invalid_in_the_schema_and_on_the_server(stack: Stack) -> None:
    doc = httpx.get(f"{stack.server.url}/v1/openapi.json").json()
    props = doc["components"]["schemas"]["SubmitRequest"]["properties"]["callback_url"]
    schema = next(s for s in props.get("anyOf", [props]) if s.get("type") == "string")
    assert schema["minLength"] == 1 and schema["pattern"].startswith("^")
    with stack.server.http(stack.tenant_a) as http:
        response = http.post("/v1/jobs", json={"task": "ok", "args": {"value": 1}, "callback_url": ""})
        assert response.status_code == 422, response.text
        assert _fields(response) == ["callback_url"]


def test_the_idempotency_key_rule_is_the_same_in_the_schema_and_on_the_server(stack: Stack) -> None:
    import re

    doc = httpx.get(f"{stack.server.url}/v1/openapi.json").json()
    header = next(p for p in doc["paths"]["/v1/jobs"]["post"]["parameters"] if p["name"] == "Idempotency-Key")
    schema = header["schema"]
    schema = next(s for s in schema.get("anyOf", [schema]) if s.get("type") == "string")
    pattern = re.compile(schema["pattern"])
    candidates = ["k" * 255, "k" * 256, '"' + "k" * 255 + '"', '""', 'a"b', '"a', "key-1", "a b", "é"]
    with stack.server.http(stack.tenant_a) as http:
        for key in candidates:
            if not key.isascii():
                continue  # httpx cannot send it; the pattern refuses it too
            response = http.post(
                "/v1/jobs",
                json={"task": "ok", "args": {"value": 1}, "delay": 3600},
                headers={"Idempotency-Key": key},
            )
            schema_valid = bool(pattern.fullmatch(key)) and len(key) <= schema.get("maxLength", 10**9)
            assert (response.status_code == 202) == schema_valid, (key, response.status_code, response.text)
            if response.status_code == 202:
                http.post(f"/v1/jobs/{response.json()['id']}:cancel")


def test_options_on_the_cancel_route_names_post_not_get(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        response = http.options("/v1/jobs/0123456789abcdef:cancel")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"


def test_a_body_that_is_not_json_is_a_400_as_documented(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        response = _submit_raw(http, "this is not json")
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert "| 400 | body is not JSON |" in (Path(__file__).parents[2] / "docs" / "api.md").read_text()


def test_a_chunked_body_over_the_limit_is_a_413(limits: Limited) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"task": "ok", "args": {"value": 1}, "pad": "'
        for _ in range(40):
            yield b"x" * 65536
        yield b'"}'

    with limits.server.http(limits.key) as http:
        response = http.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})
        assert response.status_code == 413, response.text


NAMES = ["with space.txt", "naïve résumé.txt", "a#b.txt", "a?b.txt", "100%.txt", 'say "hi".txt', "日本.txt"]


def test_any_utf8_artifact_name_round_trips(stack: Stack) -> None:
    with stack.server.http(stack.tenant_a) as http:
        for name in NAMES:
            job = http.post("/v1/jobs", json={"task": "named_artifact", "args": {"name": name}}).json()

            def done(job_id: str = job["id"]) -> dict[str, object] | None:
                status = http.get(f"/v1/jobs/{job_id}").json()
                return status if status["status"] in ("succeeded", "failed") else None

            status = wait_until(done, what=f"job with artifact {name!r}")
            assert status["status"] == "succeeded", status
            [artifact] = status["artifacts"]
            assert artifact["name"] == name
            assert unquote(artifact["url"].rsplit("/", 1)[1]) == name and "#" not in artifact["url"]
            download = http.get(artifact["url"])
            assert download.status_code == 200, (name, download.text)
            assert download.content == name.encode()
            disposition = download.headers["content-disposition"]
            assert unquote(disposition.split("filename*=UTF-8''")[1]) == name


def test_a_results_root_with_a_space_serves_its_artifacts(tmp_path: Path) -> None:
    store = LocalResultStore(tmp_path / "results root" / "ça")
    artifact = store.put("job1", "a b#?%.txt", b"bytes")
    assert b"".join(store.open(artifact)) == b"bytes"
