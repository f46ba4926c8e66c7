"""conveyor submit (local, through the app): argument parsing, options, and clear errors."""

from __future__ import annotations

import time

import pytest

from conveyor.cli.errors import UsageError
from conveyor.cli.parsing import parse_assignments, parse_duration, parse_states
from conveyor.types import JobState
from tests.cli.conftest import EXAMPLES_APP, Cli, assert_one_line_error


def test_values_parse_as_json_else_as_strings() -> None:
    args = parse_assignments(["user_id=7", "name=bob", 'tags=["a"]', "ok=true", 'code="007"', "empty=", "eq=a=b"])
    assert args == {"user_id": 7, "name": "bob", "tags": ["a"], "ok": True, "code": "007", "empty": "", "eq": "a=b"}


@pytest.mark.parametrize("bad", ["novalue", "=7", "1x=2", "a-b=1"])
def test_bad_assignment_is_a_usage_error(bad: str) -> None:
    with pytest.raises(UsageError):
        parse_assignments([bad])


def test_durations_and_states() -> None:
    assert parse_duration("90") == 90
    assert parse_duration("1.5m") == 90
    assert parse_duration("2h") == 7200
    assert parse_duration("250ms") == pytest.approx(0.25)
    assert parse_states(["failed,queued", "RUNNING"]) == [JobState.FAILED, JobState.QUEUED, JobState.RUNNING]
    with pytest.raises(UsageError):
        parse_duration("soon")


def test_submit_locally_stores_validated_args(cli: Cli) -> None:
    result = cli("submit", "report", "title=Q3", "months=6", "seed=42", "--app", EXAMPLES_APP)
    assert result.returncode == 0, result.stderr
    job_id = result.stdout.strip()
    assert len(result.stdout.strip().splitlines()) == 1  # just the id on stdout: scriptable
    assert "submitted report to queue reports" in result.stderr
    job = cli.app().get(job_id)
    assert job is not None
    assert job.task == "report" and job.queue == "reports" and job.state is JobState.QUEUED
    assert job.args == {"title": "Q3", "months": 6, "regions": 4, "seed": 42, "pace": 0.0}


def test_submit_options_queue_priority_delay(cli: Cli) -> None:
    before = time.time()
    job_id = cli.submit("report", 'title="2024"', "--queue", "urgent", "--priority", "5", "--delay", "1h")
    job = cli.app().get(job_id)
    assert job is not None
    assert job.args["title"] == "2024"  # quoted JSON string stays a string
    assert job.queue == "urgent" and job.priority == 5
    assert job.state is JobState.SCHEDULED
    assert job.run_at >= before + 3600 - 5


def test_idempotency_key_replays_and_conflicts(cli: Cli) -> None:
    first = cli.submit("flaky", "fail_times=0", "--idempotency-key", "order-17")
    replay = cli("submit", "flaky", "fail_times=0", "--idempotency-key", "order-17", "--app", EXAMPLES_APP)
    assert replay.returncode == 0
    assert replay.stdout.strip() == first
    assert "existing job" in replay.stderr
    conflict = cli("submit", "flaky", "fail_times=2", "--idempotency-key", "order-17", "--app", EXAMPLES_APP)
    assert_one_line_error(conflict, "order-17")
    page = cli.app().list_jobs()
    assert [j.id for j in page.jobs] == [first]


def test_invalid_arguments_get_one_line_per_field(cli: Cli) -> None:
    result = cli("submit", "report", "months=99", "bogus=1", "--app", EXAMPLES_APP)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: invalid arguments for task report:"
    fields = sorted(line.split(":")[0].strip() for line in lines[1:])
    assert fields == ["bogus", "months", "title"]
    assert cli.app().list_jobs().jobs == []  # nothing was stored


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["submit", "report", "title", "--app", EXAMPLES_APP], "key=value"),
        (["submit", "no_such_task", "--app", EXAMPLES_APP], "unknown task 'no_such_task'"),
        (["submit", "report", "title=x", "--delay", "soon", "--app", EXAMPLES_APP], "--delay"),
        (["submit", "report", "title=x", "--timeout", "5", "--app", EXAMPLES_APP], "--wait"),
        (["submit", "report", "title=x"], "--app"),
        (["submit", "report", "title=x", "--app", "nosuch.module:app"], "nosuch.module"),
        (["submit", "report", "title=x", "--app", "examples.app"], "package.module:app"),
        (["submit", "report", "title=x", "--app", EXAMPLES_APP, "--server", "http://127.0.0.1:9"], "not both"),
        (["submit", "report", "title=x", "--server", "http://127.0.0.1:9"], "cannot reach"),
        (["jobs", "ls", "--state", "bogus"], "unknown state 'bogus'"),
        (["jobs", "ls", "--limit", "0"], "--limit"),
        (["jobs", "show", "01a2239f-0000-7000-8000-000000000000"], "no job"),
        (["jobs", "cancel", "nope"], "nope"),
        (["dlq", "redrive"], "--all"),
        (["dlq", "redrive", "abc", "--all"], "not both"),
        (["dlq", "redrive", "nope"], "no job"),
        (["queues", "pause", " "], "queue name"),
        (["jobs", "ls", "--url", "mysql://x/y"], "unsupported backend URL"),
    ],
)
def test_bad_input_gets_one_clear_line(cli: Cli, argv: list[str], expected: str) -> None:
    assert_one_line_error(cli(*argv), expected)
