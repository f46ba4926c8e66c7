"""Object storage underneath the result store: keys, streamed bytes, prefixes.

Two implementations share this small surface: ``LocalBlobs`` (a directory, the default) and
``S3Blobs`` (any S3-compatible service). Everything above it (artifacts, uploads, retention)
is written once against ``Blobs``, so nothing relies on the API and the workers sharing a disk.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol
from urllib.parse import urlsplit
from urllib.request import url2pathname

CHUNK = 1024 * 1024
Source = bytes | Path | BinaryIO
"""What may be stored: bytes in memory, a local file, or an open binary stream (read in chunks)."""


class Blobs(Protocol):
    """Keys are ``/``-separated relative paths; every value is written whole or not at all."""

    def write(self, key: str, source: Source, content_type: str | None = None) -> int:
        """Store ``source`` under ``key`` (replacing it); returns its size in bytes."""
        ...

    def read(self, key: str) -> Iterator[bytes]:
        """The bytes under ``key`` in chunks; FileNotFoundError when there is no such key."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete_prefix(self, prefix: str) -> None:
        """Delete every key under ``prefix/`` (a missing prefix is fine)."""
        ...

    def children(self, prefix: str) -> list[str]:
        """The names directly under ``prefix`` ("" for the top level): files and folders alike."""
        ...

    def location(self, key: str) -> str:
        """A URI naming the key, recorded on artifacts (``file://...`` or ``s3://bucket/key``)."""
        ...

    def key_of(self, location: str) -> str:
        """The key a ``location`` names (the inverse of ``location``)."""
        ...

    def download_url(self, key: str, filename: str, content_type: str) -> str | None:
        """A time-limited URL a client may fetch the key from directly, or None to stream it."""
        ...


class ChunkStream(io.RawIOBase):
    """A readable binary stream over an iterator of chunks (so ``csv`` can read an S3 object
    through ``io.TextIOWrapper`` without holding it in memory)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._buffer = chunk
        n = min(len(target), len(self._buffer))
        target[:n] = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return n

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        super().close()


def copy_stream(source: BinaryIO, target: BinaryIO) -> int:
    size = 0
    while chunk := source.read(CHUNK):
        target.write(chunk)
        size += len(chunk)
    return size


class LocalBlobs:
    """Keys as files under ``root``, written atomically (a temp file in the same folder, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return self.root.joinpath(*parts)

    def write(self, key: str, source: Source, content_type: str | None = None) -> int:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # a unique hidden name opened with O_EXCL: permissions follow the umask, as for any file
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("xb") as out:
                if isinstance(source, bytes | bytearray):
                    out.write(source)
                elif isinstance(source, Path):
                    with source.open("rb") as handle:
                        shutil.copyfileobj(handle, out, CHUNK)
                else:
                    copy_stream(source, out)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return target.stat().st_size

    def read(self, key: str) -> Iterator[bytes]:
        handle = self._path(key).open("rb")  # raises FileNotFoundError now, not at the first next()
        return _chunks_of(handle)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_prefix(self, prefix: str) -> None:
        shutil.rmtree(self._path(prefix), ignore_errors=True)

    def children(self, prefix: str) -> list[str]:
        folder = self._path(prefix) if prefix else self.root
        try:
            return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def location(self, key: str) -> str:
        return self._path(key).resolve().as_uri()

    def key_of(self, location: str) -> str:
        # a file:// URI percent-encodes spaces, non-ASCII letters, '#', '?', '%' ...: decode it
        path = Path(url2pathname(urlsplit(location).path))
        return path.relative_to(self.root.resolve()).as_posix()

    def download_url(self, key: str, filename: str, content_type: str) -> str | None:
        return None

    def local_path(self, key: str) -> Path:
        return self._path(key)


def _chunks_of(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK):
            yield chunk
