"""The real worker, broker and simulator on data that looks like the real world: hostile rows,
big pages of long Chinese descriptions, a cursor that lies, a source that is reset, a switch
of API, and runs that fail. Every source row ends in job_data, in the filtered count, in
job_rejects or in the skipped count, and /status says what happened."""

from __future__ import annotations

import re
import time

import pytest

from tests.conftest import read_topic
from tests.harness import TASK_ID, http
from tests.integration.truth import check_jobs, check_rejects, expected, settled

pytestmark = pytest.mark.slow


def creds(sim) -> dict:
    return {"base_url": sim.url, "username": "demo", "password": "demo"}


def run_to_end(worker, total: int, timeout: float = 120.0) -> tuple[dict, float]:
    worker.start()
    worker.wait_ready()
    started = time.monotonic()
    status = worker.wait_status(
        lambda s: s["current_offset"] == total and s["status"] == "idle" and settled(s),
        timeout=timeout,
    )
    return status, time.monotonic() - started


async def check_topics(broker, sim, status: dict) -> tuple[int, int, int]:
    want = expected(sim.truth())
    jobs = await read_topic(broker.bootstrap, "job_data", expect=len(want.published))
    rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(want.rejected))
    check_jobs(jobs, want, TASK_ID)
    check_rejects(rejects, want)
    rows = status["rows"]
    counts = (len(want.published), len(want.filtered), len(want.rejected))
    assert (rows["published"], rows["filtered"], rows["rejected"]) == counts
    assert rows["skipped"] == 0 and status["last_error"] is None
    return counts


async def test_hostile_rows_every_row_published_correctly_or_rejected_with_reason(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "2000", "--hostile-ratio", "0.05")
    worker = worker_factory(
        api={**creds(sim), "batch_size": 100}, kafka={"bootstrap_servers": broker.bootstrap}
    )
    status, seconds = run_to_end(worker, 2000)

    published, filtered, rejected = await check_topics(broker, sim, status)
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
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory(
        "--total", "3000", "--description-chars", "1500", "--hostile-ratio", "0.02"
    )
    worker = worker_factory(
        api={**creds(sim), "batch_size": 1000}, kafka={"bootstrap_servers": broker.bootstrap}
    )
    status, seconds = run_to_end(worker, 3000, timeout=180)

    published, filtered, rejected = await check_topics(broker, sim, status)
    assert published > 1000
    print(
        f"3000 rows in 1000-row pages of 1500-character descriptions: {published} published, "
        f"{filtered} filtered, {rejected} rejected; 100% after {seconds:.1f}s"
    )


async def test_lying_cursor_each_anomaly_recovered_counted_and_shown(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "1500")
    # Requests go 0, 100, 200 (jumps to 330), 330, 430 (120 rows, to 550), 550, 650 (115 rows,
    # cursor 750), 750 (cursor 700: continue at 850), 850, 950 (empty: the run ends) ...
    sim.cursor_fault("jump", 200, skip=30)
    sim.cursor_fault("long_page", 430, extra=20, cursor="rows")
    sim.cursor_fault("long_page", 650, extra=15, cursor="size")
    sim.cursor_fault("backwards", 750, back=50)
    sim.cursor_fault("empty", 950)
    worker = worker_factory(
        api={**creds(sim), "batch_size": 100},
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    status, _ = run_to_end(worker, 1500)

    assert sim.cursor()["fired"] == {
        "jump": 1,
        "long_page": 2,
        "backwards": 1,
        "empty": 1,
    }
    # 30 offsets jumped over by the source: counted as skipped, never published.
    skipped = set(range(300, 330))
    want = expected(sim.truth())
    want.published -= skipped
    want.filtered -= skipped
    want.rejected -= skipped
    jobs = await read_topic(broker.bootstrap, "job_data", expect=len(want.published))
    rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(want.rejected))
    check_jobs(jobs, want, TASK_ID)
    check_rejects(rejects, want)
    rows = status["rows"]
    assert rows["skipped"] == 30
    assert rows["published"] + rows["filtered"] + rows["rejected"] + rows["skipped"] == 1500
    assert status["cursor_anomalies"] == 5 and status["last_anomaly"]
    log = worker.log()
    for note in ("cursor jump", "long page", "read again on the next page", "went back"):
        assert note in log, note
    assert "restTotal is" in log
    metrics = http("GET", f"{worker.url}/metrics")[1]
    assert re.search(r'jobstream_cursor_anomalies_total\{task_id="[^"]+"\} 5\.0', metrics)


