"""The real worker, broker and simulator: job_data checked against the simulator's ground truth."""

from __future__ import annotations

import sqlite3
from collections import Counter
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.conftest import read_topic
from tests.harness import TASK_ID, Simulator
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


def expected_offsets(sim: Simulator, filter_days: int = 7) -> tuple[set[int], set[int], set[int]]:
    """(eligible, too old, unparseable) source offsets by the simulator's own truth."""
    oldest = datetime.now(SHANGHAI).date() - timedelta(days=filter_days)
    eligible, old, junk = set(), set(), set()
    for truth in sim.truth():
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


def assert_jobs_match_truth(jobs: list[tuple[str, dict]], sim: Simulator) -> None:
    eligible, _, _ = expected_offsets(sim)
    rows = sim.rows()
    truths = {t["index"]: t for t in sim.truth()}
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
        assert job["task_id"] == TASK_ID
        assert job["demo"] is False
        assert job["publish_date"] == truth["publish_date"]
        assert job["collect_time"] == truth["collect_date"]
        for out, src in TEXT_FIELDS.items():
            assert job[out] == text(row.get(src)), (offset, out)
        crawl_time = datetime.fromisoformat(job["crawl_time"])
        assert crawl_time.utcoffset() == timedelta(hours=8)


async def test_pipeline_crawl_to_end_publishes_exactly_the_eligible_rows(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "2345")
    worker = worker_factory(
        api={"base_url": sim.url, "username": "demo", "password": "demo", "batch_size": 100},
        kafka={"bootstrap_servers": broker.bootstrap},
    )
    worker.start()
    ready = worker.wait_ready()
    status = worker.wait_status(
        lambda s: s["current_offset"] == 2345 and s["status"] == "idle" and settled(s)
    )
    eligible, old, junk = expected_offsets(sim)

    jobs = await read_topic(broker.bootstrap, "job_data", expect=len(eligible))
    rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(junk))

    assert_jobs_match_truth(jobs, sim)
    assert {r["source_offset"] for _, r in rejects} == junk
    assert all(r["reason"] and r["row"] is not None for _, r in rejects)
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
        (TASK_ID,),
    ).fetchone()
    assert mirrored[:2] == (2345, 2345) and mirrored[2]
    print(
        f"ready in {ready:.1f}s; {len(jobs)} published, {len(old)} filtered, {len(junk)} rejected"
    )


async def test_pipeline_restart_continues_from_stored_offset_without_second_copy(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "1500")
    worker = worker_factory(
        api={"base_url": sim.url, "username": "demo", "password": "demo", "batch_size": 50},
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 2},
    )
    worker.start()
    worker.wait_ready()
    worker.wait_status(lambda s: s["current_offset"] == 1500)
    assert worker.stop() == 0

    sim.grow(700)
    worker.start()
    worker.wait_ready()
    status = worker.wait_status(lambda s: s["current_offset"] == 2200 and s["status"] == "idle")
    eligible, _, _ = expected_offsets(sim)
    jobs = await read_topic(broker.bootstrap, "job_data", expect=len(eligible))

    assert_jobs_match_truth(jobs, sim)
    assert status["total"] == 2200
    # The second run asked the API only for the new rows.
    assert f"task_id={TASK_ID} offset=1500 crawl run starts" in worker.log()


async def test_pipeline_growing_total_is_picked_up_on_next_tick(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "300")
    worker = worker_factory(
        api={"base_url": sim.url, "username": "demo", "password": "demo"},
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    worker.wait_ready()
    worker.wait_status(lambda s: s["current_offset"] == 300)
    sim.grow(250)
    status = worker.wait_status(lambda s: s["current_offset"] == 550, timeout=30)
    eligible, _, _ = expected_offsets(sim)
    jobs = await read_topic(broker.bootstrap, "job_data", expect=len(eligible))

    assert status["total"] == 550
    assert_jobs_match_truth(jobs, sim)


async def test_pipeline_wiped_broker_resumes_from_sqlite_mirror(simulator_factory, worker_factory):
    sim = simulator_factory("--total", "1000")
    worker = worker_factory(api={"base_url": sim.url, "username": "demo", "password": "demo"})
    worker.start()  # embedded broker: stopping the worker wipes every topic and the table
    worker.wait_ready()
    # Settled: the dedupe agent reports its counts a moment after the run ends; a worker
    # stopped before they are in the mirror loses them with the embedded broker.
    first = worker.wait_status(
        lambda s: s["current_offset"] == 1000 and s["status"] == "idle" and settled(s)
    )
    assert worker.stop() == 0

    sim.grow(400)
    worker.start()
    worker.wait_ready()
    status = worker.wait_status(
        lambda s: s["current_offset"] == 1400 and s["status"] == "idle" and settled(s)
    )
    port = yaml.safe_load(worker.config_path.read_text())["kafka"]["embedded_port"]
    eligible, _, _ = expected_offsets(sim)
    new_rows = {o for o in eligible if o >= 1000}
    jobs = await read_topic(f"127.0.0.1:{port}", "job_data", expect=len(new_rows))

    # Only the rows after the mirrored offset were crawled into the new broker.
    assert {job["source_offset"] for _, job in jobs} == new_rows
    assert f"task_id={TASK_ID} offset=1000 crawl run starts" in worker.log()
    # The counters came back with the progress.
    assert status["rows"]["published"] == len(eligible)
    assert status["rows"]["published"] > first["rows"]["published"]
