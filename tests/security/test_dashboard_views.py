"""Issue 9, dashboard papercuts: the dead-letter and job views in a real browser.

A real ``conveyor serve --workers 1`` and headless Chromium (Playwright) signed in with an admin
key. Skipped locally when Playwright or Chromium is missing; CI (``CI`` set) must have both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.api.procs import Env, Server, wait_until
from tests.security.dashboard_app import STEPS

APP = "tests.security.dashboard_app:app"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WAIT_MS = 60_000


@dataclass
class Site:
    env: Env
    server: Server
    admin: str
    tmp: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("dashboard")
    environment = Env(f"sqlite:///{tmp / 'conveyor.db'}", tmp)
    try:
        admin = environment.create_key("admin", tenant="ops")
        server = environment.serve("--workers", "1", "--concurrency", "2", app=APP)
        yield Site(environment, server, admin, tmp)
    finally:
        environment.stop_all()


@pytest.fixture
def page(site: Site) -> Iterator[Any]:
    """A signed-in dashboard page (the login form, as a person would use it)."""
    try:
        sync_api = pytest.importorskip("playwright.sync_api")
    except pytest.skip.Exception:
        if os.environ.get("CI"):
            raise AssertionError("playwright is required in CI") from None
        raise
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            raise AssertionError(f"{CHROMIUM} is required in CI")
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            tab = browser.new_page(viewport={"width": 1280, "height": 800})
            tab.set_default_timeout(WAIT_MS)
            tab.goto(f"{site.server.url}/dashboard/login")
            tab.fill("input[name=key]", site.admin)
            tab.click("button[type=submit]")
            tab.wait_for_selector("#updated:has-text('updated')")
            yield tab
        finally:
            browser.close()


def _dead(site: Site, message: str) -> str:
    with site.server.http(site.admin) as http:
        job_id: str = http.post("/v1/jobs", json={"task": "boom", "args": {"message": message}}).json()["id"]
        wait_until(lambda: http.get(f"/v1/jobs/{job_id}").json()["state"] == "failed", what="the job to dead-letter")
    return job_id


def _dead_letters(site: Site) -> dict[str, str]:
    """Each dead letter's id and ``updated_at``."""
    with site.server.http(site.admin) as http:
        return {j["id"]: j["updated_at"] for j in http.get("/v1/dead-letters").json()["jobs"]}


def test_dead_letters_show_message_and_traceback_as_escaped_text(site: Site, page: Any) -> None:
    message = "disk <b>full</b> on /var & <img src=x onerror=alert(1)>"
    _dead(site, message)
    page.goto(f"{site.server.url}/dashboard/#/dead")
    cell = page.locator("td.error-cell").first
    cell.wait_for()
    assert "ValueError" in cell.inner_text() and message in cell.inner_text()  # shown as text, not markup
    assert page.locator("td.error-cell img, td.error-cell b:has-text('full')").count() == 0
    traceback = cell.locator("pre.traceback")
    assert traceback.is_visible()
    text = traceback.inner_text()
    assert text.startswith("Traceback (most recent call last):") and "\n" in text and f"ValueError: {message}" in text
    page.screenshot(path="/tmp/dashboard.png", full_page=True)


def test_redrive_all_asks_first(site: Site, page: Any) -> None:
    _dead(site, "first")
    _dead(site, "second")
    page.goto(f"{site.server.url}/dashboard/#/dead")
    page.locator("td.error-cell").first.wait_for()
    stamps = _dead_letters(site)
    assert len(stamps) >= 2
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    redrives: list[str] = []
    page.on("request", lambda r: redrives.append(r.url) if ":redrive" in r.url else None)
    page.click("#all")
    wait_until(lambda: asked, what="the confirmation dialog")
    assert "Redrive all" in asked[0]
    assert redrives == [] and _dead_letters(site) == stamps  # dismissed: nothing redriven

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    with page.expect_request(lambda r: ":redrive" in r.url):
        page.click("#all")
    assert len(asked) == 2
    # accepted: every dead letter was redriven (it runs, and fails, again: a newer updated_at)
    with site.server.http(site.admin) as http:
        wait_until(
            lambda: all(http.get(f"/v1/jobs/{i}").json()["updated_at"] != at for i, at in stamps.items()),
            what="every dead letter to be redriven",
        )


def test_job_view_follows_progress_events_without_refetching(site: Site, page: Any) -> None:
    go = site.tmp / "go"
    with site.server.http(site.admin) as http:
        job_id = http.post("/v1/jobs", json={"task": "progress", "args": {"go": str(go)}}).json()["id"]
    page.goto(f"{site.server.url}/dashboard/#/jobs/{job_id}")
    page.wait_for_selector("#events td:text-is('running')")  # the task waits for the go file
    gets: list[str] = []
    page.on("request", lambda r: gets.append(r.url) if r.method == "GET" else None)
    go.touch()
    page.wait_for_selector("#view .s-succeeded")
    page.wait_for_selector("#view pre:text-is('6')")  # the result, from the one GET after the state change
    progress_rows = page.locator("#events tr:has(td:text-is('progress'))")
    assert progress_rows.count() == STEPS
    shown = [progress_rows.nth(i).locator("td").last.inner_text() for i in range(STEPS)]
    assert shown[2] == "45 % step 3", shown  # 0.15 * 3 == 0.44999999999999996
    page_text = page.locator("#view").inner_text()
    assert "0.44999999999999996" not in page_text and "90 % step 6" in page_text
    api_gets = [u for u in gets if "/events" not in u]
    assert len(api_gets) <= 2, gets  # STEPS + 1 events; only the change of state fetched the job
    assert len(gets) <= 2 * (STEPS + 1), gets  # the stream's own reconnects included
    assert page.locator("#updated").inner_text().startswith("updated ")


def test_workers_page_lists_the_live_node(site: Site, page: Any) -> None:
    page.goto(f"{site.server.url}/dashboard/#/workers")
    row = page.locator("table.workers tr", has=page.locator("td.s-running"))
    row.first.wait_for()
    cells = row.first.locator("td").all_inner_texts()
    assert cells[1] == "running" and "default" in cells[4], cells
    assert "alive" in page.locator("main p.muted").first.inner_text()


def test_schedules_page_lists_each_schedule_with_its_next_run(site: Site, page: Any) -> None:
    page.goto(f"{site.server.url}/dashboard/#/schedules")
    row = page.locator("tr.schedule").first
    row.wait_for()
    text = row.inner_text()
    assert "nightly <b>cleanup</b>" in text and "0 3 * * * (Asia/Tokyo)" in text  # markup shown as text
    assert page.locator("tr.schedule b").count() == 0
    with site.server.http(site.admin) as http:
        next_run = http.get("/v1/schedules").json()["schedules"][0]["next_run"]
    shown = page.locator("tr.schedule td.next-run").first.inner_text()
    expected = page.evaluate(f"new Date({next_run} * 1000).toLocaleString()")
    assert shown == expected
