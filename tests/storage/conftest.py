"""Fixtures of the file tests: the API tests' per-engine environment of real processes, and a
real S3-compatible server (SeaweedFS) per test session and xdist worker, a bucket per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import env
from tests.storage.s3server import CREDENTIALS, SeaweedS3

__all__ = ["env"]


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = SeaweedS3.start(tmp_path_factory.mktemp("s3"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3(seaweed: SeaweedS3, monkeypatch: pytest.MonkeyPatch) -> SeaweedS3:
    """The server, with its credentials in the environment (boto3's chain, and every process
    the test starts, read them there)."""
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return seaweed
