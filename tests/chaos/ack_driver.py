"""Enqueue jobs through the SQLite engine and print ``ACK <id>`` after each acknowledged enqueue.

Run under ``strace`` by tests/chaos/test_power_loss.py: ``python -m tests.chaos.ack_driver URL N``.
The ACK line is written (unbuffered) only once ``enqueue`` returned, i.e. at the moment a
caller (the API answering 202) would tell a client the job is stored.
"""

from __future__ import annotations

import asyncio
import os
import sys

from conveyor.backend.protocol import EnqueueRequest
from conveyor.backend.sqlite.backend import SQLiteBackend


async def main(url: str, n: int) -> None:
    backend = SQLiteBackend(url)
    await backend.open()
    for i in range(n):
        result = await backend.enqueue(EnqueueRequest("power.loss", {"i": i}))
        os.write(1, f"ACK {result.job.id}\n".encode())
    await backend.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
