"""conveyor submit --server: the same submit and --wait over HTTP, against a real ``conveyor serve``.

One job service with one worker node (``conveyor serve --workers 1``) per engine's store
serves the module; the CLI talks to it only through ``conveyor.client``.
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import EXAMPLES_APP, Cli, cli_environ, start_group, stop_group
from tests.engines import ENGINES, engine_url

DEADLINE = 120.0
pytestmark = pytest.mark.xdist_group("cli-serve")  # one job service for the whole module


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module", params=ENGINES, ids=list(ENGINES))
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, str]]:
    tmp = tmp_path_factory.mktemp("remote")
    with engine_url(request.param, tmp, private=True) as url:
        yield from _server(cli_environ(url, tmp), tmp)


def _server(env: dict[str, str], tmp: Path) -> Iterator[tuple[Cli, str]]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "conveyor", "serve", "--app", EXAMPLES_APP, "--port", str(port)]
    command += ["--workers", "1", "--concurrency", "1", "--no-auth", "--log-level", "warning"]
    proc = start_group(command, env, tmp / "serve.log")
    try:
        end = time.monotonic() + DEADLINE
        while True:
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < end, "job service did not start"
            time.sleep(0.2)
        yield Cli(env, env["CONVEYOR_URL"], tmp), base
    finally:
        stop_group(proc)


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
