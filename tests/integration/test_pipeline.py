"""The real worker, broker and simulator: job_data checked against the simulator's ground truth."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import read_topic
from tests.harness import TASK_ID, Broker, Simulator
from tests.integration.truth import settled

pytestmark = pytest.mark.slow

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEXT_FIELDS = {
    "job_category": "Std_class",
    "job_title": "aca112",
    "company": "AAB004",
    "salary": "acb241",
    "location": "aab302",
    "url": "ACE760",
    "description": "acb22a",
    "experience": "Experience",
    "education": "aac011",
}


def expected_offsets(
    sim: Simulator, task_id: str = TASK_ID, filter_days: int = 7
) -> tuple[set[int], set[int], set[int]]:
    """(eligible, too old, unparseable) source offsets by the simulator's own truth."""
    oldest = datetime.now(SHANGHAI).date() - timedelta(days=filter_days)
    eligible, old, junk = set(), set(), set()
    for truth in sim.truth(task_id):
        if truth["publish_date"] is None or truth["collect_date"] is None:
            junk.add(truth["index"])
        elif (
            min(
                date.fromisoformat(truth["publish_date"]), date.fromisoformat(truth["collect_date"])
            )
            >= oldest
        ):
            eligible.add(truth["index"])
        else:
            old.add(truth["index"])
    return eligible, old, junk


def text(value: object) -> str:
    return "" if value is None else str(value).strip()


def assert_jobs_match_truth(
    jobs: list[tuple[str, dict]], sim: Simulator, task_id: str = TASK_ID
) -> None:
    """The task's jobs: every eligible row once, each field as the API served it."""
    jobs = [(key, job) for key, job in jobs if job["task_id"] == task_id]
    eligible, _, _ = expected_offsets(sim, task_id)
    rows = sim.rows(task_id)
    truths = {t["index"]: t for t in sim.truth(task_id)}
    offsets = Counter(job["source_offset"] for _, job in jobs)
    ids = Counter(job["id"] for _, job in jobs)
    assert not [o for o, n in offsets.items() if n > 1], "a source row published twice"
    assert not [i for i, n in ids.items() if n > 1], "duplicate job id"
    missing, unexpected = eligible - set(offsets), set(offsets) - eligible
    assert not missing and not unexpected, (sorted(missing)[:10], sorted(unexpected)[:10])
    for key, job in jobs:
        offset = job["source_offset"]
        row, truth = rows[offset], truths[offset]
        assert key == job["id"]
        assert job["demo"] is False
        assert job["publish_date"] == truth["publish_date"]
        assert job["collect_time"] == truth["collect_date"]
        for out, src in TEXT_FIELDS.items():
            assert job[out] == text(row.get(src)), (offset, out)
        crawl_time = datetime.fromisoformat(job["crawl_time"])
        assert crawl_time.utcoffset() == timedelta(hours=8)


# Three tasks on one worker, one scenario each (the simulator's postings differ by task, so
# dedupe keeps every task's rows apart).
TO_END = TASK_ID  # 2,345 rows in 100-row pages, crawled to the end
GROWING = "5b1c0f0e-0000-4000-8000-000000000002"  # 300 rows, 250 more before the next tick
RESTARTED = "5b1c0f0e-0000-4000-8000-000000000003"  # 1,500 rows, 700 more while stopped
SIZES = {TO_END: 2345, GROWING: 300, RESTARTED: 1500}


async def test_pipeline_crawl_grow_and_restart_publish_exactly_the_eligible_rows(
    session_broker: Broker, simulator_factory, worker_factory
):
    """On one worker: a task crawled to the end publishes exactly its eligible rows (the rest
    filtered or rejected, counted, and mirrored in SQLite in the seed's schema); a task that
    grows is picked up on the next tick; a task whose worker is stopped and started again
    continues from the stored offset, asking the API only for the new rows, with no second
    copy of anything."""
    sim = simulator_factory("--total", "300", *(a for t in SIZES for a in ("--task-id", t)))
    for task_id, total in SIZES.items():
        sim.reset(total, task_id=task_id)
    worker = worker_factory(
        name="pipeline",
        api=sim.api(
            task_id=list(SIZES), tasks=[{"id": RESTARTED, "batch_size": 50}], batch_size=100
        ),
        kafka={"bootstrap_servers": session_broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    ready = worker.wait_ready()
    statuses = {
        task_id: worker.wait_status(
            lambda s, n=total: s["current_offset"] == n and s["status"] == "idle" and settled(s),
            task_id=task_id,
        )
        for task_id, total in SIZES.items()
    }

    # Growing: picked up on the next tick.
    sim.grow(250, task_id=GROWING)
    grown = worker.wait_status(
        lambda s: s["current_offset"] == 550 and settled(s), timeout=30, task_id=GROWING
    )
    assert grown["total"] == 550

    # Crawled to the end: exactly the eligible rows, the others counted or rejected.
    eligible, old, junk = expected_offsets(sim, TO_END)
    data, rejects_topic = worker.topic("job_data"), worker.topic("job_rejects")
    everything = sum(len(expected_offsets(sim, t)[0]) for t in SIZES)
    jobs = await read_topic(session_broker.bootstrap, data, expect=everything)
    rejects = [
        r
        for r in await read_topic(session_broker.bootstrap, rejects_topic)
        if r[1]["task_id"] == TO_END
    ]
    assert_jobs_match_truth(jobs, sim, TO_END)
    assert_jobs_match_truth(jobs, sim, GROWING)
    assert {r["source_offset"] for _, r in rejects} == junk
    assert all(r["reason"] and r["row"] is not None for _, r in rejects)
    status = statuses[TO_END]
    rows = status["rows"]
    assert (rows["published"], rows["filtered"], rows["rejected"]) == (
        len(eligible),
        len(old),
        len(junk),
    )
    assert status["progress"] == "100.00%" and status["total"] == 2345
    # The mirror holds the same progress, in the seed's schema.
    db = sqlite3.connect(worker.config_path.parent / "data" / "crawl_progress.db")
    mirrored = db.execute(
        "SELECT current_offset, total, last_update FROM crawl_progress WHERE task_id = ?",
        (TO_END,),
    ).fetchone()
    db.close()
    assert mirrored[:2] == (2345, 2345) and mirrored[2]

    # Restarted: continues from the stored offset.
    assert worker.stop() == 0
    sim.grow(700, task_id=RESTARTED)
    worker.start()
    worker.wait_ready()
    status = worker.wait_status(
        lambda s: s["current_offset"] == 2200 and s["status"] == "idle", task_id=RESTARTED
    )
    everything = sum(len(expected_offsets(sim, t)[0]) for t in SIZES)
    jobs = await read_topic(session_broker.bootstrap, data, expect=everything)
    for task_id in SIZES:
        assert_jobs_match_truth(jobs, sim, task_id)
    assert status["total"] == 2200
    # The second run asked the API only for the new rows.
    assert f"task_id={RESTARTED} offset=1500 crawl run starts" in worker.log()
    print(
        f"ready in {ready:.1f}s; {len(eligible)} published, {len(old)} filtered, "
        f"{len(junk)} rejected"
    )
