"""200 small tasks over three workers of one app, under one account's 20 calls/s (the simulator
answers 429 above it): every task is crawled, no call is refused, and GET /status lists all 200
from any worker (each worker answers for its own tasks and asks each other worker once). The
time /status takes is printed by the benchmark this test runs (benchmarks/bench_status.py), not
asserted."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import bench_status

# A soak test: 200 tasks on 3 workers take half a minute of the machine.
pytestmark = [pytest.mark.slow, pytest.mark.soak]

TASKS = 200
WORKERS = 3
ROWS = 30


def test_many_tasks_200_over_3_workers_all_crawled_and_listed_everywhere(tmp_path: Path) -> None:
    timings, summary = bench_status.run(tmp_path, TASKS, WORKERS, ROWS, calls=20)
    print(bench_status.report(TASKS, timings, summary))
    assert summary["429"] == 0, summary
    # Every task crawled, each by one worker's run (a task moved by a rebalance may start twice),
    # and every worker crawled some: the tasks are spread over the partitions.
    assert sum(summary["tasks_per_worker"]) >= TASKS
    assert all(n > 0 for n in summary["tasks_per_worker"]), summary
    for timing in timings:
        assert timing.tasks_listed == TASKS, timing
