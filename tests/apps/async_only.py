"""An app whose tasks are all ``async def``: its worker nodes need no executor process."""

from __future__ import annotations

import asyncio

from conveyor.app import Conveyor

app = Conveyor()


@app.task(name="async_only.double")
async def double(n: int) -> int:
    await asyncio.sleep(0)
    return n * 2
