"""Tasks for the file tests (uploads, S3 store, retention): ``tests.apps.files_app:app``.

The engine URL comes from $CONVEYOR_URL and the result store from $CONVEYOR_RESULTS (a
directory or an ``s3://`` URL), so a server and workers of one test share one engine and store.
"""

from __future__ import annotations

import hashlib
import io

from conveyor.app import Conveyor
from conveyor.context import JobContext
from conveyor.types import QueueConfig

app = Conveyor(queues=[QueueConfig("default")])


@app.task(name="digest")
def digest(data: str, ctx: JobContext) -> dict[str, object]:
    """SHA-256 of an upload, read both ways: copied to a local path, and streamed from the store.

    Also saves the first line as an artifact, so the job leaves a file of its own in the store.
    """
    path = ctx.input_path(data)
    local = hashlib.sha256(path.read_bytes()).hexdigest()
    streamed = hashlib.sha256()
    with ctx.open_input(data) as reader:
        while chunk := reader.read(64 * 1024):
            streamed.update(chunk)
    with ctx.open_input(data) as reader:
        first = io.TextIOWrapper(reader, encoding="utf-8", errors="replace").readline()
    ctx.save_artifact("first-line.txt", first.encode())
    return {
        "local": local,
        "streamed": streamed.hexdigest(),
        "name": path.name,
        "in_scratch": ctx.scratch_dir in path.parents,
    }
