"""Files go with their jobs: after a prune, nothing of a pruned job stays on disk or in the bucket.

On every engine and both stores (a directory, and a real S3 server): a job with an artifact and
an upload input is pruned by a node's maintenance, and its folder, its upload and the upload's
links are gone; a job of a queue with a longer ``QueueConfig.retention`` keeps everything; an
upload no job took is deleted after the upload TTL, a recent one is kept.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.app import Conveyor
from conveyor.backend.protocol import ClaimRequest, CompleteRequest
from conveyor.context import JobContext
from conveyor.storage.store import FileStore
from conveyor.task import CallOptions
from conveyor.types import QueueConfig
from conveyor.worker.config import MaintenanceConfig
from conveyor.worker.maintenance import Maintenance
from tests.api.procs import wait_until
from tests.engines import ENGINES, engine_url
from tests.storage.s3server import SeaweedS3


@pytest.fixture(params=["local", "s3"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, SeaweedS3 | None]]:
    if request.param == "local":
        yield str(tmp_path / "results"), None
    else:
        s3 = request.getfixturevalue("s3")
        yield s3.url(s3.bucket()), s3


@pytest.fixture(params=ENGINES, ids=list(ENGINES))
def app(request: pytest.FixtureRequest, tmp_path: Path, store_spec: tuple[str, SeaweedS3 | None]) -> Iterator[Conveyor]:
    with engine_url(request.param, tmp_path) as url:
        queues = [QueueConfig("default"), QueueConfig("kept", retention=3600.0)]
        conveyor = Conveyor(url, result_store=store_spec[0], queues=queues)

        @conveyor.task(name="convert")
        def convert(data: str, ctx: JobContext) -> int:
            path = ctx.input_path(data)
            ctx.save_artifact("out.txt", path.read_bytes().upper())
            return path.stat().st_size

        yield conveyor
        conveyor.close()


def run_to_success(app: Conveyor, queue: str) -> None:
    [job] = app.run_sync(lambda b: b.claim(ClaimRequest("retention-test", (queue,), 1, 60.0)))
    ctx = JobContext(app, job)
    task = app.get_task(job.task)
    try:
        result = task.fn(**task.bind(job.args), ctx=ctx)
    finally:
        ctx.cleanup()
    assert app.run_sync(lambda b: b.complete(CompleteRequest(job.id, job.lease_token or "", result)))


def stored_names(app: Conveyor, spec: tuple[str, SeaweedS3 | None]) -> str:
    """Every file the store holds, as one text to search for ids."""
    store_url, s3 = spec
    if s3 is not None:
        bucket = store_url.removeprefix("s3://").split("/", 1)[0]
        return "\n".join(s3.keys(bucket))
    return "\n".join(str(p.relative_to(store_url)) for p in Path(store_url).rglob("*"))


def test_pruned_jobs_leave_no_file_behind(app: Conveyor, store_spec: tuple[str, SeaweedS3 | None]) -> None:
    store = app.file_store
    gone_input = store.create_upload(b"to be pruned", tenant="default", filename="a.txt")
    kept_input = store.create_upload(b"kept with its job", tenant="default", filename="b.txt")
    stale = store.create_upload(b"never used", tenant="default", now=time.time() - store.upload_ttl - 60)
    fresh = store.create_upload(b"just uploaded", tenant="default")
    pruned = app.enqueue("convert", {"data": gone_input.ref})
    kept = app.enqueue("convert", {"data": kept_input.ref}, CallOptions(queue="kept"))
    run_to_success(app, "default")
    run_to_success(app, "kept")
    before = stored_names(app, store_spec)
    assert pruned.id in before and gone_input.id in before and stale.id in before

    def prune() -> bool:  # what every node's maintenance loop does each prune interval
        app.run_sync(lambda b: Maintenance(b, MaintenanceConfig(retention=0.0), app).prune())
        return app.get(pruned.id) is None

    wait_until(prune, timeout=30, interval=0.2, what="the finished job to be pruned")
    after = stored_names(app, store_spec)
    for gone in (pruned.id, gone_input.id, stale.id):
        assert gone not in after, f"{gone} is still stored:\n{after}"
    # the job of the queue that keeps its jobs an hour keeps its artifact and its input
    assert app.get(kept.id) is not None
    assert f"{kept.id}/out.txt" in after and f"{kept_input.id}/data" in after
    assert f"{fresh.id}/data" in after  # an upload no job took yet, within its TTL
    assert isinstance(store, FileStore) and store.upload(fresh.ref) is not None
