"""Uploads: files stored before a job exists, named in its arguments by an ``upload:<id>`` ref.

An upload belongs to the tenant that stored it: a submit naming another tenant's upload is
refused, and a task can only read the uploads of its own job's tenant. The record (size,
SHA-256, file name, content type, tenant, time) is a small JSON object next to the bytes, in
the same store, so every node sees the same uploads without a shared disk.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, BinaryIO

from conveyor.errors import ConveyorError

REF_PREFIX = "upload:"
_REF = re.compile(r"^upload:([0-9a-f]{32})$")
MAX_FILENAME = 255


class UploadError(ConveyorError):
    """An upload ref that is malformed, unknown, or another tenant's."""


class UploadTooLarge(ConveyorError):
    """The uploaded stream went past the configured size limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the upload is larger than the limit of {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Upload:
    """What the store knows of one uploaded file."""

    id: str
    tenant: str
    size: int
    sha256: str
    filename: str
    content_type: str
    created_at: float

    @property
    def ref(self) -> str:
        """What a job's arguments carry to name this file: ``upload:<id>``."""
        return f"{REF_PREFIX}{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ref": self.ref}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Upload:
        fields = ("id", "tenant", "size", "sha256", "filename", "content_type", "created_at")
        return cls(**{k: data[k] for k in fields})


def upload_id_of(ref: str) -> str:
    """The id inside an ``upload:<id>`` ref; UploadError if ``ref`` is not one."""
    match = _REF.match(ref) if isinstance(ref, str) else None
    if match is None:
        raise UploadError(f"{ref!r} is not an upload ref (upload:<32 hex digits>)")
    return match.group(1)


def is_ref(value: object) -> bool:
    return isinstance(value, str) and _REF.match(value) is not None


def refs_in(value: Any, path: str = "args") -> Iterator[tuple[str, str]]:
    """Every upload ref inside a job's arguments, as (field path, upload id)."""
    if isinstance(value, str):
        if is_ref(value):
            yield path, value[len(REF_PREFIX) :]
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from refs_in(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from refs_in(item, f"{path}.{i}")


def clean_filename(name: str | None, fallback: str) -> str:
    """A file name to keep: its last path component, printable, at most 255 characters."""
    if not name:
        return fallback
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in base if c.isprintable() and c != "\x00").strip()
    if base in ("", ".", ".."):
        return fallback
    return base[:MAX_FILENAME]


class Measured:
    """A reader that hashes and counts what passes through it, and stops past ``limit`` bytes."""

    def __init__(self, source: BinaryIO, limit: int | None = None) -> None:
        self.source = source
        self.limit = limit
        self.size = 0
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        chunk = self.source.read(n)
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise UploadTooLarge(self.limit)
        self.digest.update(chunk)
        return chunk

    def readable(self) -> bool:
        return True
