"""A network cut between the worker and Kafka mid-crawl (tests/proxy.py: every connection
closed, new ones refused; the broker advertises the proxy's port, so nothing goes around it):
the worker stays up, /ready and /status report the outage and a growing local spool, the crawl
keeps fetching into it, the spool drains once the network is back, and every eligible row
lands in job_data, nothing else, the crawl completing by itself."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Broker, Simulator, Worker, free_port, http, read_topic
from tests.integration.truth import expected
from tests.proxy import Proxy

pytestmark = pytest.mark.slow

ROWS = 12_000
# 2 requests of 100 rows a second: a crawl of about a minute, so the cut falls mid-crawl.
API = {"batch_size": 100, "max_requests_per_second": 2, "max_pages_in_flight": 2}
CUT_AT = 2_000
# Docker kills a container this long after asking it to stop.
DOCKER_STOP_TIMEOUT = 10.0


@dataclass
class Outage:
    """What the test saw of the worker during the cut."""

    ready_503: int = 0
    ready_reason: str = ""
    unreachable_in_status: int = 0
    spool_pages: list[int] = field(default_factory=list)
    peak_pages: int = 0
    peak_rows: int = 0
    peak_bytes: int = 0
    metrics_pages: float = 0.0
    log: str = ""

    def look(self, url: str) -> None:
        code, body = http("GET", f"{url}/ready", timeout=5)
        if code == 503:
            self.ready_503 += 1
            self.ready_reason = body["message"]
        code, body = http("GET", f"{url}/status", timeout=5)
        assert code == 200, body
        status = body["data"]
        if status["kafka_reachable"] is False:
            self.unreachable_in_status += 1
        spool = status["spool"]
        self.spool_pages.append(spool["pages"])
        self.peak_pages = max(self.peak_pages, spool["pages"])
        self.peak_rows = max(self.peak_rows, spool["rows"])
        self.peak_bytes = max(self.peak_bytes, spool["bytes"])
        code, text = http("GET", f"{url}/metrics", timeout=5)
        found = re.search(r"^jobstream_spool_pages (\S+)$", text, re.M) if code == 200 else None
        if found:
            self.metrics_pages = max(self.metrics_pages, float(found.group(1)))


@pytest.fixture
def sim() -> Iterator[Simulator]:
    started = Simulator.start("--rate-limit", "0", "--total", str(ROWS))
    yield started
    started.stop()


async def crawl_through_cut(
    sim: Simulator,
    tmp_path: Path,
    cut_seconds: float,
    restart: bool = False,
    spool: dict[str, Any] | None = None,
) -> Outage:
    """Cut the network once the crawl has applied CUT_AT rows, restore it `cut_seconds` later;
    with `restart`, the worker is also stopped (SIGTERM, within Docker's stop timeout) halfway
    through the cut and started again once the network is back, its spool on disk. (Started
    during the cut, Faust's producer cannot bootstrap and the worker exits with code 1, for its
    supervisor to start it again.)"""
    want = expected(sim.truth())
    proxy_port = free_port()
    broker = Broker.start(advertised_port=proxy_port)
    proxy = Proxy(broker.port, proxy_port).start()
    worker = Worker.configure(
        tmp_path,
        {
            "api": sim.api(**API),
            "kafka": {"bootstrap_servers": f"127.0.0.1:{proxy_port}"},
            "crawler": {"interval": 3600},
            "spool": spool or {},
        },
    )
    rows = sim.total()
    seen = Outage()
    stopped_in = None
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(lambda s: s["current_offset"] >= CUT_AT, timeout=60)
        proxy.cut()
        cut_at = time.monotonic()
        while time.monotonic() - cut_at < cut_seconds:
            if restart and stopped_in is None and time.monotonic() - cut_at > cut_seconds / 2:
                assert worker.process is not None
                stopping = time.monotonic()
                worker.process.send_signal(signal.SIGTERM)
                worker.process.wait(timeout=DOCKER_STOP_TIMEOUT)
                stopped_in = time.monotonic() - stopping
                worker.stop()
                continue
            if stopped_in is None:
                seen.look(worker.url)
                assert worker.process is not None and worker.process.poll() is None, "exited"
            await asyncio.sleep(1.0)
        during = worker.status() if stopped_in is None else {"spool": {}, "current_offset": None}
        proxy.restore()
        restored = time.monotonic()
        if restart:
            worker.start()
            worker.wait_ready()
        drained = worker.wait_status(lambda s: s["spool"]["pages"] == 0, timeout=120)
        drained_after = time.monotonic() - restored
        worker.wait_status(
            lambda s: s["current_offset"] == rows and s["status"] == "idle", timeout=240
        )
        complete_after = time.monotonic() - restored
        worker.wait_ready(30)
        jobs = await read_topic(broker.bootstrap, "job_data", expect=len(want.published), idle=3)
        rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(want.rejected))
        log = worker.log()
        refetched = "forgotten and fetched again" in log
    finally:
        with contextlib.ExitStack() as cleanup:  # all of them, whichever fails
            cleanup.callback(broker.stop)
            cleanup.callback(proxy.stop)
            cleanup.callback(worker.stop)

    offsets = Counter(job["source_offset"] for _, job in jobs)
    duplicated = sum(n - 1 for n in offsets.values())
    missing, unexpected = want.published - set(offsets), set(offsets) - want.published
    print(
        f"cut {cut_seconds:.0f}s at offset >= {CUT_AT}: rows expected {len(want.published)}, "
        f"delivered {len(set(offsets))} ({len(jobs)} messages), duplicated {duplicated}, "
        f"missing {len(missing)}, unexpected {len(unexpected)}; spool peak {seen.peak_pages} "
        f"events / {seen.peak_rows} rows / {seen.peak_bytes} bytes (at restore "
        f"{during['spool'].get('pages')} events, applied offset {during['current_offset']}); "
        f"drained {drained_after:.1f}s after restore (offset then {drained['current_offset']}), "
        f"crawl complete {complete_after:.1f}s after restore; /ready 503 {seen.ready_503}x: "
        f"{seen.ready_reason!r}"
        + (
            f"; restarted during the cut (stopped in {stopped_in:.1f}s), spool after restart "
            f"{'forgotten and refetched (a gap)' if refetched else 'drained'}"
            if restart
            else ""
        )
    )
    assert not missing and not unexpected, (sorted(missing)[:10], sorted(unexpected)[:10])
    assert {r["source_offset"] for _, r in rejects} == want.rejected
    ids: dict[int, set[str]] = {}
    for key, job in jobs:
        assert key == job["id"]
        ids.setdefault(job["source_offset"], set()).add(job["id"])
    assert all(len(v) == 1 for v in ids.values()), "a replayed row with another id"

    # The outage was reported, and the spool grew during it.
    assert seen.ready_503 and "Kafka is unreachable" in seen.ready_reason
    assert "spooled locally" in seen.ready_reason
    assert seen.unreachable_in_status
    assert seen.peak_pages > 0 and seen.metrics_pages > 0
    growing = [n for n in seen.spool_pages if n]
    assert len(set(growing)) > 1 and max(growing) > growing[0], seen.spool_pages
    # One line when spooling starts, one when the drain ends.
    assert len(re.findall(r"fetched pages go to the local spool", log)) >= 1
    assert refetched or re.search(r"spool drained: \d+ events \(\d+ rows\)", log), log[-3000:]
    seen.log = log
    return seen


@pytest.mark.timeout(300)
async def test_spool_cut_30s_mid_crawl_drains_and_loses_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    await crawl_through_cut(sim, tmp_path, cut_seconds=30)


@pytest.mark.timeout(300)
async def test_spool_restart_during_cut_resumes_and_loses_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    await crawl_through_cut(sim, tmp_path, cut_seconds=30, restart=True)


@pytest.mark.timeout(300)
async def test_spool_full_pauses_fetching_and_loses_nothing(tmp_path: Path) -> None:
    """Long descriptions and the smallest spool: it fills during the cut, fetching pauses at
    the limit, and resumes once the spool is drained."""
    limit = 1_048_576
    sim = Simulator.start("--rate-limit", "0", "--total", "8000", "--description-chars", "3000")
    try:
        seen = await crawl_through_cut(sim, tmp_path, cut_seconds=30, spool={"max_bytes": limit})
    finally:
        sim.stop()
    print(f"spool limit {limit} bytes, peak {seen.peak_bytes} bytes")
    assert "the spool is full: fetching pauses until Kafka is back" in seen.log
    assert 0 < seen.peak_bytes <= limit


@pytest.mark.timeout(600)
async def test_spool_cut_3min_worker_stays_up_drains_and_loses_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    await crawl_through_cut(sim, tmp_path, cut_seconds=180)
