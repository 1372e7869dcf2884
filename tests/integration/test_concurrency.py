"""Several tasks crawled together, each with pages requested ahead, all under one API rate
limit: the real worker, broker and simulator. Every worker runs on the broker the session
shares, in topics of its own."""

from __future__ import annotations

import bisect
import json
import re

import pytest

from jobstream.topics import partition_for
from tests.conftest import read_topic
from tests.harness import http
from tests.integration.truth import check_jobs, check_rejects, expected, settled

pytestmark = pytest.mark.slow

TASKS = (
    "7a1d0c8e-0000-4000-8000-000000000001",
    "7a1d0c8e-0000-4000-8000-000000000002",
    "7a1d0c8e-0000-4000-8000-000000000003",
)


async def test_three_tasks_progress_together_under_one_rate_limit(
    session_broker, simulator_factory, worker_factory
):
    """Each task's progress changelog entries land in its partition, too: crawl_progress is
    written outside the agent's iteration (see KeyPartitionedTable in jobstream.topics), and
    each task's entries must land in the partition the task has on job_raw and job_commands."""
    broker = session_broker
    # The simulator enforces 20 calls/s (429 above it); the worker allows itself as much,
    # for the three tasks together.
    sim = simulator_factory(
        "--total", "2000", "--rate-limit", "20", *(a for t in TASKS for a in ("--task-id", t))
    )
    sim.cursor_fault("jump", 1000, task_id=TASKS[1], skip=20)
    worker = worker_factory(
        name="three-tasks",
        api={
            "base_url": sim.url,
            "username": "demo",
            "password": "demo",
            "task_id": list(TASKS),
            "batch_size": 100,
            "min_interval": 0,
            "max_requests_per_second": 20,
            "max_pages_in_flight": 4,
        },
        kafka={"bootstrap_servers": broker.bootstrap},
    )
    worker.start()
    worker.wait_ready()

    # Together: when the first task is done, the others are well on their way.
    first = worker.wait_status(lambda s: s["current_offset"] == 2000, timeout=120, task_id=TASKS[0])
    others = [worker.status(t)["current_offset"] for t in TASKS[1:]]
    assert all(offset >= 1000 for offset in others), (first["current_offset"], others)
    statuses = [
        worker.wait_status(
            lambda s: s["current_offset"] == 2000 and s["status"] == "idle" and settled(s),
            task_id=t,
        )
        for t in TASKS
    ]

    jobs = await read_topic(broker.bootstrap, worker.topic("job_data"))
    rejects = await read_topic(broker.bootstrap, worker.topic("job_rejects"))
    for task_id, status in zip(TASKS, statuses, strict=True):
        want = expected(sim.truth(task_id))
        if task_id == TASKS[1]:  # the 20 offsets the cursor jumped over are never published
            skipped = set(range(1100, 1120))
            want.published -= skipped
            want.filtered -= skipped
            want.rejected -= skipped
            assert status["rows"]["skipped"] == 20
        check_jobs([j for j in jobs if j[1]["task_id"] == task_id], want, task_id)
        check_rejects([r for r in rejects if r[1]["task_id"] == task_id], want)
    # Rate limited answers, if any, were waited out; the metrics show the guess that failed.
    metrics = http("GET", f"{worker.url}/metrics")[1]
    assert re.search(
        rf'jobstream_fetch_ahead_misses_total\{{task_id="{TASKS[1]}"\}} [1-9]', metrics
    )
    assert not re.search(r"crawl run failed", worker.log())
    changelog = worker.topic("jobstream-crawl_progress-changelog")
    records = await read_topic(broker.bootstrap, changelog, raw=True)
    seen = {(json.loads(r.key), r.partition) for r in records}
    assert {task for task, _ in seen} == set(TASKS)
    assert all(partition == partition_for(task, 3) for task, partition in seen), seen


