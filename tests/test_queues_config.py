"""Queue declarations from a config file (no engine): what is read, what is refused by name,
and how a submit is routed (expected_runtime) and prioritised (the queue's default)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor import Conveyor, QueueConfig, load_queues_config
from conveyor.errors import ConfigError


def test_a_config_file_declares_queues(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text(
        '[queues.fast]\nmax_runtime = 2\noverflow_to = "slow"\npriority = 5\n[queues.slow]\npaused = true\n'
    )
    fast, slow = load_queues_config(path)
    assert (fast.name, fast.max_runtime, fast.overflow_to, fast.priority) == ("fast", 2, "slow", 5)
    assert (slow.name, slow.paused, slow.max_depth) == ("slow", True, None)


def test_pyproject_tool_table(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n[tool.conveyor.queues.reports]\nmax_depth = 10\n')
    assert load_queues_config(path) == [QueueConfig("reports", max_depth=10)]
    path.write_text('[project]\nname = "x"\n')
    with pytest.raises(ConfigError, match=r"no \[queues"):
        load_queues_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[queues.fast]\nmax_runtim = 3\n", "queues.fast.max_runtim: unknown key"),
        ("[queues.fast]\nmax_depth = 'ten'\n", "queues.fast.max_depth: expected int"),
        ("[queues.fast]\nmax_depth = true\n", "queues.fast.max_depth: expected int"),
        ("[queues.fast]\npaused = 1\n", "queues.fast.paused: expected bool"),
        ("[queues.fast]\nmax_runtime = 3\n", "max_runtime and overflow_to go together"),
        ('[queues.fast]\nmax_runtime = -1\noverflow_to = "s"\n', "max_runtime must be a positive"),
        ("[queues]\nfast = 3\n", "queues.fast must be a table"),
        ('[queues.a]\nmax_runtime = 1\noverflow_to = "b"\n[queues.b]\nmax_runtime = 1\noverflow_to = "a"\n', "loops"),
        ("[queues.fast\n", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as caught:
        load_queues_config(path)
    assert str(path) in str(caught.value)


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_queues_config(tmp_path / "nope.toml")


def test_submits_follow_expected_runtime_and_the_queue_default_priority() -> None:
    app = Conveyor(
        "sqlite:///unused.db",
        queues=[
            QueueConfig("fast", max_runtime=5, overflow_to="slow", priority=7),
            QueueConfig("slow", max_runtime=600, overflow_to="huge"),
        ],
    )

    @app.task(queue="fast", expected_runtime=60)
    def medium() -> None: ...

    @app.task(queue="fast", expected_runtime=3600)
    def huge() -> None: ...

    @app.task(queue="fast")
    def quick() -> None: ...

    @app.task(queue="fast", priority=1)
    def urgent() -> None: ...

    assert app.build_request(medium.name, {}).queue == "slow"
    assert app.build_request(huge.name, {}).queue == "huge", "the routing follows the overflow chain"
    assert app.build_request(quick.name, {}).queue == "fast"
    assert app.build_request(quick.name, {}).priority == 7, "the queue's default priority"
    assert app.build_request(urgent.name, {}).priority == 1, "a task's own priority wins"
    with pytest.raises(ConfigError, match="another queue"):
        QueueConfig("a", max_runtime=1, overflow_to="a")
    loop = [QueueConfig("a", max_runtime=1, overflow_to="b"), QueueConfig("b", max_runtime=1, overflow_to="a")]
    with pytest.raises(ConfigError, match=r"loops \(a -> b -> a\)"):
        Conveyor("sqlite:///unused.db", queues=loop)
