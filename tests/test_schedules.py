"""Schedule arithmetic (no engine): cron ticks in a time zone across DST, interval ticks, the
tick's idempotency key, the start-up lookback, and the errors that name the bad setting."""

from __future__ import annotations

import itertools
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor import Conveyor
from conveyor.errors import ConfigError
from conveyor.schedules import Schedule, tick_of

PARIS = ZoneInfo("Europe/Paris")


def at(text: str, tz: ZoneInfo = PARIS) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=tz).timestamp()


def test_cron_ticks_follow_the_time_zone_across_dst() -> None:
    daily = Schedule("daily", "t", cron="30 6 * * *", tz="Europe/Paris")
    # 2026-03-29: Paris moves from UTC+1 to UTC+2; 06:30 local every day regardless
    ticks = daily.ticks(at("2026-03-27T12:00:00"), at("2026-03-31T12:00:00"))
    local = [datetime.fromtimestamp(t, PARIS).strftime("%m-%d %H:%M") for t in ticks]
    assert local == ["03-28 06:30", "03-29 06:30", "03-30 06:30", "03-31 06:30"]
    gaps = {round(b - a) for a, b in itertools.pairwise(ticks)}
    assert gaps == {86400, 82800}, "the DST night is an hour shorter in UTC"


def test_every_n_seconds_ticks_on_whole_multiples_so_every_node_agrees() -> None:
    every = Schedule("e", "t", every=5.0)
    assert every.ticks(1000.1, 1016.0) == [1005.0, 1010.0, 1015.0]
    assert every.next_after(1005.0) == 1010.0
    assert every.ticks(1000.0, 1000.0) == []


def test_five_field_cron_every_five_minutes() -> None:
    five = Schedule("five", "t", cron="*/5 * * * *")
    start = at("2026-01-01T00:01:00", ZoneInfo("UTC"))
    assert [t - start for t in five.ticks(start, start + 900)] == [240.0, 540.0, 840.0]


def test_the_tick_key_is_stable_and_parseable() -> None:
    sched = Schedule("report", "t", every=60.0)
    key = sched.key(1_800_000_000.0)
    assert key == "schedule:report:2027-01-15T08:00:00.000000Z"
    assert tick_of(key) == ("report", 1_800_000_000.0)
    assert tick_of("some-other-key") is None


def test_startup_lookback_is_one_period_at_most_a_minute() -> None:
    now = 1_000_000.0
    assert Schedule("s", "t", every=1.0).lookback(now) == 1.0
    assert Schedule("h", "t", cron="0 * * * *").lookback(now) == 60.0
    assert Schedule("g", "t", every=1.0, grace=10).lookback(now) == 10


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of cron"),
        ({"cron": "* * * * *", "every": 5}, "exactly one of cron"),
        ({"cron": "* * * *"}, "5 fields"),
        ({"cron": "* * * * * *"}, "5 fields"),
        ({"cron": "61 * * * *"}, "invalid cron"),
        ({"every": 0}, "every="),
        ({"every": 5, "tz": "Mars/Olympus"}, "unknown time zone"),
        ({"every": 5, "grace": -1}, "grace"),
    ],
)
def test_bad_schedules_are_refused_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Schedule("s", "t", **kwargs)  # type: ignore[arg-type]


def test_app_periodic_registers_the_task_and_its_schedule() -> None:
    app = Conveyor("sqlite:///unused.db")

    @app.periodic("*/5 * * * *", tz="Europe/Paris", task_name="rates.refresh", queue="rates")
    def refresh(currency: str = "EUR") -> str:
        return currency

    assert app.get_task("rates.refresh").options.queue == "rates"
    sched = app.schedules["rates.refresh"]
    assert (sched.cron, sched.tz, sched.task) == ("*/5 * * * *", "Europe/Paris", "rates.refresh")
    app.schedule(refresh, every=60, args={"currency": "USD"}, name="usd")
    assert app.schedules["usd"].args == {"currency": "USD"}
    with pytest.raises(ConfigError, match="declared twice"):
        app.schedule(refresh, every=60, name="usd")
    with pytest.raises(ConfigError, match="name"):
        app.schedule(refresh, every=60, name="a:b")
    with pytest.raises(Exception, match="currency"):
        app.schedule(refresh, every=60, args={"currency": 5}, name="bad-args")
