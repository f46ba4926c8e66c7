"""Where an example task finds its input file: an upload reference, made local for the task.

A job's argument is a reference (``upload:<id>``, from ``POST /v1/uploads`` or
``app.upload(path)``), never a path: the worker may run on another machine than the API, so
the task asks its context to materialise the upload in its scratch directory
(``ctx.input_path``). The pure functions of each example take a ``Path`` and are tested as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from conveyor import DoNotRetry, JobContext
from conveyor.storage.uploads import UploadError

UploadRef = Annotated[
    str,
    Field(pattern=r"^upload:[A-Za-z0-9_-]{1,200}$", description="A file uploaded with POST /v1/uploads (upload:<id>)"),
]


def local_input(ctx: JobContext, ref: str) -> Path:
    """The uploaded file ``ref`` as a local file; DoNotRetry when the upload does not exist."""
    try:
        return ctx.input_path(ref)
    except (UploadError, FileNotFoundError) as exc:
        raise DoNotRetry(f"input {ref!r} is not available: {exc}") from None
