"""conveyor jobs ls | show | cancel against a real SQLite store."""

from __future__ import annotations

import json

from conveyor.backend.protocol import CompleteRequest, ProgressRequest
from conveyor.context import JobContext
from conveyor.types import JobState
from tests.cli.conftest import Cli, assert_one_line_error, claim_one, make_failed


def test_ls_lists_newest_first_and_filters(cli: Cli) -> None:
    report = cli.submit("report", "title=A")
    flaky = cli.submit("flaky")
    table = cli("jobs", "ls")
    assert table.returncode == 0, table.stderr
    assert table.stdout.index(flaky) < table.stdout.index(report)  # newest first, full ids
    only_reports = cli("jobs", "ls", "--task", "report", "--json")
    assert [j["id"] for j in json.loads(only_reports.stdout)["jobs"]] == [report]
    by_queue = json.loads(cli("jobs", "ls", "--queue", "default", "--json").stdout)["jobs"]
    assert [j["id"] for j in by_queue] == [flaky]
    assert json.loads(cli("jobs", "ls", "--state", "running,failed", "--json").stdout)["jobs"] == []
    queued = json.loads(cli("jobs", "ls", "--state", "queued", "--json").stdout)["jobs"]
    assert {j["id"] for j in queued} == {report, flaky}
    assert all("lease_token" not in j for j in queued)


def test_ls_pages_with_cursor(cli: Cli) -> None:
    ids = [cli.submit("flaky", f"fail_times={n}") for n in range(3)]
    first = json.loads(cli("jobs", "ls", "--limit", "2", "--json").stdout)
    assert [j["id"] for j in first["jobs"]] == ids[::-1][:2]
    assert first["next_cursor"]
    second = json.loads(cli("jobs", "ls", "--limit", "2", "--cursor", first["next_cursor"], "--json").stdout)
    assert [j["id"] for j in second["jobs"]] == [ids[0]]
    assert second["next_cursor"] is None
    human = cli("jobs", "ls", "--limit", "2")
    assert f"--cursor {first['next_cursor']}" in human.stdout


def test_ls_empty_store(cli: Cli) -> None:
    result = cli("jobs", "ls")
    assert result.returncode == 0
    assert "no jobs match" in result.stdout


def test_show_succeeded_job_with_result_artifact_and_events(cli: Cli) -> None:
    job_id = cli.submit("report", "title=Shown", "months=3")
    app = cli.app()
    claimed = claim_one(app, "reports")
    token = claimed.lease_token or ""
    assert app.run_sync(lambda b: b.progress(ProgressRequest(job_id, token, 0.5, "half way")))
    JobContext(app, claimed).save_artifact("report.pdf", b"%PDF-1.4 fake", "application/pdf")
    assert app.run_sync(lambda b: b.complete(CompleteRequest(job_id, token, {"pages": 4})))

    result = cli("jobs", "show", job_id)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in (job_id, "succeeded", "1 of 3", '{"pages":4}', "report.pdf", "application/pdf", "half way", "Shown"):
        assert text in out, text
    assert "recent events" in out and "enqueued" in out and "progress" in out

    data = json.loads(cli("jobs", "show", job_id, "--json").stdout)
    assert data["state"] == "succeeded" and data["result"] == {"pages": 4}
    assert data["artifacts"][0]["name"] == "report.pdf"
    assert [e["type"] for e in data["events"]][:2] == ["enqueued", "state"]
    assert "lease_token" not in data


def test_show_failed_job_shows_error(cli: Cli) -> None:
    job = make_failed(cli.app(), "mail", message="smtp refused: 550")
    result = cli("jobs", "show", job.id)
    assert result.returncode == 0
    assert "failed" in result.stdout
    assert "OSError: smtp refused: 550" in result.stdout


def test_show_queued_job_shows_position(cli: Cli) -> None:
    first = cli.submit("flaky")
    second = cli.submit("flaky")
    assert json.loads(cli("jobs", "show", first, "--json").stdout)["queue_position"] == 0
    assert json.loads(cli("jobs", "show", second, "--json").stdout)["queue_position"] == 1
    assert "1 job(s) ahead" in cli("jobs", "show", second).stdout


def test_cancel_queued_job_then_cancel_again_is_an_error(cli: Cli) -> None:
    job_id = cli.submit("countdown", "seconds=5")
    result = cli("jobs", "cancel", job_id)
    assert result.returncode == 0, result.stderr
    assert f"canceled {job_id}" in result.stdout
    job = cli.app().get(job_id)
    assert job is not None and job.state is JobState.CANCELED
    assert_one_line_error(cli("jobs", "cancel", job_id), "canceled")
