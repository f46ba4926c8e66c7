"""``conveyor submit --from-file jobs.jsonl``: one job per line, stored together or not at all.

Each non-blank line is a JSON object shaped like one item of ``POST /v1/jobs:batch``
(``{"task": "report", "args": {...}, "step": "pdf", "depends_on": ["data"], ...}``; lines
starting with ``#`` are comments). Every bad line is reported with its line number before
anything is sent, and the server's per-item errors (``items[3].args.x``) are mapped back to
line numbers, so the user fixes the file in one go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pydantic

from conveyor.api.schemas import BatchItemRequest
from conveyor.batch import BatchItem, ItemError
from conveyor.cli.errors import UsageError
from conveyor.task import CallOptions

_ITEM_FIELD = re.compile(r"^items\[(\d+)\]\.?(.*)$")


class FileInvalid(UsageError):
    """Bad lines in a jobs file; the message has one line per problem, each with its line number."""


@dataclass(frozen=True)
class JobsFile:
    path: Path
    items: list[BatchItemRequest]
    lines: list[int]
    """The file line of each item (1-based), for error messages."""

    def raw(self) -> list[dict[str, Any]]:
        """The items as the HTTP batch endpoint takes them."""
        return [item.model_dump(mode="json", exclude_unset=True) for item in self.items]

    def batch_items(self, tenant: str | None = None) -> list[BatchItem]:
        """The items for ``conveyor.batch.plan_batch`` (a local submit)."""
        out = []
        for item in self.items:
            options = CallOptions(
                queue=item.queue,
                priority=item.priority,
                delay=item.delay,
                run_at=item.run_at.timestamp() if item.run_at is not None else None,
                idempotency_key=item.idempotency_key,
                tenant=tenant,
                depends_on=tuple(item.depends_on),
                step=item.step,
                workflow_id=item.workflow_id,
                on_dependency_failure=item.on_dependency_failure,
                quorum=item.quorum,
            )
            out.append(BatchItem(item.task, item.args, options))
        return out

    def line_errors(self, errors: list[ItemError]) -> FileInvalid:
        """Per-item errors (local planning) as per-line errors."""
        return _invalid(self.path, [(self._line(e.index), e.field, e.message) for e in errors])

    def service_errors(self, fields: list[dict[str, str]]) -> FileInvalid | None:
        """The 422 field list of the batch endpoint (``items[i].field``) as per-line errors."""
        found: list[tuple[int, str, str]] = []
        for entry in fields:
            match = _ITEM_FIELD.match(str(entry.get("field", "")))
            if match is None:
                continue
            found.append((self._line(int(match.group(1))), match.group(2) or "item", str(entry.get("message", ""))))
        return _invalid(self.path, found) if found else None

    def _line(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else 0


def _invalid(path: Path, problems: list[tuple[int, str, str]]) -> FileInvalid:
    body = "\n".join(f"  line {line}: {field}: {message}" for line, field, message in problems)
    return FileInvalid(f"{path}: {len(problems)} problem(s), nothing was submitted:\n{body}")


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "line"


def read_jobs_file(path: Path) -> JobsFile:
    """Parse and validate every line; FileInvalid listing every bad line when any is bad."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    items: list[BatchItemRequest] = []
    lines: list[int] = []
    problems: list[tuple[int, str, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        try:
            data = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            problems.append((number, "line", f"not valid JSON ({exc})"))
            continue
        if not isinstance(data, dict):
            problems.append((number, "line", 'must be a JSON object like {"task": ..., "args": {...}}'))
            continue
        try:
            items.append(BatchItemRequest.model_validate(data))
            lines.append(number)
        except pydantic.ValidationError as exc:
            for err in exc.errors():
                message = "unknown field" if err.get("type") == "extra_forbidden" else str(err.get("msg", "invalid"))
                problems.append((number, _field(tuple(err.get("loc", ()))), message))
    if problems:
        raise _invalid(path, problems)
    if not items:
        raise UsageError(f"{path} holds no jobs (one JSON object per line)")
    return JobsFile(path, items, lines)
