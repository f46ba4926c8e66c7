"""Upload refs in submitted arguments: checked before the job is stored, linked after.

A submit naming an upload that does not exist, or that another tenant stored, is refused
(``UploadError`` naming the field). Once the job is stored, each upload it names is linked to
it, so retention keeps the file exactly as long as the job (see ``storage.retention``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from conveyor.storage.store import FileStore, ResultStore
from conveyor.storage.uploads import UploadError, refs_in


class UploadRefError(UploadError):
    """A ref in the arguments names no upload of the submitting tenant."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.detail = message


def _check(store: ResultStore, args: dict[str, Any], tenant: str) -> list[str]:
    found = list(refs_in(args))
    if not found:
        return []
    if not isinstance(store, FileStore):
        raise UploadRefError(found[0][0], "this app's result store does not keep uploads")
    for field, upload_id in found:
        upload = store.upload(upload_id)
        if upload is None or upload.tenant != tenant:
            raise UploadRefError(
                field, f"no upload upload:{upload_id} for this tenant (expired, deleted or never stored)"
            )
    return sorted({upload_id for _, upload_id in found})


async def check_refs(store: ResultStore, args: dict[str, Any], tenant: str) -> list[str]:
    """The upload ids ``args`` names, each checked to exist and belong to ``tenant``."""
    if not any(True for _ in refs_in(args)):
        return []
    return await asyncio.to_thread(_check, store, args, tenant)


async def link_refs(store: ResultStore, upload_ids: list[str], job_id: str) -> None:
    """Link each upload to the job that takes it (idempotent)."""
    if upload_ids and isinstance(store, FileStore):

        def link() -> None:
            for upload_id in upload_ids:
                store.link_upload(upload_id, job_id)

        await asyncio.to_thread(link)
