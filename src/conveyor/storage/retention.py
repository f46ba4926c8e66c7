"""Files go with their jobs: a sweep that deletes what no existing job owns.

Pruning deletes job records in the engine; this sweep then deletes, from the result store,
the artifacts of every job that no longer exists, and each upload once no job that takes it
exists (an upload no job ever took is deleted ``upload_ttl`` seconds after it was stored).

It is a sweep (compare the store with the engine), not a hook on each deleted row, so it is
crash-safe and idempotent: a node that dies between the prune and the file deletion leaves
the files to the next sweep of any node, and two nodes sweeping at once do no harm. A job's
files are only written while it runs, so a folder whose job is gone can never be wanted again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from conveyor.storage.store import FileStore

Exists = Callable[[str], Awaitable[bool]]


@dataclass
class Swept:
    jobs: int = 0
    uploads: int = 0


async def sweep(store: FileStore, job_exists: Exists, now: float | None = None) -> Swept:
    """Delete the files of jobs that no longer exist, and uploads nothing needs any more."""
    swept = Swept()
    clock = time.time() if now is None else now
    for job_id in await asyncio.to_thread(store.job_ids):
        if not await job_exists(job_id):
            await asyncio.to_thread(store.delete_job, job_id)
            swept.jobs += 1
    for upload_id in await asyncio.to_thread(store.upload_ids):
        links = await asyncio.to_thread(store.upload_links, upload_id)
        alive = False
        for job_id in links:
            if await job_exists(job_id):
                alive = True
            else:
                await asyncio.to_thread(store.unlink_upload, upload_id, job_id)
        if alive:
            continue
        if links:  # every job that took it is gone
            await asyncio.to_thread(store.delete_upload, upload_id)
            swept.uploads += 1
            continue
        upload = await asyncio.to_thread(store.upload, upload_id)
        # never taken: kept for the TTL (an incomplete upload, without a record, too)
        created = upload.created_at if upload is not None else None
        if created is None or clock - created > store.upload_ttl:
            if created is None and not await asyncio.to_thread(_stale_incomplete, store, upload_id):
                continue
            await asyncio.to_thread(store.delete_upload, upload_id)
            swept.uploads += 1
    return swept


def _stale_incomplete(store: FileStore, upload_id: str) -> bool:
    """An upload without its record is still being written, or was abandoned: it is only
    deleted once it has been seen without a record in two sweeps (a marker remembers the first)."""
    marker = f"_uploads/{upload_id}/incomplete"
    if store.blobs.exists(marker):
        return True
    store.blobs.write(marker, b"")
    return False
