"""Fixtures of the chaos suite: a lab of worker hosts and engines reachable through their links.

Quick mode (the default, inside ``make test``) keeps each scenario to a few seconds of fault;
``CONVEYOR_CHAOS=long`` runs more jobs through longer and repeated faults by hand.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from tests.chaos.engines import LabPostgres, LabRedis
from tests.chaos.lab import Lab, why_no_lab
from tests.engines import unavailable
from tests.postgres.server import private_server_available

LONG = os.environ.get("CONVEYOR_CHAOS", "").lower() == "long"


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """This xdist worker's lab (a skip where the machine forbids namespaces; a failure in CI)."""
    reason = why_no_lab()
    if reason is not None:
        unavailable(reason)
    lab = Lab().open()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture(scope="session")
def lab_pg(lab: Lab) -> Iterator[LabPostgres]:
    reason = private_server_available()
    if reason is not None:
        unavailable(reason)
    server = LabPostgres(lab.engine_ip).init()
    server.start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture(scope="session")
def lab_redis(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabRedis]:
    server = LabRedis(tmp_path_factory.mktemp("lab-redis"), lab.engine_ip)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["postgres", "redis"])
def lab_engine(request: pytest.FixtureRequest, lab: Lab) -> tuple[str, str]:
    """(URL for the test process, URL for worker hosts) of a fresh store on a lab engine.

    The network scenarios run on PostgreSQL and Redis only: SQLite is one file on one host,
    there is no network between a SQLite worker and its engine to cut or slow.
    """
    if request.param == "postgres":
        pg: LabPostgres = request.getfixturevalue("lab_pg")
        if not pg.running:
            pg.start()
        name = pg.create_database()
        return pg.url(name), pg.lab_url(name)
    redis: LabRedis = request.getfixturevalue("lab_redis")
    prefix = f"chaos-{uuid.uuid4().hex[:10]}"
    return f"{redis.url}?prefix={prefix}", redis.lab_url(prefix)


@pytest.fixture
def hosts(lab: Lab) -> Iterator[list]:
    """Hosts made by the test (``lab.host()`` appends here); all removed after the test."""
    made: list = []
    yield made
    for host in made:
        lab.remove_host(host)
