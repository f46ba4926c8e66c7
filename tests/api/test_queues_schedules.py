"""Queues declared in a config file and periodic jobs, as ``conveyor queues``/``schedules``,
``/v1/queues`` and ``/v1/schedules`` show them, on every engine; a bad config file is refused
with one line naming the key."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from tests.api.procs import Env
from tests.faults.helpers import wait_until

APP = "tests.apps.periodic:app"
CONFIG = """
[tool.conveyor.queues.fast]
max_runtime = 0.5
overflow_to = "slow"
max_depth = 1000
priority = 5

[tool.conveyor.queues.slow]
max_depth = 100
paused = true
"""


def write_config(tmp: Path, text: str = CONFIG) -> str:
    path = tmp / "pyproject.toml"
    path.write_text(text)
    return str(path)


def test_declared_queues_and_schedules_over_http(env: Env) -> None:
    config = write_config(env.tmp)
    server = env.serve("--no-auth", "--workers", "1", "--concurrency", "1", "--queues-config", config, app=APP)
    with server.http(None) as http:
        queues = {q["name"]: q for q in http.get("/v1/queues").json()["queues"]}
        fast, slow = queues["fast"], queues["slow"]
        assert (fast["max_runtime"], fast["overflow_to"], fast["max_depth"], fast["priority"]) == (0.5, "slow", 1000, 5)
        assert slow["max_depth"] == 100 and slow["declared_paused"] is True
        assert isinstance(fast["throughput_per_min"], int)

        # the node `serve` started applied the declared pause to the engine
        def slow_paused() -> bool:
            found = {q["name"]: q for q in http.get("/v1/queues").json()["queues"]}
            return bool(found["slow"]["paused"])

        wait_until(slow_paused, timeout=60, message="the declared pause to be applied")
        schedules = {s["name"]: s for s in http.get("/v1/schedules").json()["schedules"]}
        tick, report = schedules["every-second"], schedules["morning-report"]
        assert tick["every"] == 1.0 and tick["task"] == "periodic.tick"
        assert report["cron"] == "30 6 * * 1-5" and report["tz"] == "Europe/Paris"
        at = datetime.fromtimestamp(report["next_run"], ZoneInfo("Europe/Paris"))
        assert (at.hour, at.minute, at.second) == (6, 30, 0) and at.weekday() < 5
        assert tick["next_run"] == int(tick["next_run"])
        # the schedule's jobs run on the node `serve` started, and the throughput shows them
        wait_until(
            lambda: (
                {q["name"]: q for q in http.get("/v1/queues").json()["queues"]}["default"]["throughput_per_min"] >= 2
            ),
            timeout=60,
            message="periodic jobs to finish",
        )


def test_conveyor_queues_and_schedules_cli(env: Env) -> None:
    config = write_config(env.tmp)
    shown = env.cli("queues", "--app", APP, "--queues-config", config, "--json")
    assert shown.returncode == 0, shown.stderr
    queues = {q["queue"]: q for q in json.loads(shown.stdout)}
    assert queues["fast"]["declared"] == {
        "max_depth": 1000,
        "max_runtime": 0.5,
        "overflow_to": "slow",
        "priority": 5,
        "paused": None,
        "retention": None,
        "concurrency": None,
        "rate_limit": None,
    }
    assert queues["fast"]["throughput_per_min"] == 0
    table = env.cli("queues", "--app", APP, "--queues-config", config)
    assert table.returncode == 0 and "0.5s -> slow" in table.stdout
    listed = env.cli("schedules", "--app", APP, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert 0 <= rows["every-second"]["next_in"] <= 1.0
    assert rows["morning-report"]["tz"] == "Europe/Paris"
    human = env.cli("schedules", "--app", APP)
    assert "30 6 * * 1-5 (Europe/Paris)" in human.stdout


def test_a_bad_queues_config_is_one_error_line_naming_the_key(env: Env) -> None:
    cases = {
        "[queues.fast]\nmax_runtim = 3\n": "queues.fast.max_runtim: unknown key",
        "[queues.fast]\nmax_depth = 'ten'\n": "queues.fast.max_depth: expected int",
        "[queues.fast]\nmax_runtime = 3\n": "max_runtime and overflow_to go together",
        '[queues.a]\nmax_runtime = 1\noverflow_to = "b"\n[queues.b]\nmax_runtime = 1\noverflow_to = "a"\n': "loops",
        "[queues.fast\n": "not valid TOML",
    }
    for text, message in cases.items():
        path = env.tmp / "bad.toml"
        path.write_text(text)
        for command in (["queues"], ["worker", "--burst"]):
            done = env.cli(*command, "--app", APP, "--queues-config", str(path))
            assert done.returncode != 0, (text, done.stdout)
            assert message in done.stderr and "Traceback" not in done.stderr, (text, done.stderr)
            assert len(done.stderr.strip().splitlines()) == 1, done.stderr
