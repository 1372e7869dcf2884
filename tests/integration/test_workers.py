"""Several workers sharing one broker, with several tasks: one crawler per task at a time (the
simulator tells which worker made each request), workers killed with -9 mid-backfill whose
tasks go on from their stored offsets on the survivors (two of three survive the first kill, one
the second), and /consume on one address returning every message of job_data exactly once,
whichever worker holds the group."""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobstream.topics import partition_for
from tests.harness import Broker, Simulator, Worker, http, read_topic, wait_until
from tests.integration.truth import expected

pytestmark = pytest.mark.slow

PARTITIONS = 3
ROWS = 3000


def task_ids(count: int) -> list[str]:
    """`count` task ids whose partitions cover all three (every worker owns a task)."""
    found: list[str] = []
    n = 0
    while len(found) < count:
        task = f"7a5c0000-0000-4000-8000-{n:012d}"
        n += 1
        covered = {partition_for(t, PARTITIONS) for t in found}
        if len(found) >= PARTITIONS or partition_for(task, PARTITIONS) not in covered:
            found.append(task)
    return found


TASKS = task_ids(4)


def groups_on_every_partition() -> list[str]:
    """Consumer group names whose gateways are the owners of partitions 0, 1 and 2."""
    names: dict[int, str] = {}
    n = 0
    while len(names) < PARTITIONS:
        names.setdefault(partition_for(f"analytics-{n}", PARTITIONS), f"analytics-{n}")
        n += 1
    return [names[p] for p in range(PARTITIONS)]


def status_of(worker: Worker, task_id: str) -> dict[str, Any]:
    try:
        code, body = http("GET", f"{worker.url}/status?task_id={task_id}")
    except OSError as exc:
        exited = worker.process.poll() if worker.process else "stopped"
        raise AssertionError(f"{exc}; worker exit code {exited}:\n{worker.log()[-3000:]}") from exc
    return body["data"] if code == 200 else {}


def served(worker: Worker, route: str) -> int:
    """Requests for `route` the worker answered itself with 200 (from its /metrics)."""
    _, text = http("GET", f"{worker.url}/metrics")
    label = f'jobstream_http_requests_total{{method="GET",route="{route}",status="200"}} '
    return next((int(float(x.split()[-1])) for x in text.splitlines() if x.startswith(label)), 0)


def consume_all(worker: Worker, group: str, expect: int) -> list[dict[str, Any]]:
    """Call /consume on `worker` until `expect` jobs came back, then once more (it must be
    empty)."""
    jobs: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while len(jobs) < expect:
        assert time.monotonic() < deadline, f"{group}: {len(jobs)} of {expect} after 90s"
        code, body = http(
            "GET", f"{worker.url}/consume?group={group}&batch_size=1000&timeout_ms=1000", timeout=30
        )
        if code == 503:  # the group is joining, or moving between workers
            time.sleep(0.2)
            continue
        assert code == 200, body
        jobs.extend(body["data"])
    code, body = http("GET", f"{worker.url}/consume?group={group}&timeout_ms=500", timeout=30)
    assert code == 200 and body["count"] == 0, body
    return jobs


def stream_ids(worker: Worker, expect: int) -> Counter[str]:
    """The ids of the first `expect` events of /consume/stream?from=earliest on `worker`."""
    ids: Counter[str] = Counter()
    with httpx.stream("GET", f"{worker.url}/consume/stream?from=earliest", timeout=30) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                ids[json.loads(line[6:])["id"]] += 1
                if ids.total() == expect:
                    break
    return ids


def overlapping_runs(runs: list[list[Any]]) -> list[str]:
    """Clients whose requests for one task were interleaved with another client's: a run of
    requests by one client, another client's, then the first one's again."""
    clients = [client for client, *_ in runs]
    return [c for c, n in Counter(clients).items() if n > 1]


def takeovers(runs: dict[str, list[list[Any]]], killed_at: float) -> dict[str, float]:
    """Per task crawled before and after `killed_at`: seconds until its first request after."""
    return {
        t: round(next(r for r in rs if r[2] > killed_at)[2] - killed_at, 1)
        for t, rs in runs.items()
        if any(r[2] < killed_at for r in rs) and any(r[2] > killed_at for r in rs)
    }


