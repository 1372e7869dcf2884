"""The real worker, broker and simulator on data that looks like the real world: hostile rows,
big pages of long Chinese descriptions, a cursor that lies, a source that is reset, a switch
of API, and runs that fail. Every source row ends in job_data, in the filtered count, in
job_rejects or in the skipped count, and /status says what happened.

Every worker runs on the broker the session shares, in topics of its own. Scenarios that can
share a worker are its tasks (the simulator's postings differ by task, so dedupe keeps each
task's rows apart): a lying cursor, a source reset and failing runs. Hostile rows and big pages
have a simulator each (its options hold for all its tasks; and a hostile row narrowed down
would move the requests the cursor faults are armed at).
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.harness import TASK_ID, Broker, Simulator, Worker, http, read_topic
from tests.integration.truth import Expected, check_jobs, check_rejects, expected, settled

pytestmark = pytest.mark.slow

CURSOR = "3c9e5a1d-0000-4000-8000-0000000000c1"  # 1,500 rows, a cursor that lies five ways
RESET = "3c9e5a1d-0000-4000-8000-0000000000c2"  # 1,000 rows, then cleared and 300 collected
FAILING = "3c9e5a1d-0000-4000-8000-0000000000c3"  # 600 rows, then 400 more behind failing runs


def finished(worker: Worker, task_id: str, total: int, timeout: float = 120.0) -> dict[str, Any]:
    return worker.wait_status(
        lambda s: s["current_offset"] == total and s["status"] == "idle" and settled(s),
        timeout=timeout,
        task_id=task_id,
    )


def task_lines(log: str, task_id: str) -> str:
    return "\n".join(line for line in log.splitlines() if f"task_id={task_id} " in line)


async def task_topics(
    broker: Broker, worker: Worker, want: dict[str, Expected]
) -> dict[str, tuple[list[Any], list[Any]]]:
    """Each task's (jobs, rejects), read once every expected message is there."""
    jobs = await read_topic(
        broker.bootstrap,
        worker.topic("job_data"),
        expect=sum(len(w.published) for w in want.values()),
    )
    rejects = await read_topic(
        broker.bootstrap,
        worker.topic("job_rejects"),
        expect=sum(len(w.rejected) for w in want.values()),
    )
    return {
        task_id: (
            [j for j in jobs if j[1]["task_id"] == task_id],
            [r for r in rejects if r[1]["task_id"] == task_id],
        )
        for task_id in want
    }


def check_counts(status: dict[str, Any], want: Expected) -> tuple[int, int, int]:
    rows = status["rows"]
    counts = (len(want.published), len(want.filtered), len(want.rejected))
    assert (rows["published"], rows["filtered"], rows["rejected"]) == counts
    assert rows["skipped"] == 0 and status["last_error"] is None
    return counts


async def crawled_alone(
    broker: Broker, sim: Simulator, worker: Worker, total: int, within: float
) -> tuple[tuple[int, int, int], float]:
    """The worker's one task crawled to the end: its topics and counts checked against the
    simulator's truth; returns the counts and the seconds from ready to done."""
    worker.start()
    worker.wait_ready()
    started = time.monotonic()
    status = finished(worker, TASK_ID, total, within)
    seconds = time.monotonic() - started
    want = expected(sim.truth())
    jobs, rejects = (await task_topics(broker, worker, {TASK_ID: want}))[TASK_ID]
    check_jobs(jobs, want, TASK_ID)
    check_rejects(rejects, want)
    return check_counts(status, want), seconds


