"""The max_runtime timer: a job still running after its queue's ``max_runtime`` is stopped and
moved to the queue's ``overflow_to`` queue (DESIGN §8, docs/guide.md "Queues").

The timer starts when task code starts (an executor or an async slot was obtained), not at the
claim, so waiting for a free slot never counts as running. When it fires the job is stopped
like a cancel (``ctx.cancelled`` turns true, the stop grace lets the task checkpoint), and the
recorder moves it with ``backend.move`` instead of recording a result: the engine gives the
attempt back, so an overrun never brings a job closer to the dead letter.
"""

from __future__ import annotations

import asyncio
import logging

from conveyor.types import QueueConfig
from conveyor.worker.jobrun import JobRun
from conveyor.worker.logs import log
from conveyor.worker.stop import StopReason


def arm(config: QueueConfig, run: JobRun) -> None:
    """Stop ``run`` after ``config.max_runtime`` seconds if its queue has an overflow queue."""
    if config.max_runtime is None or config.overflow_to is None:
        return
    run.overrun_to = config.overflow_to

    def fire() -> None:
        run.timer = None
        if run.stop(StopReason.OVERRUN):
            log(
                "job.overrun",
                logging.INFO,
                id=run.job.id,
                task=run.job.task,
                queue=run.job.queue,
                max_runtime=config.max_runtime,
                to=config.overflow_to,
            )

    run.timer = asyncio.get_running_loop().call_later(config.max_runtime, fire)


def disarm(run: JobRun) -> None:
    if run.timer is not None:
        run.timer.cancel()
        run.timer = None
