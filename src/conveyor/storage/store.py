"""The result store: artifacts of jobs and uploaded inputs, over one object storage.

Layout (the same in a directory and in a bucket)::

    <job id>/<artifact name>          a job's result files
    _uploads/<id>/data                an uploaded file's bytes
    _uploads/<id>/meta.json           its record (written last: an upload without it is incomplete)
    _uploads/<id>/jobs/<job id>       one empty marker per job that takes it as input

Nothing here assumes the API and the workers share a disk: every node reaches the same
storage, a directory only when they all mount it, a bucket otherwise.
"""

from __future__ import annotations

import io
import mimetypes
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from conveyor import serde
from conveyor.storage.blobs import Blobs, ChunkStream, LocalBlobs, Source
from conveyor.storage.names import safe_name
from conveyor.storage.uploads import Measured, Upload, UploadError, clean_filename, upload_id_of
from conveyor.types import Artifact

UPLOADS = "_uploads"
DEFAULT_UPLOAD_TTL = 24 * 3600.0
"""Seconds an upload no job refers to is kept (then the retention sweep deletes it)."""


@runtime_checkable
class ResultStore(Protocol):
    """Stores artifact bytes; the job record keeps name, size, content type and location."""

    def put(self, job_id: str, name: str, source: Source, content_type: str | None = None) -> Artifact: ...

    def open(self, artifact: Artifact) -> Iterator[bytes]:
        """Stream the artifact's bytes in chunks."""
        ...

    def delete_job(self, job_id: str) -> None: ...