async def test_hostile_rows_every_row_published_correctly_or_rejected_with_reason(
    session_broker: Broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "2000", "--hostile-ratio", "0.05")
    worker = worker_factory(
        name="hostile",
        api=sim.api(batch_size=100),
        kafka={"bootstrap_servers": session_broker.bootstrap},
    )
    (published, filtered, rejected), seconds = await crawled_alone(
        session_broker, sim, worker, 2000, 120
    )

    hostile = {t["hostile"] for t in sim.truth() if t["hostile"]}
    assert len(hostile) >= 30  # every kind the simulator knows was in the task
    log = worker.log()
    # One summary line a page (more pages where a row had to be narrowed down), never one a row.
    assert not re.search(r"WARNING.*row rejected", log)
    assert len(re.findall(r"rows rejected \(", log)) <= rejected // 3
    print(
        f"2000 rows with {len(hostile)} hostile kinds: {published} published, {filtered} "
        f"filtered, {rejected} rejected; 100% after {seconds:.1f}s"
    )


async def test_big_pages_of_long_chinese_descriptions_reach_job_data(
    session_broker: Broker, simulator_factory, worker_factory
):
    """(Apart from the hostile rows: a page of 1000 rows narrowed down around each of 5 %
    hostile rows would take a minute.)"""
    sim = simulator_factory(
        "--total", "3000", "--description-chars", "1500", "--hostile-ratio", "0.02"
    )
    worker = worker_factory(
        name="big-pages",
        api=sim.api(batch_size=1000),
        kafka={"bootstrap_servers": session_broker.bootstrap},
    )
    (published, filtered, rejected), seconds = await crawled_alone(
        session_broker, sim, worker, 3000, 180
    )
    assert published > 1000
    print(
        f"3000 rows in 1000-row pages of 1500-character descriptions: {published} published, "
        f"{filtered} filtered, {rejected} rejected; 100% after {seconds:.1f}s"
    )


