"""Counters exact after kill -9, on a broker of the test's own that the kills do not touch (what
a real Kafka keeps, it keeps): a worker killed three times at random points of a 10,000-row
backfill with repeated postings, restarted each time, and then every counter of /status checked
against what the topics hold and the simulator's truth.

A restarted worker reads job_raw, job_candidates and job_commands again from its last committed
offsets (from 0 when none was committed yet): pages already applied are skipped, the dedupe
agent decides again what it had not recorded and reports it again, and the commands agent
counts every kept row once by its source offset.
"""

from __future__ import annotations

import contextlib
import random
from pathlib import Path
from typing import Any

import pytest

from tests.harness import (
    TASK_ID,
    Broker,
    Simulator,
    Worker,
    mirrored_offset,
    read_topic,
    wait_until,
)
from tests.integration.truth import expected, sightings

pytestmark = pytest.mark.slow

ROWS = 10_000
KILLS = 3
COUNTERS = ("published", "duplicates", "filtered", "rejected", "skipped")


async def test_exact_counts_every_counter_equals_the_topics_after_kill9(tmp_path: Path) -> None:
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    broker = Broker.start()
    sim = Simulator.start("--rate-limit", "0", "--total", str(ROWS), "--repeat-ratio", "0.3")
    worker = Worker.configure(
        tmp_path,
        {
            "api": sim.api(batch_size=100),
            "kafka": {"bootstrap_servers": broker.bootstrap},
            "crawler": {"interval": 3600},
        },
    )
    mirror = tmp_path / "data" / "crawl_progress.db"
    killed_at: list[int] = []
    status: dict[str, Any] = {}
    try:
        worker.start()
        for _ in range(KILLS):
            # Each kill while crawling: some way past where the last one struck.
            point = mirrored_offset(mirror) + rng.randrange(300, ROWS // (KILLS + 1))
            wait_until(lambda p=point: mirrored_offset(mirror) >= p, 120, f"offset {point}")
            worker.kill()
            killed_at.append(mirrored_offset(mirror))
            worker.start()
            worker.wait_ready(60)

        def finished() -> dict[str, Any]:  # {} (falsy) until then
            current = worker.status()
            done = current["current_offset"] == ROWS and current["status"] == "idle"
            return current if done else {}

        status = wait_until(finished, 90, "the crawl at its end after the kills")

        def counted() -> dict[str, Any]:
            # The dedupe agent has caught up (or counted too much: asserted below).
            current = worker.status()
            return current if sum(current["rows"][k] for k in COUNTERS) >= ROWS else {}

        try:
            status = wait_until(counted, 30, "every row counted")
        except AssertionError as exc:
            # Short of ROWS for good: say by how much, and where the kills struck.
            status = worker.status()
            raise AssertionError(
                f"seed {seed}, killed at {killed_at}: counters "
                f"{ {k: status['rows'][k] for k in COUNTERS} } sum to "
                f"{sum(status['rows'][k] for k in COUNTERS)} of {ROWS}"
            ) from exc
        truths = sim.truth()
        want = expected(truths)
        seen = sightings([{TASK_ID: truths}])
        jobs = await read_topic(broker.bootstrap, "job_data", expect=len(seen.first))
        rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(want.rejected))
    finally:
        with contextlib.ExitStack() as cleanup:
            cleanup.callback(broker.stop)
            cleanup.callback(sim.stop)
            cleanup.callback(worker.stop)

    rows = status["rows"]
    ids = {job["id"] for _, job in jobs if job["task_id"] == TASK_ID}
    reject_offsets = {r["source_offset"] for _, r in rejects if r["task_id"] == TASK_ID}
    measured = {
        "published": len(ids),
        "duplicates": seen.duplicates[TASK_ID],
        "filtered": len(want.filtered),
        "rejected": len(reject_offsets),
        "skipped": 0,
    }
    print(
        f"seed {seed}: killed at {killed_at} of {ROWS}; job_data {len(jobs)} messages, "
        f"{len(ids)} distinct ids; counters {[rows[k] for k in COUNTERS]} "
        f"(published, duplicates, filtered, rejected, skipped) summing to "
        f"{sum(rows[k] for k in COUNTERS)} for current_offset {status['current_offset']}"
    )
    assert len(ids) == seen.published[TASK_ID]  # job_data itself is right
    assert reject_offsets == want.rejected
    assert {k: rows[k] for k in COUNTERS} == measured
    assert sum(rows[k] for k in COUNTERS) == status["current_offset"] == ROWS
