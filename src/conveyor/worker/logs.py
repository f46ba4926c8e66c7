"""Structured worker logs: one line per event, ``event key=value ...`` or JSON.

Job lines carry id, task, attempt and duration so a log search answers "what happened to job
X" without the dashboard. ``--log-format json`` emits one JSON object per line for shippers.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from conveyor import serde

LOGGER = logging.getLogger("conveyor.worker")
LEVELS = ("debug", "info", "warning", "error")


def _text_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    text = str(value)
    if not text or any(c in text for c in ' "='):
        return serde.dumps(text)
    return text


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, "fields", {})
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        parts = [stamp, record.levelname.lower(), record.getMessage()]
        parts += [f"{k}={_text_value(v)}" for k, v in fields.items() if v is not None]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {"ts": record.created, "level": record.levelname.lower(), "event": record.getMessage()}
        body.update(getattr(record, "fields", {}))
        if record.exc_info:
            body["exception"] = self.formatException(record.exc_info)
        return serde.dumps(body)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Send worker logs to stderr in the chosen format (called once by the CLI)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("conveyor")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def log(event: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event, e.g. ``log("job.finish", id=..., duration=0.2)``."""
    if LOGGER.isEnabledFor(level):
        LOGGER.log(level, event, extra={"fields": fields})
