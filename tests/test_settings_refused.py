"""A setting Conveyor does not honour is an error at start-up, never a silent no-op (DESIGN §1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.backend import create_backend
from conveyor.errors import ConfigError
from conveyor.types import QueueConfig

REPO = Path(__file__).resolve().parents[1]
APP = "tests.apps.api_app:app"


@pytest.mark.parametrize(("setting", "value"), [("overflow_to", "slow"), ("max_runtime", 60.0)])
def test_a_runtime_limit_without_its_overflow_queue_is_refused_by_name(setting: str, value: object) -> None:
    """max_runtime moves jobs to overflow_to: one without the other would be a silent no-op."""
    with pytest.raises(ConfigError, match="max_runtime and overflow_to"):
        QueueConfig("reports", **{setting: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_runtime and overflow_to"):
        Conveyor("sqlite:///unused.db", queues=[QueueConfig("reports", **{setting: value})])  # type: ignore[arg-type]
    assert QueueConfig("reports", max_runtime=60.0, overflow_to="slow").overflow_to == "slow"
    with pytest.raises(ConfigError, match="max_runtime"):
        QueueConfig("reports", max_runtime=0, overflow_to="slow")
    with pytest.raises(ConfigError, match="overflow_to"):
        QueueConfig("reports", max_runtime=5, overflow_to="reports")


def test_queue_config_checks_what_it_honours() -> None:
    assert QueueConfig("reports", max_depth=5).max_depth == 5
    with pytest.raises(ConfigError, match="max_depth"):
        QueueConfig("reports", max_depth=-1)
    with pytest.raises(ConfigError, match="name"):
        QueueConfig("")


def test_an_unknown_sqlite_url_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="synchronus"):
        create_backend(f"sqlite:///{tmp_path / 'x.db'}?synchronus=NORMAL")
    create_backend(f"sqlite:///{tmp_path / 'x.db'}?synchronous=NORMAL&busy_timeout=100")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CONVEYOR_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "CONVEYOR_RESULTS": str(tmp_path / "results"),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [sys.executable, "-m", "conveyor", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_serve_concurrency_without_workers_is_refused(tmp_path: Path) -> None:
    done = _cli(tmp_path, "serve", "--app", APP, "--port", "1", "--concurrency", "2")
    assert done.returncode != 0 and "--concurrency" in done.stderr and "--workers" in done.stderr, done.stderr


def test_worker_scale_down_idle_without_autoscaling_is_refused(tmp_path: Path) -> None:
    done = _cli(tmp_path, "worker", "--app", APP, "--concurrency", "1", "--scale-down-idle", "5", "--burst")
    assert done.returncode != 0 and "--scale-down-idle" in done.stderr and "--max-concurrency" in done.stderr


def test_a_url_the_app_would_ignore_is_refused(tmp_path: Path) -> None:
    other = f"sqlite:///{tmp_path / 'other.db'}"
    done = _cli(tmp_path, "keys", "ls", "--app", APP, "--url", other)
    assert done.returncode != 0 and other in done.stderr and "app.db" in done.stderr, done.stderr
    # the same URL as the app's, or no --url at all, is fine
    assert _cli(tmp_path, "keys", "ls", "--app", APP, "--url", f"sqlite:///{tmp_path / 'app.db'}").returncode == 0
    assert _cli(tmp_path, "keys", "ls", "--app", APP).returncode == 0