async def test_lying_cursor_source_reset_and_failing_runs_recovered_counted_and_shown(
    session_broker: Broker, simulator_factory, worker_factory
):
    """Three tasks of one worker: a cursor that lies (each anomaly recovered, counted and
    shown); a source that is reset (crawled again from zero, and said so); then, the API
    failing every call, runs that fail (shown as errors until one succeeds)."""
    sim: Simulator = simulator_factory(
        "--total", "1000", *(a for t in (CURSOR, RESET, FAILING) for a in ("--task-id", t))
    )
    sim.reset(1500, task_id=CURSOR)
    sim.reset(600, task_id=FAILING)
    # Requests go 0, 100, 200 (jumps to 330), 330, 430 (120 rows, to 550), 550, 650 (115 rows,
    # cursor 750), 750 (cursor 700: continue at 850), 850, 950 (empty: the run ends) ...
    sim.cursor_fault("jump", 200, task_id=CURSOR, skip=30)
    sim.cursor_fault("long_page", 430, task_id=CURSOR, extra=20, cursor="rows")
    sim.cursor_fault("long_page", 650, task_id=CURSOR, extra=15, cursor="size")
    sim.cursor_fault("backwards", 750, task_id=CURSOR, back=50)
    sim.cursor_fault("empty", 950, task_id=CURSOR)
    worker = worker_factory(
        name="cursor",
        api=sim.api(
            task_id=[CURSOR, RESET, FAILING],
            tasks=[{"id": FAILING, "batch_size": 100}],
            batch_size=100,
            max_retries=1,
        ),
        kafka={"bootstrap_servers": session_broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    worker.wait_ready()
    cursor_status = finished(worker, CURSOR, 1500)
    finished(worker, RESET, 1000)
    finished(worker, FAILING, 600)

    # The lying cursor.
    assert sim.cursor()["fired"] == {
        "jump": 1,
        "long_page": 2,
        "backwards": 1,
        "empty": 1,
    }
    # 30 offsets jumped over by the source: counted as skipped, never published.
    skipped = set(range(300, 330))
    want = expected(sim.truth(CURSOR))
    want.published -= skipped
    want.filtered -= skipped
    want.rejected -= skipped
    found = await task_topics(session_broker, worker, {CURSOR: want})
    jobs, rejects = found[CURSOR]
    check_jobs(jobs, want, CURSOR)
    check_rejects(rejects, want)
    rows = cursor_status["rows"]
    assert rows["skipped"] == 30
    assert rows["published"] + rows["filtered"] + rows["rejected"] + rows["skipped"] == 1500
    assert cursor_status["cursor_anomalies"] == 5 and cursor_status["last_anomaly"]
    log = task_lines(worker.log(), CURSOR)
    for note in ("cursor jump", "long page", "read again on the next page", "went back"):
        assert note in log, note
    assert "restTotal is" in log
    metrics = http("GET", f"{worker.url}/metrics")[1]
    assert re.search(rf'jobstream_cursor_anomalies_total\{{task_id="{CURSOR}"\}} 5\.0', metrics)

    # The source reset: crawled again from zero.
    sim.reset(total=300, task_id=RESET)
    status = worker.wait_status(
        lambda s: (
            s["source_resets"] == 1
            and s["current_offset"] == 300
            and s["status"] == "idle"
            and settled(s)
        ),
        task_id=RESET,
    )
    assert status["total"] == 300 and "source reset" in status["last_anomaly"]
    rows = status["rows"]
    assert rows["published"] + rows["filtered"] + rows["rejected"] == 300
    assert "crawling again from offset 0" in task_lines(worker.log(), RESET)
    # The reset data reached job_data too (after the first 1000 rows' jobs).
    want = expected(sim.truth(RESET))
    jobs = await read_topic(session_broker.bootstrap, worker.topic("job_data"))
    urls = {job["url"] for _, job in jobs if job["task_id"] == RESET}
    assert {want.truths[o]["expect_text"]["url"] for o in want.published} <= urls

    # Failing runs: every call fails (every task's runs fail; this one has new rows). The
    # faults first: a run between the two calls would fetch a page of the new rows.
    sim.faults(fail_rate=1.0, fail_rate_status=503)
    sim.grow(400, task_id=FAILING)
    first = worker.wait_status(lambda s: s["status"] == "error", task_id=FAILING)
    later = worker.wait_status(lambda s: s["consecutive_failures"] >= 3, task_id=FAILING)
    assert "503" in first["last_error"] and later["stuck_since"] == first["stuck_since"]
    assert later["failing_offset"] == 600 and later["current_offset"] == 600
    metrics = http("GET", f"{worker.url}/metrics")[1]
    assert re.search(
        rf'jobstream_crawl_consecutive_failures\{{[^}}]*task_id="{FAILING}"[^}}]*\}} [3-9]',
        metrics,
    )
    failed_lines = re.findall(r"ERROR.*crawl run failed.*", task_lines(worker.log(), FAILING))
    assert len(failed_lines) >= 3 and all("503" in line for line in failed_lines)

    sim.faults(clear=True)
    healed = worker.wait_status(
        lambda s: s["current_offset"] == 1000 and s["status"] == "idle", task_id=FAILING
    )
    assert healed["last_error"] is None and healed["consecutive_failures"] == 0
    assert healed["stuck_since"] is None


async def test_source_switch_demo_progress_is_not_resumed_on_the_real_api(
    session_broker: Broker, simulator_factory, worker_factory
):
    kafka = {"bootstrap_servers": session_broker.bootstrap}
    demo = worker_factory(name="switch", kafka=kafka)  # api.base_url: demo
    demo.start()
    demo.wait_ready()
    demo.wait_status(lambda s: s["current_offset"] >= 1000)
    assert demo.stop() == 0

    # Another seed: postings of its own (the demo's, crawled again, would be duplicates).
    sim = simulator_factory("--total", "700", "--seed", "1")
    real = worker_factory(name="switch", api=sim.api(batch_size=100), kafka=kafka)
    assert real.config_path == demo.config_path  # the same database, as after the README's switch
    demo_lines = len(demo.log())  # both write the same log file
    real.start()
    real.wait_ready()
    status = finished(real, TASK_ID, 700)

    assert status["source"] == sim.url and status["rows"]["published"] > 0
    log = real.log()[demo_lines:]
    before_run = log.split("crawl run starts")[0]
    assert "belongs to demo" in before_run and "not resumed from" in before_run
    assert f"task_id={TASK_ID} offset=0 crawl run starts" in log
