"""Where result files (artifacts) go: a local directory by default.

The store is a small interface so an S3-compatible store can replace the local one: it puts
bytes or a file under a job's prefix and opens them again for download.
"""

from __future__ import annotations

import mimetypes
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

from conveyor.types import Artifact

_CHUNK = 64 * 1024


def _safe_name(name: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise ValueError(f"artifact name {name!r} must be a plain file name")
    return name


class ResultStore(Protocol):
    """Stores artifact bytes; the job record keeps name, size, content type and location."""

    def put(self, job_id: str, name: str, source: bytes | Path, content_type: str | None = None) -> Artifact: ...

    def open(self, artifact: Artifact) -> Iterator[bytes]:
        """Stream the artifact's bytes in chunks."""
        ...

    def delete_job(self, job_id: str) -> None: ...


class LocalResultStore:
    """Artifacts as files under ``root/<job id>/<name>``, written atomically (temp + rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, job_id: str, name: str) -> Path:
        return self.root / _safe_name(job_id) / _safe_name(name)

    def put(self, job_id: str, name: str, source: bytes | Path, content_type: str | None = None) -> Artifact:
        target = self._path(job_id, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{name}.{os.getpid()}.tmp")
        if isinstance(source, bytes | bytearray):
            tmp.write_bytes(source)
        else:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
        ctype = content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return Artifact(name=name, size=target.stat().st_size, content_type=ctype, location=target.resolve().as_uri())

    def open(self, artifact: Artifact) -> Iterator[bytes]:
        # a file:// URI percent-encodes spaces, non-ASCII letters, '#', '?', '%' ...: decode it
        path = Path(url2pathname(urlsplit(artifact.location).path))
        with path.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                yield chunk

    def delete_job(self, job_id: str) -> None:
        shutil.rmtree(self.root / _safe_name(job_id), ignore_errors=True)
