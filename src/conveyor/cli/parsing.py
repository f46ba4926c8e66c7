"""Parse what users type: task arguments as ``key=value``, durations, state names.

Values parse as JSON when they are valid JSON and stay strings otherwise, so the common cases
need no quoting: ``user_id=7`` is an int, ``name=bob`` a string, ``tags='["a","b"]'`` a list,
``name='"007"'`` the string "007". ``csv=@contacts.csv`` names a local file: it is uploaded
and the task gets its ``upload:<id>`` ref (a literal text starting with @: ``key='"@x"'``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from conveyor.cli.errors import UsageError
from conveyor.types import JobState

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


@dataclass(frozen=True)
class FileArg:
    """``key=@path``: a local file, uploaded and passed to the task as its ``upload:<id>`` ref."""

    path: Path
    given: str

    def checked(self) -> Path:
        """The file, or a UsageError saying which argument names a missing one."""
        if not self.path.is_file():
            what = "is a directory" if self.path.is_dir() else "does not exist"
            raise UsageError(f"file {str(self.path)!r} (from {self.given}) {what}")
        return self.path


def parse_value(text: str) -> Any:
    """JSON if it parses as JSON, else the text itself."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return text


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """``["user_id=7", "name=bob"]`` -> ``{"user_id": 7, "name": "bob"}``; UsageError on bad input."""
    args: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise UsageError(f"argument {item!r} must look like key=value (e.g. user_id=7)")
        if not _KEY.match(key):
            raise UsageError(f"argument name {key!r} in {item!r} is not a valid parameter name")
        if key in args:
            raise UsageError(f"argument {key!r} is given twice")
        args[key] = (
            FileArg(Path(raw[1:]).expanduser(), item) if raw.startswith("@") and len(raw) > 1 else parse_value(raw)
        )
    return args


def file_args(args: dict[str, Any]) -> dict[str, FileArg]:
    """The ``key=@path`` arguments, each checked to name an existing file (UsageError otherwise)."""
    files = {k: v for k, v in args.items() if isinstance(v, FileArg)}
    for value in files.values():
        value.checked()
    return files


def parse_duration(text: str | None, option: str = "--delay") -> float | None:
    """``90`` / ``90s`` / ``1.5m`` / ``2h`` / ``1d`` / ``250ms`` -> seconds."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{option} {text!r} is not a duration (use seconds, or e.g. 90s, 5m, 2h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_states(values: list[str] | None) -> list[JobState]:
    """``--state failed --state queued`` or ``--state failed,queued``; UsageError names the choices."""
    states: list[JobState] = []
    for value in values or []:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                states.append(JobState(name))
            except ValueError:
                choices = ", ".join(s.value for s in JobState)
                raise UsageError(f"unknown state {part.strip()!r} (choose from {choices})") from None
    return states