async def test_tasks_of_different_sizes_share_the_limit_fairly_and_complete_independently(
    session_broker, simulator_factory, worker_factory
):
    broker = session_broker
    big, middle, small = TASKS
    # The simulator counts the account's requests as they arrive: in a process of its own,
    # the test process's work does not bunch its timestamps.
    sim = simulator_factory(
        "--total", "100", *(a for t in TASKS for a in ("--task-id", t)), own_process=True
    )
    for task_id, total in ((big, 1500), (middle, 1000), (small, 500)):
        sim.reset(total, task_id=task_id)
    worker = worker_factory(
        name="fair-shares",
        api={
            "base_url": sim.url,
            "username": "demo",
            "password": "demo",
            "task_id": [big, middle],
            "tasks": [{"id": small, "interval": 2}],
            "batch_size": 25,
            "min_interval": 0,
            "max_requests_per_second": 20,
            "max_pages_in_flight": 4,
        },
        kafka={"bootstrap_servers": broker.bootstrap},
    )
    worker.start()
    worker.wait_ready()

    # The small task finishes on its own, while the big one is still far from done; then it
    # grows and is crawled again, beside the others.
    worker.wait_status(
        lambda s: s["current_offset"] == 500 and s["status"] == "idle", timeout=60, task_id=small
    )
    big_then = worker.status(big)["current_offset"]
    assert big_then < 1000, big_then
    sim.grow(500, task_id=small)
    finals = {
        task_id: worker.wait_status(
            lambda s, n=total: s["current_offset"] == n and s["status"] == "idle" and settled(s),
            timeout=120,
            task_id=task_id,
        )
        for task_id, total in ((small, 1000), (middle, 1000), (big, 1500))
    }

    stats = sim.stats()
    arrivals = stats["task_arrivals"]
    # Fair shares while all three were being crawled: up to the small task's 20th request.
    until = arrivals[small][19]
    shares = {t: sum(1 for a in arrivals[t] if a <= until) for t in TASKS}
    mean = sum(shares.values()) / 3
    # The account's limit, counted where the API would count it: the most requests that
    # arrived within any one second (20 allowed; a few more if the machine stalled the
    # worker and then let the waiting requests go together), and the average while busy.
    every = sorted(a for t in TASKS for a in arrivals[t])
    peak = max(bisect.bisect_left(every, a + 1.0) - i for i, a in enumerate(every))
    busy = [a for a in every if a <= arrivals[big][-1]]
    average = (len(busy) - 1) / (busy[-1] - busy[0])
    print(
        f"requests while all three ran: {shares} (mean {mean:.1f}); big task at {big_then} "
        f"when the small one finished; peak {peak} in 1 s, average {average:.1f}/s over "
        f"{busy[-1] - busy[0]:.1f} s; 429s: {stats['statuses'].get('data', {}).get('429', 0)}"
    )
    assert all(n >= 0.75 * mean for n in shares.values()), shares
    assert peak <= 25 and average <= 20.5, (peak, average)
    assert stats["statuses"].get("data", {}).get("429", 0) == 0

    jobs = await read_topic(broker.bootstrap, worker.topic("job_data"))
    rejects = await read_topic(broker.bootstrap, worker.topic("job_rejects"))
    for task_id in TASKS:
        want = expected(sim.truth(task_id))
        check_jobs([j for j in jobs if j[1]["task_id"] == task_id], want, task_id)
        check_rejects([r for r in rejects if r[1]["task_id"] == task_id], want)
        assert finals[task_id]["last_error"] is None


async def test_each_task_crawls_with_its_own_batch_size_and_a_disabled_one_not_at_all(
    session_broker, simulator_factory, worker_factory
):
    broker = session_broker
    sim = simulator_factory("--total", "1000", *(a for t in TASKS for a in ("--task-id", t)))
    worker = worker_factory(
        name="task-settings",
        api={
            "base_url": sim.url,
            "username": "demo",
            "password": "demo",
            "task_id": TASKS[0],
            "tasks": [
                {"id": TASKS[1], "batch_size": 250},
                {"id": TASKS[2], "enabled": False},
            ],
            "batch_size": 100,
            "min_interval": 0,
            "max_requests_per_second": 0,
        },
        kafka={"bootstrap_servers": broker.bootstrap},
    )
    worker.start()
    worker.wait_ready()
    for task_id in TASKS[:2]:
        worker.wait_status(
            lambda s: s["current_offset"] == 1000 and s["status"] == "idle", task_id=task_id
        )

    requests = {task: n["requests"] for task, n in sim.stats()["tasks"].items()}
    assert requests[TASKS[0]] == 10  # 100-row pages: the last one says restTotal 0
    assert requests[TASKS[1]] == 4  # 250-row pages
    assert TASKS[2] not in requests
