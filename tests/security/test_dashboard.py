"""Finding 3: dashboard login CSRF, cookie flags, security headers, artifacts with nosniff."""

from __future__ import annotations

import httpx

from tests.api.procs import wait_until
from tests.security.conftest import Limited, Stack


def _login(url: str, key: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/dashboard/login", data={"key": key}, headers=headers, follow_redirects=False, timeout=30)


def test_login_refuses_a_cross_origin_form_and_sets_a_strict_cookie(stack: Stack) -> None:
    url = stack.server.url
    for headers in ({"Origin": "https://evil.example"}, {"Origin": "null"}, {"Sec-Fetch-Site": "cross-site"}):
        response = _login(url, stack.admin, **headers)
        assert response.status_code == 403 and "set-cookie" not in response.headers, headers
    assert "set-cookie" not in _login(url, "cvk_attacker_key", Origin=url).headers  # any value: no cookie
    response = _login(url, stack.admin, Origin=url)
    assert response.status_code == 303
    cookie = response.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie
    assert "secure" not in cookie  # plain http, and X-Forwarded-Proto from an untrusted client is ignored
    forged = _login(url, stack.admin, Origin=url, **{"X-Forwarded-Proto": "https"})
    assert "secure" not in forged.headers["set-cookie"].lower()


def test_the_cookie_is_secure_behind_a_trusted_https_proxy(limits: Limited) -> None:
    url = limits.server.url
    response = _login(url, limits.key, Origin="https://" + url.split("://")[1], **{"X-Forwarded-Proto": "https"})
    assert response.status_code == 303, response.text
    assert "secure" in response.headers["set-cookie"].lower()


def test_dashboard_pages_and_artifacts_carry_security_headers(stack: Stack) -> None:
    for path in ("/dashboard/login", "/dashboard/static/app.js"):
        response = httpx.get(stack.server.url + path, timeout=30)
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    with stack.server.http(stack.tenant_a) as http:
        job_id = http.post("/v1/jobs", json={"task": "artifact"}).json()["id"]
        wait_until(lambda: http.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded", what="the artifact job")
        response = http.get(f"/v1/jobs/{job_id}/artifacts/page.html")
        assert response.status_code == 200
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "sandbox" in response.headers["content-security-policy"]
