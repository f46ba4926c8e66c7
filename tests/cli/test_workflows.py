"""conveyor submit --from-file / --depends-on and conveyor workflows show|cancel, locally on every
engine and over HTTP against a real ``conveyor serve`` with a worker node (the README's example
workflow, end to end)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from conveyor.types import JobState
from tests.cli.conftest import EXAMPLES_APP, REPO, Cli

EXAMPLE_JOBS = REPO / "examples" / "report_workflow.jsonl"


def _write(tmp: Path, name: str, lines: list[object]) -> Path:
    path = tmp / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def _workflow_id(stderr: str) -> str:
    line = next(line for line in stderr.splitlines() if " as workflow " in line)
    return line.split(" as workflow ")[1].split()[0]


def test_a_jobs_file_with_bad_lines_stores_nothing_and_names_each_line(cli: Cli) -> None:
    path = _write(
        cli.tmp,
        "jobs.jsonl",
        [
            {"task": "countdown", "args": {"seconds": 1}, "step": "first"},
            "# a comment, skipped",
            {"task": "countdown", "args": {"seconds": "soon"}, "depends_on": ["first"]},
            {"task": "no_such_task", "args": {}},
            {"task": "countdown", "args": {"seconds": 1}, "depends_on": ["last"]},
            {"task": "countdown", "args": {"seconds": 1}, "step": "last"},
        ],
    )
    result = cli("submit", "--from-file", str(path), "--app", EXAMPLES_APP)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "nothing was submitted" in lines[0]
    assert {line.split(":")[0].strip() for line in lines[1:]} == {"line 3", "line 4", "line 5"}
    assert any(line.strip().startswith("line 3: args.seconds:") for line in lines)
    assert any("line 5: depends_on[0]:" in line and "later" in line for line in lines)
    assert result.stdout == ""
    assert cli.app().list_jobs().jobs == []
    # a line that is not JSON at all, and an unknown field: reported before anything else runs
    broken = _write(cli.tmp, "broken.jsonl", ['{"task": "countdown"', {"task": "countdown", "colour": "red"}])
    result = cli("submit", "--from-file", str(broken), "--app", EXAMPLES_APP)
    assert result.returncode == 2
    assert "line 1: line: not valid JSON" in result.stderr and "line 2: colour: unknown field" in result.stderr
    assert cli.app().list_jobs().jobs == []


def test_a_jobs_file_is_one_workflow_to_show_and_cancel(cli: Cli) -> None:
    path = _write(
        cli.tmp,
        "jobs.jsonl",
        [
            {"task": "countdown", "args": {"seconds": 5}, "step": "first"},
            {"task": "countdown", "args": {"seconds": 5}, "step": "second", "depends_on": ["first"]},
        ],
    )
    result = cli("submit", "--from-file", str(path), "--app", EXAMPLES_APP)
    assert result.returncode == 0, result.stderr
    first_id, second_id = result.stdout.split()
    workflow_id = _workflow_id(result.stderr)
    app = cli.app()
    second = app.get(second_id)
    assert second is not None and second.depends_on == [first_id] and second.state is JobState.WAITING
    assert second.workflow_id == workflow_id and second.step == "second"
    shown = cli("workflows", "show", workflow_id)
    assert shown.returncode == 5, shown.stderr  # no worker: still running
    assert "first" in shown.stdout and "second" in shown.stdout and "waiting" in shown.stdout
    canceled = cli("workflows", "cancel", workflow_id)
    assert canceled.returncode == 0, canceled.stderr
    assert {app.get(i).state for i in (first_id, second_id)} == {JobState.CANCELED}  # type: ignore[union-attr]
    shown = cli("workflows", "show", workflow_id)
    assert shown.returncode == 3 and "canceled" in shown.stdout
    missing = cli("workflows", "show", "no-such-workflow")
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "Traceback" not in missing.stderr


def test_submit_depends_on_makes_a_waiting_job_in_its_parents_workflow(cli: Cli) -> None:
    parent = cli("submit", "countdown", "seconds=1", "--step", "parent", "--app", EXAMPLES_APP)
    assert parent.returncode == 0, parent.stderr
    parent_id = parent.stdout.split()[0]
    child = cli("submit", "countdown", "seconds=1", "--depends-on", parent_id, "--step", "child", "--app", EXAMPLES_APP)
    assert child.returncode == 0, child.stderr
    app = cli.app()
    parent_job, child_job = app.get(parent_id), app.get(child.stdout.split()[0])
    assert parent_job is not None and child_job is not None
    assert child_job.state is JobState.WAITING and child_job.depends_on == [parent_id]
    assert parent_job.workflow_id is not None and child_job.workflow_id == parent_job.workflow_id
    bad = cli("submit", "countdown", "seconds=1", "--quorum", "2", "--depends-on", parent_id, "--app", EXAMPLES_APP)
    assert bad.returncode == 2 and "quorum" in bad.stderr
    bad = cli(
        "submit", "countdown", "--on-dependency-failure", "shrug", "--depends-on", parent_id, "--app", EXAMPLES_APP
    )
    assert bad.returncode == 2 and "cancel, continue, wait" in bad.stderr


pytestmark_remote = pytest.mark.xdist_group("cli-serve-workflows")


@pytestmark_remote
def test_the_example_workflow_runs_end_to_end_over_http(server: tuple[Cli, str]) -> None:
    """The README's step: the report workflow from its jobs file, on a real worker node."""
    cli, base = server
    result = cli("submit", "--from-file", str(EXAMPLE_JOBS), "--server", base, "--wait", "--timeout", "5m")
    assert result.returncode == 0, result.stdout + result.stderr
    ids = result.stdout.split()[:3]
    workflow_id = _workflow_id(result.stderr)
    view = httpx.get(f"{base}/v1/workflows/{workflow_id}", timeout=30).json()
    assert view["state"] == "succeeded" and [s["step"] for s in view["steps"]] == ["data", "pdf", "notify"]
    assert [s["id"] for s in view["steps"]] == ids
    notify = httpx.get(f"{base}/v1/jobs/{ids[2]}", timeout=30).json()
    pdf = httpx.get(f"{base}/v1/jobs/{ids[1]}", timeout=30).json()
    assert notify["result"]["sent"] is True and notify["result"]["to"] == "finance@example.com"
    assert f"{pdf['result']['pages']} pages" in notify["result"]["body"]
    assert any(a["name"] == "report.pdf" for a in pdf["artifacts"])
    shown = cli("workflows", "show", workflow_id, "--server", base)
    assert shown.returncode == 0, shown.stderr
    assert all(step in shown.stdout for step in ("data", "pdf", "notify")) and "100 %" in shown.stdout


@pytestmark_remote
def test_server_side_item_errors_are_reported_by_line(server: tuple[Cli, str]) -> None:
    cli, base = server
    path = _write(
        cli.tmp,
        "remote.jsonl",
        [
            {"task": "countdown", "args": {"seconds": 1}, "step": "a"},
            "",
            {"task": "report", "args": {"months": 99}, "depends_on": ["a"]},
        ],
    )
    before = httpx.get(f"{base}/v1/jobs", params={"limit": 200}, timeout=30).json()["jobs"]
    result = cli("submit", "--from-file", str(path), "--server", base)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "line 3: args.title:" in result.stderr and "line 3: args.months:" in result.stderr
    after = httpx.get(f"{base}/v1/jobs", params={"limit": 200}, timeout=30).json()["jobs"]
    assert len(after) == len(before)
