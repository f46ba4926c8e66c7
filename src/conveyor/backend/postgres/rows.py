"""Rows of ``conveyor.jobs`` and ``conveyor.job_events``: the mapping is shared with SQLite."""

from typing import Any

from conveyor.backend.rows import row_to_event, row_to_job

Row = dict[str, Any]
"""What psycopg's dict_row factory returns."""

__all__ = ["Row", "row_to_event", "row_to_job"]
