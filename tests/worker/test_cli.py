"""`conveyor worker` refuses bad arguments with one clear line and a non-zero exit.

SQLite only, on purpose: every case is refused while parsing arguments, before the engine is
opened, so the engine cannot change the outcome and a server engine would only add setup time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.cli import main
from tests.faults.helpers import BASIC_APP, REPO


def run_worker(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"CONVEYOR_URL": f"sqlite:///{tmp_path / 'c.db'}", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "worker", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--app", BASIC_APP, "--concurrency", "0"), "--concurrency must be at least 1"),
        (("--app", BASIC_APP, "--concurrency", "4", "--max-concurrency", "2"), "--max-concurrency (2) must be >="),
        (("--app", BASIC_APP, "--lease", "2", "--heartbeat", "3"), "--heartbeat must be positive and below --lease"),
        (("--app", BASIC_APP, "--lease", "-1"), "--lease must be positive"),
        (("--app", BASIC_APP, "--queues", "a,,b"), "--queues must be a comma-separated list"),
        (("--app", BASIC_APP, "--log-level", "loud"), "--log-level must be one of"),
        (("--app", "no_such_module_xyz:app"), "cannot import 'no_such_module_xyz'"),
        (("--app", "tests.apps.basic"), "--app must look like package.module:app"),
        (("--app", "tests.apps.basic:make_app"), "is not a Conveyor app"),
        ((), "--app is required"),
    ],
)
def test_bad_arguments_give_one_clear_line(
    args: tuple[str, ...],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CONVEYOR_URL", f"sqlite:///{tmp_path / 'c.db'}")
    monkeypatch.delenv("CONVEYOR_APP", raising=False)
    monkeypatch.setattr(sys, "argv", ["conveyor", "worker", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code not in (0, None)
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert len(lines) == 1, out.err
    assert message in lines[0]
    assert "Traceback" not in out.err + out.out


def test_a_real_process_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    done = run_worker("--app", BASIC_APP, "--grace", "-3", tmp_path=tmp_path)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines() == ["error: --grace must not be negative, got -3.0"]


def test_help_lists_the_options(tmp_path: Path) -> None:
    done = run_worker("--help", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    for option in ("--queues", "--concurrency", "--max-concurrency", "--lease", "--heartbeat", "--grace", "--burst"):
        assert option in done.stdout
