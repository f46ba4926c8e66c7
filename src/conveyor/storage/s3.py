"""S3-compatible object storage (AWS S3, SeaweedFS, MinIO, Ceph, R2 ...) through boto3.

Chosen by URL: ``s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1&downloads=redirect``.
Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, instance roles), never from the URL, so a URL can be logged and shared.
Uploads stream from a file or stream in parts (multipart above ``multipart_threshold``, so a
5 GB file never sits in memory), downloads stream in chunks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from conveyor.errors import ConfigError
from conveyor.storage.blobs import CHUNK, Source

MULTIPART_THRESHOLD = 16 * 1024 * 1024
PRESIGN_SECONDS = 300
_OPTIONS = {"endpoint", "region", "downloads", "addressing", "presign_seconds"}


@dataclass(frozen=True)
class S3Location:
    """What an ``s3://`` URL says: bucket, key prefix, endpoint, region and download mode."""

    bucket: str
    prefix: str
    endpoint: str | None = None
    region: str | None = None
    redirect_downloads: bool = False
    path_style: bool = True
    presign_seconds: int = PRESIGN_SECONDS

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ConfigError(f"an S3 result store URL looks like s3://bucket/prefix?endpoint=..., got {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - _OPTIONS
        if unknown:
            raise ConfigError(
                f"unknown S3 store option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(_OPTIONS))}"
            )
        downloads = query.get("downloads", "stream")
        if downloads not in ("stream", "redirect"):
            raise ConfigError(f"S3 store downloads= must be 'stream' or 'redirect', got {downloads!r}")
        addressing = query.get("addressing", "path")
        if addressing not in ("path", "virtual"):
            raise ConfigError(f"S3 store addressing= must be 'path' or 'virtual', got {addressing!r}")
        try:
            seconds = int(query.get("presign_seconds", PRESIGN_SECONDS))
        except ValueError:
            raise ConfigError("S3 store presign_seconds= must be a whole number of seconds") from None
        return cls(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=query.get("endpoint") or None,
            region=query.get("region") or None,
            redirect_downloads=downloads == "redirect",
            path_style=addressing == "path",
            presign_seconds=seconds,
        )


class S3Blobs:
    """Keys under ``prefix/`` in one bucket. The boto3 client is made lazily and per process
    (a client must not cross a fork into an executor child)."""

    def __init__(self, where: S3Location) -> None:
        self.where = where
        self._client: Any = None
        self._pid = 0
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> S3Blobs:
        return cls(S3Location.parse(url))

    @property
    def client(self) -> Any:
        import os

        if self._client is None or self._pid != os.getpid():
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    import boto3
                    from botocore.config import Config

                    style = "path" if self.where.path_style else "virtual"
                    config = Config(s3={"addressing_style": style}, retries={"max_attempts": 5, "mode": "standard"})
                    self._client = boto3.session.Session().client(
                        "s3", endpoint_url=self.where.endpoint, region_name=self.where.region, config=config
                    )
                    self._pid = os.getpid()
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.where.prefix}/{key}" if self.where.prefix else key

    def write(self, key: str, source: Source, content_type: str | None = None) -> int:
        from boto3.s3.transfer import TransferConfig

        extra = {"ContentType": content_type} if content_type else {}
        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD)
        full = self._key(key)
        if isinstance(source, bytes | bytearray):
            self.client.put_object(Bucket=self.where.bucket, Key=full, Body=bytes(source), **extra)
        elif isinstance(source, Path):
            self.client.upload_file(str(source), self.where.bucket, full, ExtraArgs=extra, Config=config)
        else:
            self.client.upload_fileobj(source, self.where.bucket, full, ExtraArgs=extra, Config=config)
        return int(self.client.head_object(Bucket=self.where.bucket, Key=full)["ContentLength"])

    def read(self, key: str) -> Iterator[bytes]:
        try:
            body = self.client.get_object(Bucket=self.where.bucket, Key=self._key(key))["Body"]
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(key) from None
        return _body_chunks(body)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.where.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _listing(self, prefix: str, delimiter: bool) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        kwargs: dict[str, Any] = {"Bucket": self.where.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = "/"
        yield from paginator.paginate(**kwargs)

    def delete_prefix(self, prefix: str) -> None:
        full = self._key(prefix).rstrip("/") + "/"
        for page in self._listing(full, delimiter=False):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.where.bucket, Delete={"Objects": keys, "Quiet": True})

    def children(self, prefix: str) -> list[str]:
        full = (
            (self._key(prefix).rstrip("/") + "/") if prefix else (self.where.prefix + "/" if self.where.prefix else "")
        )
        names: set[str] = set()
        for page in self._listing(full, delimiter=True):
            names.update(p["Prefix"][len(full) :].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(full) :] for o in page.get("Contents", []))
        return sorted(n for n in names if n)

    def location(self, key: str) -> str:
        return f"s3://{self.where.bucket}/{self._key(key)}"

    def key_of(self, location: str) -> str:
        head = f"s3://{self.where.bucket}/" + (f"{self.where.prefix}/" if self.where.prefix else "")
        if not location.startswith(head):
            raise ValueError(f"{location!r} is not in this store ({head})")
        return location[len(head) :]

    def download_url(self, key: str, filename: str, content_type: str) -> str | None:
        if not self.where.redirect_downloads:
            return None
        from conveyor.storage.names import content_disposition

        params = {
            "Bucket": self.where.bucket,
            "Key": self._key(key),
            "ResponseContentDisposition": content_disposition(filename),
            "ResponseContentType": content_type,
        }
        url: str = self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.where.presign_seconds)
        return url


def _body_chunks(body: Any) -> Iterator[bytes]:
    try:
        while chunk := body.read(CHUNK):
            yield chunk
    finally:
        body.close()
