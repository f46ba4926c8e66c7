"""One clear line on stderr instead of a traceback, for every command of the jobs CLI.

``conveyor.cli.main.main`` already turns a ConveyorError into ``error: ...`` and exit code 2.
Commands wrap their body in ``cli_errors()`` so that the other ways a command can fail
(invalid arguments with several bad fields, an unreachable HTTP server, a bad value the user
typed, a surprise from a library) reach the user the same way. Set ``CONVEYOR_DEBUG=1`` to
get the traceback back when debugging Conveyor itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import click
import typer

from conveyor.errors import ConveyorError, InvalidArguments

EXIT_ERROR = 2
"""Bad input, unknown job or task, unreachable engine: the command did nothing useful."""


class UsageError(ConveyorError):
    """A value typed on the command line does not make sense (bad key=value, state name...)."""


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def _field_lines(exc: BaseException) -> list[str]:
    """One line per bad field when the error carries field detail (local or HTTP 422)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):  # pydantic.ValidationError.errors()
        try:
            errors = errors()
        except Exception:
            errors = None
    lines = []
    for item in errors or []:
        if isinstance(item, dict):
            field = item.get("field") or ".".join(str(p) for p in item.get("loc", ())) or "args"
            message = item.get("message") or item.get("msg") or "invalid"
            lines.append(f"  {field}: {message}")
    return lines


def _debug() -> bool:
    return os.environ.get("CONVEYOR_DEBUG", "").lower() in ("1", "true", "yes")


@contextmanager
def cli_errors() -> Iterator[None]:
    """Turn any failure inside a command into ``error: ...`` lines and exit code 2."""
    try:
        yield
    except (typer.Exit, typer.Abort, click.exceptions.ClickException, KeyboardInterrupt):
        raise
    except InvalidArguments as exc:
        lines = _field_lines(exc)
        if not lines:
            fail(str(exc))
        task = str(exc).split(":", 1)[0]
        typer.secho(f"error: {task}:", fg="red", err=True)
        for line in lines:
            typer.secho(line, fg="red", err=True)
        raise typer.Exit(EXIT_ERROR) from None
    except ConveyorError as exc:
        fail(str(exc))
    except Exception as exc:
        if _debug():
            raise
        if isinstance(getattr(exc, "problem", None), dict) and isinstance(getattr(exc, "status_code", None), int):
            _service_error(exc)
        message = str(exc).splitlines()[0] if str(exc) else "(no message)"
        fail(f"{_describe(exc)}: {message}")


def _service_error(exc: Any) -> NoReturn:
    """``conveyor.client.ClientError``: the RFC 9457 problem, one line (plus one per bad field)."""
    status, problem = exc.status_code, exc.problem
    if status == 0:
        fail(f"cannot reach the job service: {problem.get('detail') or problem.get('title')}")
    detail = str(problem.get("detail") or problem.get("title") or "error")
    lines = _field_lines(exc)
    if lines:
        typer.secho(f"error: {detail.split(': ')[0]} (HTTP {status}):", fg="red", err=True)
        for line in lines:
            typer.secho(line, fg="red", err=True)
        raise typer.Exit(EXIT_ERROR)
    retry = getattr(exc, "retry_after", None)
    fail(f"{detail} (HTTP {status}" + (f", retry after {retry:g}s)" if retry else ")"))


def _describe(exc: BaseException) -> str:
    """A short human name for an unexpected exception (network errors get a hint)."""
    if type(exc).__module__.startswith("httpx") or isinstance(exc, ConnectionError):
        return "cannot reach the job service"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError):
        return "system error"
    return f"unexpected {type(exc).__name__} (set CONVEYOR_DEBUG=1 for the traceback)"
