"""conveyor submit --server: the same submit and --wait over HTTP, against a real ``conveyor serve``.

One job service with one worker node (``conveyor serve --workers 1``) per engine's store
serves the module; the CLI talks to it only through ``conveyor.client``.
"""

from __future__ import annotations

import json

import httpx
import pytest

from tests.cli.conftest import Cli

DEADLINE = 120.0
pytestmark = pytest.mark.xdist_group("cli-serve")  # one job service for the whole module


def test_submit_over_http_and_wait_for_the_report(server: tuple[Cli, str]) -> None:
    cli, base = server
    result = cli("submit", "report", "title=Remote", "regions=1", "--server", base, "--wait")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[1].startswith("succeeded after")
    result_line = next(line for line in lines if line.startswith("result: "))
    assert json.loads(result_line.removeprefix("result: "))["pages"] == 4
    artifact = next(line for line in lines if line.startswith("artifact: report.pdf"))
    url = artifact.split()[-1]
    assert url.startswith(f"{base}/v1/jobs/{lines[0]}/")
    assert httpx.get(url, timeout=30).content.startswith(b"%PDF-")


def test_failed_job_over_http_exits_1(server: tuple[Cli, str]) -> None:
    cli, base = server
    result = cli("submit", "flaky", "fail_times=10", "--server", base, "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FlakyError" in result.stderr


def test_invalid_arguments_over_http_get_one_line_per_field(server: tuple[Cli, str]) -> None:
    cli, base = server
    result = cli("submit", "report", "months=99", "--server", base)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "error: invalid arguments for task report (HTTP 422):"
    assert sorted(line.split(":")[0].strip() for line in lines[1:]) == ["args.months", "args.title"]


def test_unknown_task_over_http_is_one_line(server: tuple[Cli, str]) -> None:
    cli, base = server
    result = cli("submit", "no_such_task", "--server", base)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["error: unknown task 'no_such_task' (HTTP 404)"]


def test_idempotent_submit_over_http_returns_the_same_job(server: tuple[Cli, str]) -> None:
    cli, base = server
    first = cli("submit", "flaky", "fail_times=0", "-k", "remote-1", "--server", base)
    again = cli("submit", "flaky", "fail_times=0", "-k", "remote-1", "--server", base)
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    assert first.stdout.strip() == again.stdout.strip()
