"""Dedupe by URL on the real worker, broker and simulator: a posting collected again (on later
days, by another task, after a restart) reaches job_data once within the window; the table
stays bounded; /status, /metrics and the mirror count what happened.

Every worker runs on the broker the session shares, in topics of its own."""

from __future__ import annotations

import re
import sqlite3
from collections import Counter, defaultdict
from typing import Any

import pytest

from jobstream.dedupe.sightings import decode_candidates
from tests.conftest import read_topic
from tests.harness import TASK_ID, Worker, http, wait_until
from tests.integration.truth import (
    check_first_sightings,
    expected,
    settled,
    sightings,
)

pytestmark = pytest.mark.slow

OTHER = "6a1e9d2c-5b7f-4c3a-9e8d-2f4b6c8a0e13"


def metric(worker: Any, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    text = http("GET", f"{worker.url}/metrics")[1]
    total = 0.0
    for found in re.finditer(rf"^{name}(\{{[^}}]*\}})? (\S+)$", text, re.M):
        given = dict(re.findall(r'(\w+)="([^"]*)"', found.group(1) or ""))
        if all(given.get(k) == v for k, v in labels.items()):
            total += float(found.group(2))
    return total


def entries(worker: Any) -> int:
    """Job ids the worker's published_jobs table holds for its partitions."""
    return int(metric(worker, "jobstream_dedupe_entries"))


def done(worker: Any, total: int, task_id: str = TASK_ID) -> dict[str, Any]:
    return worker.wait_status(
        lambda s: s["current_offset"] == total and s["status"] == "idle" and settled(s),
        timeout=120,
        task_id=task_id,
    )


async def test_dedupe_posting_on_several_days_and_two_tasks_reaches_job_data_once(
    session_broker, simulator_factory, worker_factory
):
    """Repeats within a task, across tasks and days, rows sharing a URL and rows without one:
    job_data holds each posting once, and the counters add up on /status, /metrics and the
    mirror."""
    sim = simulator_factory(
        "--total", "1500", "--repeat-ratio", "0.3", "--shared-postings", "--hostile-ratio", "0.02",
        "--duplicate-url-ratio", "0.05", "--missing-url-ratio", "0.05",
        "--task-id", TASK_ID, "--task-id", OTHER,
    )  # fmt: skip
    broker = session_broker
    worker = worker_factory(
        name="dedupe-days",
        api=sim.api(task_id=[TASK_ID, OTHER], batch_size=100),
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    worker.wait_ready()
    for task_id in (TASK_ID, OTHER):
        done(worker, 1500, task_id)
    # The next day's collection: both tasks grow, with repeats of either task's postings.
    sim.grow(700)
    statuses = {task_id: done(worker, 2200, task_id) for task_id in (TASK_ID, OTHER)}

    rounds = [
        {t: sim.truth(t, 0, 1500) for t in (TASK_ID, OTHER)},
        {t: sim.truth(t, 1500, 700) for t in (TASK_ID, OTHER)},
    ]
    want = sightings(rounds)
    jobs = await read_topic(broker.bootstrap, worker.topic("job_data"), expect=len(want.first))
    check_first_sightings(jobs, want)

    # What the data held: repeats across tasks and days, and of postings published earlier.
    repeats = [
        (task_id, truth)
        for tasks in rounds
        for task_id, truths in tasks.items()
        for truth in truths
        if truth["repeat_of"] is not None
    ]
    across = [t for task_id, t in repeats if t["repeat_of"]["task_id"] != task_id]
    days: dict[str, set[str]] = defaultdict(set)
    for task_id, key in want.truths:
        truth = want.truths[(task_id, key)]
        days[truth["posting"]].add(truth["collect_date"])
    assert len(across) > 50 and sum(want.duplicates.values()) > 300
    assert max(len(d) for d in days.values()) >= 3  # an eligible posting seen on three days
    for task_id, status in statuses.items():
        rows = status["rows"]
        assert rows["published"] == want.published[task_id], task_id
        assert rows["duplicates"] == want.duplicates[task_id], task_id
    assert metric(worker, "jobstream_rows_total", outcome="duplicate") == sum(
        want.duplicates.values()
    )
    # job_data carries the page agent's bytes, key and JSON, as without dedupe: the first
    # candidate of each id (a partition's candidates are read in order).
    sent: dict[bytes, bytes] = {}
    for message in await read_topic(broker.bootstrap, worker.topic("job_candidates"), raw=True):
        for job in decode_candidates(message.value).jobs:
            sent.setdefault(job.id.encode(), bytes(job.job))
    for message in await read_topic(broker.bootstrap, worker.topic("job_data"), raw=True):
        assert message.value == sent[message.key]
    # The counters add up, per task, on /status, /metrics and in the mirror.
    db = sqlite3.connect(worker.config_path.parent / "data" / "crawl_progress.db")
    for task_id, status in statuses.items():
        rows = status["rows"]
        kept = rows["published"] + rows["duplicates"]
        assert kept + rows["filtered"] + rows["rejected"] == 2200, task_id
        assert rows["applied"] == 2200 and status["kept_ratio"] == round(kept / 2200, 4)
        assert metric(worker, "jobstream_rows_total", task_id=task_id, outcome="kept") == kept
        for outcome, name in (("published", "published"), ("duplicate", "duplicates")):
            assert (
                metric(worker, "jobstream_rows_total", task_id=task_id, outcome=outcome)
                == rows[name]
            ), (task_id, outcome)
        mirrored = db.execute(
            "SELECT published, duplicates FROM crawl_progress WHERE task_id = ?", (task_id,)
        ).fetchone()
        assert mirrored == (rows["published"], rows["duplicates"]), task_id
    db.close()
    print(
        f"2 tasks x 2200 rows: {len(want.first)} postings published, "
        f"{sum(want.duplicates.values())} duplicates ({len(across)} repeats across tasks)"
    )


async def test_dedupe_restart_recognises_what_was_published_before(
    session_broker, simulator_factory, worker_factory
):
    broker = session_broker
    sim = simulator_factory("--total", "1500", "--repeat-ratio", "0.3")
    worker = worker_factory(
        name="dedupe-restart",
        api=sim.api(batch_size=100),
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    worker.wait_ready()
    before = done(worker, 1500)
    assert worker.stop() == 0

    sim.grow(800)  # repeats of the last 500 postings among them
    worker.start()
    worker.wait_ready()
    after = done(worker, 2300)

    want = sightings([{TASK_ID: sim.truth(TASK_ID, 0, 1500)}, {TASK_ID: sim.truth(TASK_ID, 1500)}])
    jobs = await read_topic(broker.bootstrap, worker.topic("job_data"), expect=len(want.first))
    check_first_sightings(jobs, want)
    # Rows after the restart that repeat a posting published before it: none in job_data.
    published_before = {want.truths[k]["posting"] for k in want.first.values() if k[1] < 1500}
    later = [
        t
        for (task_id, offset), t in want.truths.items()
        if offset >= 1500 and t["posting"] in published_before
    ]
    assert len(later) > 50
    assert not {job["source_offset"] for _, job in jobs} & {t["index"] for t in later}
    assert after["rows"]["duplicates"] - before["rows"]["duplicates"] >= len(later)
    assert (after["rows"]["published"], after["rows"]["duplicates"]) == (
        want.published[TASK_ID],
        want.duplicates[TASK_ID],
    )


async def test_dedupe_workers_new_owner_recovers_the_table_before_deduping(
    session_broker, simulator_factory, tmp_path_factory
):
    broker = session_broker
    sim = simulator_factory("--total", "1500", "--repeat-ratio", "0.3")
    settings = {
        "api": sim.api(batch_size=100),
        "kafka": {"bootstrap_servers": broker.bootstrap},
        "crawler": {"interval": 1},
    }
    a, b = (
        Worker.configure(tmp_path_factory.mktemp(f"w{n}"), settings, name="dedupe-owner")
        for n in "ab"
    )
    rounds = [{TASK_ID: (0, 1500)}]
    try:
        a.start()
        a.wait_ready()
        first = done(a, 1500)
        b.start()
        b.wait_ready(90)
        # Each worker holds the entries of its partitions: the joiner read its share back.
        wait_until(
            lambda: entries(b) > 0 and entries(a) + entries(b) == first["rows"]["published"],
            within=60,
            what="the table split between the workers",
        )
        sim.grow(800)
        rounds.append({TASK_ID: (1500, 800)})
        second = done(a, 2300)  # answered by the task's owner, either worker
        assert entries(a) + entries(b) == second["rows"]["published"]
        assert a.stop() == 0
        # The survivor owns every partition, and read the rest back before going on.
        wait_until(lambda: entries(b) == second["rows"]["published"], within=60)
        sim.grow(500)
        rounds.append({TASK_ID: (2300, 500)})
        third = done(b, 2800)
    finally:
        a.stop(wait=False)
        b.stop(wait=False)

    want = sightings([{t: sim.truth(t, *span) for t, span in r.items()} for r in rounds])
    jobs = await read_topic(broker.bootstrap, a.topic("job_data"), expect=len(want.first))
    check_first_sightings(jobs, want)
    assert (third["rows"]["published"], third["rows"]["duplicates"]) == (
        want.published[TASK_ID],
        want.duplicates[TASK_ID],
    )


async def test_dedupe_long_run_short_window_keeps_the_table_bounded(
    session_broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "0", "--repeat-ratio", "0.2")
    worker = worker_factory(
        name="dedupe-window",
        api=sim.api(batch_size=100),
        kafka={"bootstrap_servers": session_broker.bootstrap},
        crawler={"interval": 1},
        dedupe={"window": 1},
    )
    worker.start()
    worker.wait_ready()
    # Twelve rounds, each a crawl tick (1 s) apart: twelve windows.
    step, steps = 300, 12
    largest = 0
    for n in range(1, steps + 1):
        sim.grow(step)
        status = done(worker, n * step)
        largest = max(largest, entries(worker))
    rows = status["rows"]
    # Each round's jobs leave the table a second (and a prune interval) after they arrived; a
    # round waits for a crawl tick (1 s): the table never held more than a few rounds' worth,
    # while the run published many times that.
    kept_per_round = (rows["published"] + rows["duplicates"]) / steps
    assert 0 < largest <= 6 * kept_per_round, (largest, kept_per_round)
    assert rows["published"] > 3 * largest
    assert rows["duplicates"] > 0
    # Once the window has passed, nothing is held.
    wait_until(lambda: entries(worker) == 0, within=15)
    pruned = metric(worker, "jobstream_dedupe_pruned_total")
    assert 0.9 * rows["published"] <= pruned <= rows["published"]
    print(f"{steps} rounds, {rows['published']} published; at most {largest} entries held")


async def test_dedupe_off_publishes_every_kept_row(
    session_broker, simulator_factory, worker_factory
):
    broker = session_broker
    sim = simulator_factory("--total", "1500", "--repeat-ratio", "0.3")
    worker = worker_factory(
        name="dedupe-off",
        api=sim.api(batch_size=100),
        kafka={"bootstrap_servers": broker.bootstrap},
        dedupe={"enabled": False},
    )
    worker.start()
    worker.wait_ready()
    status = done(worker, 1500)

    want = expected(sim.truth())
    jobs = await read_topic(broker.bootstrap, worker.topic("job_data"), expect=len(want.published))
    assert sorted(job["source_offset"] for _, job in jobs) == sorted(want.published)
    ids = Counter(key for key, _ in jobs)
    assert any(n > 1 for n in ids.values())  # the repeats, published again
    rows = status["rows"]
    assert (rows["published"], rows["duplicates"]) == (len(want.published), 0)
    assert await read_topic(broker.bootstrap, worker.topic("job_candidates")) == []
