"""Private engine servers listening on the lab's engine address (and 127.0.0.1 for the test).

The machine's shared PostgreSQL and Redis listen on 127.0.0.1 only, which a worker host in its
own namespace cannot reach; the chaos suite runs its own (tests/postgres/server.py,
tests/redis/server.py) bound to the lab address as well, so worker traffic crosses the hosts'
links. PostgreSQL trusts the lab's 10.77.0.0/16 (a test cluster, never a real one).
"""

from __future__ import annotations

from pathlib import Path

from tests.postgres.server import BIN, PrivateServer
from tests.redis.server import RedisServer


class LabPostgres(PrivateServer):
    """A private PostgreSQL cluster that also listens on ``address``."""

    def __init__(self, address: str, options: str = "") -> None:
        super().__init__()
        self.address = address
        self.options = options

    def init(self) -> LabPostgres:
        super().init()
        hba = self.data / "pg_hba.conf"
        hba.write_text(hba.read_text() + "\nhost all all 10.77.0.0/16 trust\n")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1,{self.address} -c fsync=off "
            f"-c max_connections=100 -c shared_buffers=32MB {self.options}"
        )
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def lab_url(self, database: str) -> str:
        """The URL a worker host uses: through its link to the lab address."""
        return f"postgresql://postgres@{self.address}:{self.port}/{database}"


class LabRedis(RedisServer):
    """A private redis-server (no persistence) that also listens on ``address``."""

    def __init__(self, directory: Path, address: str, extra: tuple[str, ...] = ()) -> None:
        super().__init__(directory, "none")
        self.address = address
        self.extra = extra

    def _args(self) -> list[str]:
        args = super()._args()
        args[args.index("--bind") + 1] = f"127.0.0.1 {self.address}"
        return args + list(self.extra)

    def lab_url(self, prefix: str) -> str:
        return f"redis://{self.address}:{self.port}/0?prefix={prefix}"
