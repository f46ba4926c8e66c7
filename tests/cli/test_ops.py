"""conveyor dlq ls | redrive and conveyor queues [pause | resume] against a real SQLite store."""

from __future__ import annotations

import json

from conveyor.backend.protocol import ClaimRequest
from conveyor.types import JobState
from tests.cli.conftest import Cli, enqueue, make_failed


def test_dlq_ls_shows_failed_jobs_with_their_error(cli: Cli) -> None:
    assert "dead-letter queue is empty" in cli("dlq", "ls").stdout
    app = cli.app()
    mail = make_failed(app, "mail", message="smtp refused")
    sms = make_failed(app, "sms", task="countdown", message="quota exceeded")
    enqueue(app, "flaky", "mail")  # queued, not a dead letter
    table = cli("dlq", "ls")
    assert table.returncode == 0
    assert mail.id in table.stdout and sms.id in table.stdout
    assert "OSError: smtp refused" in table.stdout and "quota exceeded" in table.stdout
    in_mail = json.loads(cli("dlq", "ls", "--queue", "mail", "--json").stdout)["jobs"]
    assert [j["id"] for j in in_mail] == [mail.id]
    by_task = json.loads(cli("dlq", "ls", "--task", "countdown", "--json").stdout)["jobs"]
    assert [j["id"] for j in by_task] == [sms.id]


def test_redrive_by_id_resets_attempts(cli: Cli) -> None:
    app = cli.app()
    job = make_failed(app, "mail")
    result = cli("dlq", "redrive", job.id)
    assert result.returncode == 0, result.stderr
    assert "redrove 1 job(s)" in result.stdout
    after = app.get(job.id)
    assert after is not None and after.state is JobState.QUEUED and after.attempts == 0


def test_redrive_skips_jobs_that_are_not_failed(cli: Cli) -> None:
    app = cli.app()
    failed = make_failed(app, "mail")
    queued = enqueue(app, "flaky", "other")
    result = cli("dlq", "redrive", failed.id, queued.id)
    assert result.returncode == 2
    assert "redrove 1 job(s)" in result.stdout
    assert f"skipped {queued.id}: it is queued" in result.stderr
    assert "Traceback" not in result.stderr
    assert app.get(failed.id).state is JobState.QUEUED  # type: ignore[union-attr]


def test_redrive_all_in_one_queue(cli: Cli) -> None:
    app = cli.app()
    mail = [make_failed(app, "mail") for _ in range(2)]
    sms = make_failed(app, "sms")
    result = cli("dlq", "redrive", "--all", "--queue", "mail")
    assert result.returncode == 0, result.stderr
    assert "redrove 2 job(s) (queue=mail)" in result.stdout
    assert all(app.get(j.id).state is JobState.QUEUED for j in mail)  # type: ignore[union-attr]
    assert app.get(sms.id).state is JobState.FAILED  # type: ignore[union-attr]
    assert "redrove 1 job(s)" in cli("dlq", "redrive", "--all").stdout
    assert app.get(sms.id).state is JobState.QUEUED  # type: ignore[union-attr]


def test_queues_show_depth_by_state_and_declared_queues(cli: Cli) -> None:
    app = cli.app()
    cli.submit("report", "title=A")
    cli.submit("report", "title=B")
    make_failed(app, "mail")
    stats = {q["queue"]: q for q in json.loads(cli("queues", "--json", "--app", "examples.app:app").stdout)}
    assert stats["reports"]["counts"]["queued"] == 2
    assert stats["reports"]["oldest_queued_age"] is not None
    assert stats["mail"]["counts"]["failed"] == 1
    assert stats["imports"]["counts"]["queued"] == 0  # declared by the app, no job yet
    table = cli("queues")
    assert table.returncode == 0
    assert "reports" in table.stdout and "oldest queued" in table.stdout


def test_pause_and_resume_stop_and_restart_claims(cli: Cli) -> None:
    app = cli.app()
    job = enqueue(app, "flaky", "mail")
    paused = cli("queues", "pause", "mail")
    assert paused.returncode == 0, paused.stderr
    assert "paused queue mail" in paused.stdout
    stats = {q["queue"]: q for q in json.loads(cli("queues", "--json").stdout)}
    assert stats["mail"]["paused"] is True
    assert "paused" in cli("queues").stdout
    claim = ClaimRequest("test-worker", ("mail",), 10, 30.0)
    assert app.run_sync(lambda b: b.claim(claim)) == []
    assert cli("queues", "resume", "mail").returncode == 0
    assert json.loads(cli("queues", "--json").stdout)[0]["paused"] is False
    assert [j.id for j in app.run_sync(lambda b: b.claim(claim))] == [job.id]
