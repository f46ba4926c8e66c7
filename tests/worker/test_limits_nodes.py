"""A concurrency limit holds across real worker nodes: two nodes with free executors never run
two jobs of one printer at once (the task itself counts, across processes, how many run)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.apps.limits_app import QUEUE, make_app
from tests.faults.helpers import Cluster, cluster

__all__ = ["cluster"]  # the fixture


def test_two_nodes_never_run_two_jobs_of_one_printer(cluster: Cluster, tmp_path: Path) -> None:
    state = tmp_path / "printers"
    state.mkdir()
    app = make_app(cluster.url)
    try:
        ids = [
            app.enqueue("limits.exclusive", {"printer": printer, "seconds": 0.3, "state_dir": str(state)}).id
            for printer in (7, 7, 7, 7, 7, 7, 8, 8, 8, 8)
        ]
        for _ in range(2):
            cluster.node(app="tests.apps.limits_app:app", queues=QUEUE, concurrency=3, lease=5.0)
        jobs = cluster.wait_all(ids, timeout=120)
        assert [(j.id, j.state.value, j.error) for j in jobs if j.state.value != "succeeded"] == []
    finally:
        app.close()
    seen = {p: json.loads((state / f"{p}.json").read_text()) for p in (7, 8)}
    assert seen[7]["runs"] >= 6 and seen[8]["runs"] >= 4
    assert seen[7]["max"] == 1 and seen[8]["max"] == 1, seen
    assert all(s["now"] == 0 for s in seen.values())
