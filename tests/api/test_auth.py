"""Every auth failure against the real server: 401 without or with a bad key, 403 for a missing scope."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Stack
from tests.api.procs import wait_until

# one worker runs the module: its job service (module-scoped ``stack``) starts once per engine
pytestmark = pytest.mark.xdist_group("api-auth")


def test_no_key_is_401_with_a_bearer_challenge(stack: Stack) -> None:
    for method, path in (("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/v1/tasks"), ("GET", "/metrics")):
        response = httpx.request(method, stack.server.url + path, json={"task": "add", "args": {}})
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_malformed_unknown_and_wrong_secret_keys_are_401(stack: Stack) -> None:
    key_id = stack.keys.tenant_a.split("_")[1]
    for token in ("nonsense", "cvk_nope_nope", f"cvk_{key_id}_wrongsecret", stack.keys.tenant_a + "x"):
        response = httpx.get(f"{stack.server.url}/v1/jobs", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token
    # the X-API-Key header works like Authorization
    assert httpx.get(f"{stack.server.url}/v1/jobs", headers={"X-API-Key": stack.keys.tenant_a}).status_code == 200


def test_missing_scope_is_403(stack: Stack) -> None:
    with stack.server.http(stack.keys.read_only) as reader, stack.server.http(stack.keys.tenant_a) as submitter:
        assert reader.get("/v1/jobs").status_code == 200
        refused = reader.post("/v1/jobs", json={"task": "add", "args": {"a": 1, "b": 1}})
        assert refused.status_code == 403 and "submit" in refused.json()["detail"]
        assert submitter.get("/v1/dead-letters").status_code == 403
        assert submitter.post("/v1/dead-letters:redrive", json={}).status_code == 403
        assert submitter.get("/metrics").status_code == 403
        assert submitter.get("/dashboard/", follow_redirects=False).status_code == 403
    with stack.server.http(stack.keys.admin) as admin:
        assert admin.get("/v1/dead-letters").status_code == 200
        assert admin.get("/dashboard/").status_code == 200


def test_a_revoked_key_stops_working(stack: Stack) -> None:
    key = stack.env.create_key("read", tenant="a", cli=True)
    with stack.server.http(key) as http:
        assert http.get("/v1/jobs").status_code == 200
        listed = stack.env.cli("keys", "ls", "--app", "tests.apps.api_app:app", "--json")
        # the secret may itself contain "_": split off the prefix and the id only
        _, key_id, secret = key.split("_", 2)
        assert key_id in listed.stdout and secret not in listed.stdout
        done = stack.env.cli("keys", "revoke", "--app", "tests.apps.api_app:app", key.split("_")[1])
        assert done.returncode == 0, done.stderr
        wait_until(lambda: http.get("/v1/jobs").status_code == 401, timeout=30, what="revocation to apply")


def test_dashboard_login_sets_a_cookie_the_api_accepts(stack: Stack) -> None:
    with httpx.Client(base_url=stack.server.url) as browser:
        assert browser.get("/dashboard/", follow_redirects=False).headers["location"] == "/dashboard/login"
        browser.post("/dashboard/login", data={"key": stack.keys.admin}, follow_redirects=False)
        page = browser.get("/dashboard/")
        assert page.status_code == 200 and "Conveyor dashboard" in page.text
        assert browser.get("/v1/queues").status_code == 200
        assert browser.get("/dashboard/static/app.js").status_code == 200
