"""Errors say what they are (DESIGN §2): input the engine would refuse is a 422 naming the field,
a bug is a logged 500 without a traceback for the client, and only an outage is 503 (the outage
cases are in test_backpressure.py). Real servers on every engine."""

from __future__ import annotations

import json

import httpx

from tests.api.procs import Env

BUGGY_APP = "tests.api.buggy_app:app"


def _post_raw(http: httpx.Client, body: str) -> httpx.Response:
    """POST JSON text as given (with escapes such as \\ud800 that httpx's encoder would refuse)."""
    return http.post("/v1/jobs", content=body.encode("ascii"), headers={"Content-Type": "application/json"})


def test_a_bug_is_a_logged_500_not_an_unavailable_engine(env: Env) -> None:
    server = env.serve("--no-auth", app=BUGGY_APP)
    with server.http() as http:
        response = http.post("/v1/jobs", json={"task": "mangle", "args": {"text": "hello"}})
        assert response.status_code == 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert "Retry-After" not in response.headers
        problem = response.json()
        assert problem["status"] == 500 and problem["type"].endswith("internal-error")
        assert "Traceback" not in response.text and "surrogate" not in response.text
        # the server is fine otherwise, and its log has the traceback of the bug
        assert http.post("/v1/jobs", json={"task": "echo", "args": {"text": "hi"}}).status_code == 202
        assert http.get("/readyz").status_code == 200
    log = server.log.read_text()
    assert "Traceback (most recent call last)" in log and "POST /v1/jobs" in log, log[-3000:]


def test_input_an_engine_would_refuse_is_422_naming_the_field(env: Env) -> None:
    server = env.serve("--no-auth")
    with server.http() as http:
        lone = _post_raw(http, json.dumps({"task": "boom", "args": {"message": "x"}}).replace('"x"', '"a\\ud800"'))
        assert lone.status_code == 422, lone.text
        assert lone.json()["errors"] == [{"field": "args.message", "message": lone.json()["errors"][0]["message"]}]
        assert "surrogate" in lone.json()["errors"][0]["message"]
        nul = http.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 2}, "queue": "de\u0000fault"})
        assert nul.status_code == 422, nul.text
        assert [e["field"] for e in nul.json()["errors"]] == ["queue"]
        # NUL inside an argument is stored fine (arguments are JSON, where it is escaped)
        ok = http.post("/v1/jobs", json={"task": "boom", "args": {"message": "a\u0000b"}})
        assert ok.status_code == 202, ok.text
        assert http.get(f"/v1/jobs/{ok.json()['id']}").json()["args"] == {"message": "a\u0000b"}