async def test_source_reset_crawls_again_from_zero_and_says_so(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "1000")
    worker = worker_factory(
        api={**creds(sim), "batch_size": 100},
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    run_to_end(worker, 1000)
    sim.reset(total=300)

    status = worker.wait_status(
        lambda s: (
            s["source_resets"] == 1
            and s["current_offset"] == 300
            and s["status"] == "idle"
            and settled(s)
        )
    )
    assert status["total"] == 300 and "source reset" in status["last_anomaly"]
    rows = status["rows"]
    assert rows["published"] + rows["filtered"] + rows["rejected"] == 300
    assert "crawling again from offset 0" in worker.log()
    # The reset data reached job_data too (after the first 1000 rows' jobs).
    want = expected(sim.truth())
    jobs = await read_topic(broker.bootstrap, "job_data")
    urls = {job["url"] for _, job in jobs}
    assert {want.truths[o]["expect_text"]["url"] for o in want.published} <= urls


async def test_source_switch_demo_progress_is_not_resumed_on_the_real_api(
    broker, simulator_factory, worker_factory
):
    demo = worker_factory(kafka={"bootstrap_servers": broker.bootstrap})  # api.base_url: demo
    demo.start()
    demo.wait_ready()
    demo.wait_status(lambda s: s["current_offset"] >= 1000)
    assert demo.stop() == 0

    # Another seed: postings of its own (the demo's, crawled again, would be duplicates).
    sim = simulator_factory("--total", "700", "--seed", "1")
    real = worker_factory(
        api={**creds(sim), "batch_size": 100}, kafka={"bootstrap_servers": broker.bootstrap}
    )
    assert real.config_path == demo.config_path  # the same database, as after the README's switch
    demo_lines = len(demo.log())  # both write the same log file
    status, _ = run_to_end(real, 700)

    assert status["source"] == sim.url and status["rows"]["published"] > 0
    log = real.log()[demo_lines:]
    before_run = log.split("crawl run starts")[0]
    assert "belongs to demo" in before_run and "not resumed from" in before_run
    assert f"task_id={TASK_ID} offset=0 crawl run starts" in log


async def test_failing_runs_show_error_until_a_run_succeeds(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "600")
    worker = worker_factory(
        api={**creds(sim), "batch_size": 100, "max_retries": 1},
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    run_to_end(worker, 600)
    sim.grow(400)
    http("POST", f"{sim.url}/_sim/faults", {"fail_rate": 1.0, "fail_rate_status": 503})

    first = worker.wait_status(lambda s: s["status"] == "error")
    later = worker.wait_status(lambda s: s["consecutive_failures"] >= 3)
    assert "503" in first["last_error"] and later["stuck_since"] == first["stuck_since"]
    assert later["failing_offset"] == 600 and later["current_offset"] == 600
    metrics = http("GET", f"{worker.url}/metrics")[1]
    assert re.search(r"jobstream_crawl_consecutive_failures\{[^}]*\} [3-9]", metrics)
    failed_lines = re.findall(r"ERROR.*crawl run failed.*", worker.log())
    assert len(failed_lines) >= 3 and all("503" in line for line in failed_lines)

    http("POST", f"{sim.url}/_sim/faults", {"clear": True})
    healed = worker.wait_status(lambda s: s["current_offset"] == 1000 and s["status"] == "idle")
    assert healed["last_error"] is None and healed["consecutive_failures"] == 0
    assert healed["stuck_since"] is None
