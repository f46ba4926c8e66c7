"""conveyor submit --wait with a real worker node: progress to the end, outcome as exit code.

One worker process (``conveyor worker``) serves every test of this module on one store per
engine; each test follows its own job.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conveyor.types import JobState
from tests.cli.conftest import EXAMPLES_APP, Cli, cli_environ, start_group, stop_group
from tests.engines import ENGINES, engine_url

DEADLINE = 120.0
pytestmark = pytest.mark.xdist_group("cli-worker")  # one worker node for the whole module


def wait_until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.fixture(scope="module", params=ENGINES, ids=list(ENGINES))
def cli(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    tmp = tmp_path_factory.mktemp("wait")
    with engine_url(request.param, tmp, private=True) as url:
        yield from _cli_with_worker(Cli(cli_environ(url, tmp), url, tmp), tmp)


def _cli_with_worker(runner: Cli, tmp: Path) -> Iterator[Cli]:
    env = runner.env
    command = [sys.executable, "-m", "conveyor", "worker", "--app", EXAMPLES_APP, "--queues", "default,reports,imports"]
    worker = start_group([*command, "--concurrency", "2", "--lease", "2", "--grace", "2"], env, tmp / "worker.log")
    try:
        yield runner
    finally:
        stop_group(worker)
        for conveyor in runner.apps:
            conveyor.close()


def test_wait_for_report_prints_result_and_artifacts(cli: Cli) -> None:
    result = cli("submit", "report", "title=Waited", "regions=2", "--app", EXAMPLES_APP, "--wait")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    job_id = lines[0]
    assert lines[1].startswith("succeeded after")
    result_line = next(line for line in lines if line.startswith("result: "))
    assert json.loads(result_line.removeprefix("result: "))["pages"] == 5
    artifact = next(line for line in lines if line.startswith("artifact: report.pdf"))
    pdf = Path(artifact.split()[-1].removeprefix("file://"))
    assert pdf.read_bytes().startswith(b"%PDF-")
    assert "report" in result.stderr and "succeeded" in result.stderr  # the bar's final frame
    job = cli.app().get(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED


def test_wait_for_failing_job_exits_1_with_the_error(cli: Cli) -> None:
    result = cli("submit", "flaky", "fail_times=10", "--app", EXAMPLES_APP, "--wait")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed after" in result.stdout and "(3 attempt(s))" in result.stdout
    assert "error: FlakyError: attempt 3 of 10 planned failures" in result.stderr
    job_id = result.stdout.splitlines()[0]
    assert f"details: conveyor jobs show {job_id}" in result.stderr
    assert "Traceback" not in result.stderr  # the task's traceback stays on the job record
    assert job_id in cli("dlq", "ls").stdout


def test_wait_for_canceled_job_exits_3(cli: Cli) -> None:
    waiter = cli.popen("submit", "countdown", "seconds=60", "steps=60", "--app", EXAMPLES_APP, "--wait")
    try:
        assert waiter.stdout is not None
        job_id = waiter.stdout.readline().strip()
        app = cli.app()
        wait_until(lambda: app.get(job_id).state is JobState.RUNNING, "the countdown to start")  # type: ignore[union-attr]
        assert cli("jobs", "cancel", job_id).returncode == 0
        out, err = waiter.communicate(timeout=DEADLINE)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 3, err
    assert "canceled after" in out
    assert "Traceback" not in err


def test_wait_timeout_exits_4_and_the_job_goes_on(cli: Cli) -> None:
    result = cli("submit", "countdown", "seconds=60", "steps=60", "--app", EXAMPLES_APP, "--wait", "--timeout", "1")
    assert result.returncode == 4, result.stderr
    job_id = result.stdout.strip().splitlines()[0]
    assert f"timeout: job {job_id} is still" in result.stderr
    job = cli.app().get(job_id)
    assert job is not None and not job.state.terminal
    assert cli("jobs", "cancel", job_id).returncode == 0  # do not leave it running
