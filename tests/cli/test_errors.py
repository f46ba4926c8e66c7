"""cli_errors: every failure inside a command becomes ``error: ...`` and exit code 2."""

from __future__ import annotations

import pytest
import typer

from conveyor.cli.errors import cli_errors
from conveyor.errors import InvalidArguments, JobNotFound


def _run(exc: BaseException, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(typer.Exit) as exit_info, cli_errors():
        raise exc
    return int(exit_info.value.exit_code), capsys.readouterr().err.strip().splitlines()


def test_unexpected_exception_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(RuntimeError("boom\nsecond line"), capsys)
    assert code == 2
    assert lines == ["error: unexpected RuntimeError (set CONVEYOR_DEBUG=1 for the traceback): boom"]


def test_conveyor_error_is_its_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(JobNotFound("no job with id 'x'"), capsys) == (2, ["error: no job with id 'x'"])


def test_invalid_arguments_list_each_field(capsys: pytest.CaptureFixture[str]) -> None:
    exc = InvalidArguments(
        "invalid arguments for task t: a: bad; b: worse",
        [{"field": "a", "message": "bad"}, {"field": "b", "message": "worse"}],
    )
    assert _run(exc, capsys) == (2, ["error: invalid arguments for task t:", "  a: bad", "  b: worse"])


def test_debug_mode_reraises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_DEBUG", "1")
    with pytest.raises(RuntimeError), cli_errors():
        raise RuntimeError("boom")
