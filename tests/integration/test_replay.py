"""POST /replay on the real worker, broker and simulator: a task crawled with `filter_days: 3`
is replayed with 7 from job_raw, without one API call, and job_data then holds the 7-day truth,
each posting once; the counts still add up."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from tests.harness import TASK_ID, http, read_topic
from tests.integration.truth import expected, settled, sightings

pytestmark = pytest.mark.slow

ROWS = 2000


def api_calls(sim: Any) -> int:
    return sum(sim.stats()["requests"].values())


async def test_replay_wider_window_publishes_the_7_day_truth_without_api_calls(
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory(
        "--total", str(ROWS), "--repeat-ratio", "0.2", "--hostile-ratio", "0.02"
    )
    worker = worker_factory(
        api=sim.api(batch_size=100),
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 3600, "filter_days": 3},
    )
    worker.start()
    worker.wait_ready()
    crawled = worker.wait_status(lambda s: s["current_offset"] == ROWS and settled(s), 90)
    truths = sim.truth()
    three, seven = sightings([{TASK_ID: truths}], 3), sightings([{TASK_ID: truths}], 7)
    assert crawled["rows"]["published"] == len(three.first)
    calls = api_calls(sim)

    code, body = http(
        "POST", f"{worker.url}/replay?task_id={TASK_ID}&filter_days=7", {}, timeout=30
    )
    assert code == 202, body
    assert body["data"]["state"] == "running" and body["data"]["to_offset"] == ROWS
    code, again = http("POST", f"{worker.url}/replay?task_id={TASK_ID}", {})
    assert code in (202, 409), again  # a second one while the first runs: refused

    def replayed(status: dict[str, Any]) -> bool:
        replay = status["replay"]
        return (
            replay["state"] == "finished"
            and settled(status)
            and replay["published"] + replay["duplicates"] == replay["sent"]
        )

    status = worker.wait_status(replayed, 90)
    replay = status["replay"]
    assert api_calls(sim) == calls, "the replay called the API"
    assert replay["api_calls"] == 0 and replay["error"] is None

    jobs = await read_topic(broker.bootstrap, "job_data", expect=len(seven.first))
    ids = Counter(key for key, _ in jobs)
    assert not [i for i, n in ids.items() if n > 1], "a posting published twice"
    # Each published job is a sighting of a posting eligible under 7 days, and every such
    # posting is published once.
    postings = {seven.truths[k]["posting"] for k in seven.first.values()}
    found = Counter(seven.truths[(TASK_ID, job["source_offset"])]["posting"] for _, job in jobs)
    assert set(found) == postings and max(found.values()) == 1

    # The counts: the replayed rows moved from filtered to published or duplicates.
    want7 = expected(truths, 7)
    rows = status["rows"]
    assert rows["published"] == len(ids)
    assert rows["filtered"] == len(want7.filtered)
    assert rows["published"] + rows["duplicates"] == len(want7.published)
    moved = crawled["rows"]["filtered"] - rows["filtered"]
    assert replay["sent"] == moved > 0
    assert replay["still_filtered"] == len(want7.filtered)
    assert replay["scanned"] == ROWS - rows["skipped"] and replay["untraced"] == 0
    print(
        f"crawl with 3 days: {crawled['rows']['published']} published, "
        f"{crawled['rows']['filtered']} filtered; replay with 7: {replay['scanned']} rows judged "
        f"again from {replay['pages']} job_raw events, {replay['sent']} sent, "
        f"{replay['published']} published, {replay['duplicates']} duplicates, "
        f"{replay['still_filtered']} still filtered, {replay['unchanged']} kept before; "
        f"{replay['started_at']} .. {replay['ended_at']}; API calls during the replay: 0"
    )
