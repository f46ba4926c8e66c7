"""A node at the default log level writes no line per successful job, only a periodic summary.

Per-job lines (``job.start``, a successful ``job.finish``) are DEBUG; a retry or a failure is
still logged (WARNING/ERROR); ``worker.summary`` counts the ended attempts every
``--summary-interval`` seconds and once more, with the node's totals, when it stops.
"""

from __future__ import annotations

import re
import signal

from conveyor.types import JobState
from tests.faults.helpers import Cluster


def test_a_default_node_logs_a_summary_instead_of_per_job_lines(cluster: Cluster) -> None:
    node = cluster.node(log_level="info", extra=("--summary-interval", "0.5"))
    ok = [cluster.app.enqueue("basic.async_sleep", {"seconds": 0}) for _ in range(3)]
    flaky = cluster.app.enqueue("basic.flaky", {"fail_times": 1})  # one retry, then success
    cluster.wait_all([j.id for j in [*ok, flaky]], JobState.SUCCEEDED)
    window = node.wait_for_log(r"info worker\.summary .*succeeded=(\d+) failed=(\d+) retried=(\d+) mean_run_s=")
    assert int(window[2]) == 0
    node.signal(signal.SIGTERM)
    assert node.wait() == 0
    log = node.log()
    final = re.search(r"info worker\.summary .*final=True succeeded=(\d+) failed=(\d+) retried=(\d+) mean_run_s=", log)
    assert final is not None, log
    assert final.groups() == ("4", "0", "1"), final[0]
    assert "job.start" not in log, log
    assert "outcome=succeeded" not in log, log
    assert re.search(rf"warning job\.finish outcome=retry id={flaky.id}\b", log), log  # failures stay visible
