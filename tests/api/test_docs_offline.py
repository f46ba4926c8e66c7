"""``/docs`` renders in a real browser with no network: Swagger UI's assets ship in the package.

Headless Chromium (Debian's ``chromium``, driven by Playwright) loads the page; every request
that is not to the server itself is aborted and recorded, as on a machine without internet.
"""

from __future__ import annotations

import shutil

import pytest

from tests.api.procs import Env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_docs_render_offline_in_headless_chromium(sqlite_env: Env) -> None:
    """(SQLite only: the page does not depend on the engine.)"""
    sync_api = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    server = sqlite_env.serve()
    outside: list[str] = []
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page()

            def only_the_server(route: object, request: object) -> None:
                url: str = request.url  # type: ignore[attr-defined]
                if url.startswith(server.url):
                    route.continue_()  # type: ignore[attr-defined]
                else:
                    outside.append(url)
                    route.abort()  # type: ignore[attr-defined]

            page.route("**/*", only_the_server)
            page.goto(f"{server.url}/docs")
            title = page.wait_for_selector(".swagger-ui .info .title", timeout=60_000)
            assert title is not None and "Conveyor job service" in title.inner_text()
            page.wait_for_selector(".opblock", timeout=60_000)
            assert page.locator(".opblock").count() >= 10
            assert page.get_by_text("/v1/jobs", exact=True).count() >= 1
        finally:
            browser.close()
    assert outside == []
