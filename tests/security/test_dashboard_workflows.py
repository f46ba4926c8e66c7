"""The dashboard's workflow view in a real browser: steps in layers with their dependency edges,
live states over the workflow's stream, escaped step data, the link from the job view, cancel.

A real ``conveyor serve --workers 1`` and headless Chromium (Playwright) signed in with an admin
key (fixtures shared with test_dashboard_views). Skipped locally when Playwright or Chromium is
missing; CI (``CI`` set) must have both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.api.procs import wait_until
from tests.security.test_dashboard_views import Site, page, site

__all__ = ["page", "site"]  # the fixtures, shared with the job views' tests


def _batch(site: Site, items: list[dict[str, Any]]) -> dict[str, Any]:
    with site.server.http(site.admin) as http:
        response = http.post("/v1/jobs:batch", json={"items": items})
        assert response.status_code == 202, response.text
        body: dict[str, Any] = response.json()
    return body


def test_workflow_view_draws_layers_and_edges_and_follows_the_steps_live(site: Site, page: Any) -> None:
    go = site.tmp / "go-view"
    message = "no <b>data</b> & <img src=x onerror=alert(1)>"
    batch = _batch(
        site,
        [
            {"task": "progress", "args": {"go": str(go)}, "step": "work"},
            {"task": "boom", "args": {"message": message}, "step": "explode", "depends_on": ["work"]},
        ],
    )
    work, explode = (j["id"] for j in batch["jobs"])
    page.goto(f"{site.server.url}/dashboard/#/workflows/{batch['workflow_id']}")
    page.locator(f"#step-{explode}").wait_for()
    assert page.locator(".dag .layer").count() == 2
    assert page.locator(f".layer[data-layer='0'] #step-{work}").count() == 1
    assert page.locator(f".layer[data-layer='1'] #step-{explode}").count() == 1
    assert page.locator("svg.edges line.edge").count() == 1
    assert page.locator(f"#step-{explode}").get_attribute("data-state") == "waiting"
    assert "after work" in page.locator(f"#step-{explode}").inner_text()
    Path(go).touch()  # let the first step run to its end; the page must follow without a reload
    page.locator(f"#step-{explode}[data-state='failed']").wait_for()
    page.locator("#workflow-state:has-text('failed')").wait_for()
    assert page.locator(f"#step-{work}").get_attribute("data-state") == "succeeded"
    box = page.locator(f"#step-{explode}")
    assert message in box.inner_text()  # shown as text, never as markup
    assert box.locator("img, b:has-text('data')").count() == 0
    assert page.locator("#failed a").inner_text() == "explode"
    assert page.locator("#workflow-progress").get_attribute("value") == "100"
    assert page.locator("#cancel-workflow").count() == 0
    page.screenshot(path="/tmp/dashboard-workflow.png", full_page=True)


def test_the_job_view_links_to_its_workflow(site: Site, page: Any) -> None:
    batch = _batch(site, [{"task": "boom", "args": {"message": "x"}, "step": "only"}])
    job_id = batch["jobs"][0]["id"]
    page.goto(f"{site.server.url}/dashboard/#/jobs/{job_id}")
    link = page.locator("#workflow-link")
    link.wait_for()
    assert link.inner_text() == batch["workflow_id"]
    link.click()
    page.locator(f"#step-{job_id}").wait_for()
    assert page.url.endswith(f"#/workflows/{batch['workflow_id']}")


def test_cancel_workflow_asks_then_cancels_every_unfinished_step(site: Site, page: Any) -> None:
    go = site.tmp / "go-never"  # never created: the first step runs until canceled
    batch = _batch(
        site,
        [
            {"task": "progress", "args": {"go": str(go)}, "step": "slow"},
            {"task": "boom", "args": {"message": "never runs"}, "step": "next", "depends_on": ["slow"]},
        ],
    )
    page.goto(f"{site.server.url}/dashboard/#/workflows/{batch['workflow_id']}")
    page.locator("#cancel-workflow").wait_for()
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#cancel-workflow")
    page.locator("#workflow-state:has-text('canceled')").wait_for()
    assert asked and "Cancel every unfinished step" in asked[0]
    with site.server.http(site.admin) as http:
        states = wait_until(
            lambda: (
                (s := [j["state"] for j in http.get(f"/v1/workflows/{batch['workflow_id']}").json()["steps"]]) and s
            ),
            what="the workflow",
        )
    assert states == ["canceled", "canceled"]