async def test_workers_one_crawler_per_task_failover_and_consume_exactly_once(
    tmp_path: Path,
) -> None:
    """Three workers, then two, then one: the first crawls every task alone, two more join
    mid-backfill, the first is killed (its tasks go to the two survivors), then one survivor
    (the last one takes every task). Then all three again, and /consume on one address."""
    broker = Broker.start()
    sim_args = ["--rate-limit", "0", "--total", str(ROWS)]
    sim = Simulator.serve(*sim_args, *[a for t in TASKS for a in ("--task-id", t)])
    workers = [
        Worker.configure(
            _directory(tmp_path / f"worker-{i}"),
            {
                # 10 requests a second each: the backfill lasts long enough to be cut twice.
                "api": sim.api(task_id=TASKS, batch_size=50, min_interval=0.1),
                "kafka": {"bootstrap_servers": broker.bootstrap},
                "crawler": {"interval": 3600},
            },
        )
        for i in range(3)
    ]
    try:
        # The first worker starts crawling every task alone; the others join mid-run, and the
        # rebalance hands them tasks while they are being crawled.
        first = workers[0].start()
        first.wait_ready(90)

        def done(asked: Worker) -> int:
            return sum(status_of(asked, t).get("current_offset", 0) for t in TASKS)

        wait_until(lambda: done(first) >= ROWS * len(TASKS) // 10, 60, "a tenth of the backfill")
        for worker in workers[1:]:
            worker.start()
        for worker in workers[1:]:
            worker.wait_ready(90)

        # Kill the worker that is crawling, mid-backfill: its tasks go to the two survivors.
        wait_until(lambda: done(first) >= ROWS * len(TASKS) // 3, 60, "a third of the backfill")
        applied_at_kills = [done(first)]
        victims = [workers[0]]
        # The simulator names each worker's API client; every task's first requests are the
        # first worker's.
        first_client = sim.stats()["task_clients"][TASKS[0]][0][0]
        workers[0].kill()
        kills = [time.monotonic()]

        def crawled_by_survivors() -> bool:
            """Every task's latest requests are a survivor's (the tasks the first worker
            crawled when it was killed: begun after the kill)."""
            runs = sim.stats()["task_clients"]
            return all(runs[t][-1][0] != first_client for t in TASKS)

        wait_until(crawled_by_survivors, 60, "the first worker's tasks taken over")
        # Then kill one of the two while they crawl: the last one takes every task.
        applied_at_kills.append(done(workers[2]))
        victims.append(workers[1])
        workers[1].kill()
        kills.append(time.monotonic())
        last = workers[2]

        def finished() -> bool:
            return all(
                status_of(last, t).get("current_offset") == ROWS
                and status_of(last, t).get("status") == "idle"
                for t in TASKS
            )

        wait_until(finished, 120, "every task crawled to the end by the last worker")
        finished_at = time.monotonic()

        # One crawler per task at a time: each client's requests for a task are one block.
        stats = sim.stats()
        runs = stats["task_clients"]
        for task in TASKS:
            assert not overlapping_runs(runs[task]), (task, runs[task])
        # The killed workers' tasks went on elsewhere, from their stored offsets.
        taken_over = [takeovers(runs, at) for at in kills]
        assert all(taken_over), taken_over

        # job_data: every eligible row of every task; a row fetched again carries its id.
        truths = {t: expected(sim.truth(t)) for t in TASKS}
        want = sum(len(e.published) for e in truths.values())
        records = await read_topic(broker.bootstrap, "job_data", expect=want)
        by_task: dict[str, Counter[int]] = {t: Counter() for t in TASKS}
        ids: dict[tuple[str, int], set[str]] = {}
        for _, job in records:
            by_task[job["task_id"]][job["source_offset"]] += 1
            ids.setdefault((job["task_id"], job["source_offset"]), set()).add(job["id"])
        for task, seen in by_task.items():
            assert set(seen) == truths[task].published, task
        assert all(len(v) == 1 for v in ids.values()), "a replayed row with another id"
        replays = sum(n - 1 for seen in by_task.values() for n in seen.values())

        # Back to three workers, then /consume on one address, for groups whose gateways are
        # each partition's owner: every message of job_data once, whoever serves it.
        for victim in victims:
            victim.start()
        for victim in victims:
            victim.wait_ready(90)
        caller = last
        ours = Counter(job["id"] for _, job in records)
        consumed_by_others = sum(served(w, "/consume") for w in workers if w is not caller)
        for group in [*groups_on_every_partition(), "job_consumer_group"]:
            jobs = consume_all(caller, group, len(records))
            assert Counter(job["id"] for job in jobs) == ours, group
        assert sum(served(w, "/consume") for w in workers if w is not caller) > (
            consumed_by_others
        ), "no call was forwarded to another worker"
        # The default group has read everything: no worker sees a lag any more.
        for worker in workers:
            wait_until(lambda w=worker: status_of(w, TASKS[0]).get("kafka_lag") == 0, 10, "lag 0")
        # The stream reads every partition on any worker.
        for worker in (caller, victims[0]):
            streamed = stream_ids(worker, len(records))
            assert streamed == ours

        # /status is the same on every worker.
        answers = [[status_of(w, t) for t in TASKS] for w in workers]
        for answer in answers[1:]:
            assert [(s["current_offset"], s["rows"]) for s in answer] == [
                (s["current_offset"], s["rows"]) for s in answers[0]
            ]
        print(
            f"killed a worker of 3 at {applied_at_kills[0]} rows applied, one of the 2 left at "
            f"{applied_at_kills[1]}; tasks taken over after {taken_over} s; all "
            f"{ROWS * len(TASKS)} rows done {finished_at - kills[-1]:.1f}s after the last kill; "
            f"job_data {len(records)} messages for {want} eligible rows ({replays} replays, "
            f"same ids); requests per task and client: "
            f"{ {t[-2:]: [(r[0], r[1]) for r in runs[t]] for t in TASKS} }"
        )
    finally:
        with contextlib.ExitStack() as cleanup:  # every one, whichever fails
            cleanup.callback(broker.stop)
            cleanup.callback(sim.stop)
            for worker in workers:
                cleanup.callback(worker.stop, wait=False)


def test_workers_task_ids_cover_every_partition() -> None:
    assert {partition_for(t, PARTITIONS) for t in TASKS} == set(range(PARTITIONS))
    assert len(set(TASKS)) == len(TASKS) == 4


def _directory(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