class FileStore:
    """Artifacts and uploads over ``blobs`` (a directory or a bucket)."""

    spec: str | None = None
    """The setting this store was opened from (``open_store``), if any."""

    def __init__(self, blobs: Blobs, upload_ttl: float = DEFAULT_UPLOAD_TTL) -> None:
        self.blobs = blobs
        self.upload_ttl = upload_ttl

    # -- artifacts ----------------------------------------------------------------------------

    def put(self, job_id: str, name: str, source: Source, content_type: str | None = None) -> Artifact:
        key = f"{safe_name(job_id)}/{safe_name(name)}"
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        size = self.blobs.write(key, source, ctype)
        return Artifact(name=name, size=size, content_type=ctype, location=self.blobs.location(key))

    def open(self, artifact: Artifact) -> Iterator[bytes]:
        return self.blobs.read(self.blobs.key_of(artifact.location))

    def download_url(self, artifact: Artifact) -> str | None:
        """A presigned URL to redirect a download to, when the store is set to (S3 ``downloads=redirect``)."""
        return self.blobs.download_url(self.blobs.key_of(artifact.location), artifact.name, artifact.content_type)

    def delete_job(self, job_id: str) -> None:
        """Delete the job's artifacts and its links to uploads (the uploads follow in the sweep)."""
        self.blobs.delete_prefix(safe_name(job_id))

    def job_ids(self) -> list[str]:
        """Ids of the jobs that have files here."""
        return [n for n in self.blobs.children("") if not n.startswith("_")]

    # -- uploads ------------------------------------------------------------------------------

    def create_upload(
        self,
        source: Source,
        *,
        tenant: str,
        filename: str | None = None,
        content_type: str | None = None,
        max_size: int | None = None,
        now: float | None = None,
    ) -> Upload:
        """Store a file streamed from ``source`` (hashed and counted on the way); raises
        UploadTooLarge past ``max_size`` bytes, leaving nothing behind."""
        upload_id = uuid.uuid4().hex
        default_name = source.name if isinstance(source, Path) else None
        name = clean_filename(filename or default_name, upload_id)
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        if isinstance(source, bytes | bytearray):
            stream: BinaryIO = io.BytesIO(source)
        elif isinstance(source, Path):
            stream = source.open("rb")
        else:
            stream = source
        measured = Measured(stream, max_size)
        try:
            self.blobs.write(f"{UPLOADS}/{upload_id}/data", measured, ctype)  # type: ignore[arg-type]
        except BaseException:
            self.blobs.delete_prefix(f"{UPLOADS}/{upload_id}")
            raise
        finally:
            if isinstance(source, Path):
                stream.close()
        upload = Upload(
            id=upload_id,
            tenant=tenant,
            size=measured.size,
            sha256=measured.digest.hexdigest(),
            filename=name,
            content_type=ctype,
            created_at=time.time() if now is None else now,
        )
        self.blobs.write(f"{UPLOADS}/{upload_id}/meta.json", serde.dumps(upload.to_dict()).encode(), "application/json")
        return upload

    def upload(self, ref_or_id: str) -> Upload | None:
        """The upload's record, or None when there is no such (complete) upload."""
        upload_id = upload_id_of(ref_or_id) if ref_or_id.startswith("upload:") else ref_or_id
        try:
            data = b"".join(self.blobs.read(f"{UPLOADS}/{upload_id}/meta.json"))
        except (FileNotFoundError, ValueError):
            return None
        return Upload.from_dict(serde.loads(data))

    def owned_upload(self, ref: str, tenant: str) -> Upload:
        """The upload ``ref`` names if it exists and ``tenant`` owns it, else UploadError (the
        same message either way: a ref reveals nothing of other tenants' uploads)."""
        upload = self.upload(upload_id_of(ref))
        if upload is None or upload.tenant != tenant:
            raise UploadError(f"no upload {ref!r} for this tenant (expired, deleted or never stored)")
        return upload

    def open_upload(self, upload: Upload) -> io.BufferedReader:
        """A streaming binary reader of the upload's bytes."""
        return io.BufferedReader(ChunkStream(self.blobs.read(f"{UPLOADS}/{upload.id}/data")))

    def upload_chunks(self, upload: Upload) -> Iterator[bytes]:
        return self.blobs.read(f"{UPLOADS}/{upload.id}/data")

    def link_upload(self, upload_id: str, job_id: str) -> None:
        """Record that ``job_id`` takes the upload as input: it is kept as long as that job is."""
        self.blobs.write(f"{UPLOADS}/{upload_id}/jobs/{safe_name(job_id)}", b"")

    def upload_links(self, upload_id: str) -> list[str]:
        return self.blobs.children(f"{UPLOADS}/{upload_id}/jobs")

    def unlink_upload(self, upload_id: str, job_id: str) -> None:
        self.blobs.delete_prefix(f"{UPLOADS}/{upload_id}/jobs/{safe_name(job_id)}")

    def delete_upload(self, upload_id: str) -> None:
        self.blobs.delete_prefix(f"{UPLOADS}/{upload_id}")

    def upload_ids(self) -> list[str]:
        return self.blobs.children(UPLOADS)


class LocalResultStore(FileStore):
    """Artifacts as files under ``root/<job id>/<name>``, written atomically (temp + rename)."""

    def __init__(self, root: Path, upload_ttl: float = DEFAULT_UPLOAD_TTL) -> None:
        self.root = Path(root)
        super().__init__(LocalBlobs(self.root), upload_ttl)


class S3ResultStore(FileStore):
    """Artifacts and uploads in an S3-compatible bucket: ``S3ResultStore("s3://bucket/prefix?endpoint=...")``."""

    def __init__(self, url: str, upload_ttl: float = DEFAULT_UPLOAD_TTL) -> None:
        from conveyor.storage.s3 import S3Blobs

        self.url = url
        super().__init__(S3Blobs.from_url(url), upload_ttl)


def open_store(spec: str | Path) -> FileStore:
    """The store a setting names: ``s3://bucket/prefix?...`` or a local directory (path or ``file://``)."""
    text = str(spec)
    store: FileStore
    if text.startswith("s3://"):
        store = S3ResultStore(text)
    elif text.startswith("file://"):
        from urllib.parse import urlsplit
        from urllib.request import url2pathname

        store = LocalResultStore(Path(url2pathname(urlsplit(text).path)))
    else:
        store = LocalResultStore(Path(text))
    store.spec = text
    return store
