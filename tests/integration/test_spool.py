"""A network cut between the worker and Kafka mid-crawl (tests/proxy.py: every connection
closed, new ones refused; the broker advertises the proxy's port, so nothing goes around it):
the worker stays up, /ready and /status report the outage and a growing local spool, the crawl
keeps fetching into it, the spool drains once the network is back, and every eligible row
lands in job_data, nothing else, the crawl completing by itself.

The cuts outlast every timeout they meet: a send's room in the producer's buffer
(`kafka.send_timeout`), a spooled page's acknowledgement (`kafka.ack_timeout`), a run's wait for
its pages to be applied (`crawler.apply_timeout`); a stop during the cut ends after
`app.stop_deadline`. The default run scales those down tenfold (SCALED), so an 18 s cut
meets them as a 3-minute cut meets the defaults; the soak run (`pytest -m soak`) makes the
3-minute cut against the defaults (REAL).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.harness import Broker, Simulator, Worker, free_port, http, read_topic
from tests.integration.truth import expected
from tests.proxy import Proxy

pytestmark = pytest.mark.slow

# Docker kills a container this long after asking it to stop.
DOCKER_STOP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Scale:
    """The data, the crawl's pace and the timeouts of a cut test."""

    rows: int
    # The crawl's pace: slow enough that the cut falls mid-crawl and fetching goes on during it.
    api: dict[str, Any]
    cut_at: int  # the cut comes once the crawl has applied this many rows
    settings: dict[str, dict[str, Any]]  # sections of the worker's config
    look_every: float  # seconds between two looks at /ready, /status and /metrics

    @property
    def apply_timeout(self) -> float:
        return float(self.settings.get("crawler", {}).get("apply_timeout", 60.0))


# The defaults, 2 requests of 100 rows a second, and rows enough to fetch throughout the cut.
REAL = Scale(
    rows=40_000,
    api={"batch_size": 100, "max_requests_per_second": 2, "max_pages_in_flight": 2},
    cut_at=2_000,
    settings={},
    look_every=1.0,
)
# A tenth of the defaults' send, ack and apply timeouts (the probe's interval and the stop
# deadline a quarter); 2 requests of 50 rows a second. `rows` is each test's own (`scaled`).
SCALED = Scale(
    rows=3_000,
    api={"batch_size": 50, "max_requests_per_second": 2, "max_pages_in_flight": 2},
    cut_at=300,
    settings={
        "kafka": {"send_timeout": 0.5, "ack_timeout": 3.0, "probe_interval": 0.5},
        "crawler": {"apply_timeout": 6.0},
        # A stop that Kafka holds up ends after 2 s (8 by default: tests/integration/
        # test_web_worker.py's outage test).
        "app": {"stop_deadline": 2.0},
    },
    look_every=0.5,
)


@dataclass
class Outage:
    """What the test saw of the worker during the cut."""

    ready_503: int = 0
    ready_reason: str = ""
    unreachable_in_status: int = 0
    spool_pages: list[int] = field(default_factory=list)
    # Seconds since the cut at each look, beside spool_pages.
    looked_at: list[float] = field(default_factory=list)
    peak_pages: int = 0
    peak_rows: int = 0
    peak_bytes: int = 0
    metrics_pages: float = 0.0
    log: str = ""

    def look(self, url: str, since_cut: float) -> None:
        self.looked_at.append(since_cut)
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


async def crawl_through_cut(
    sim: Simulator,
    tmp_path: Path,
    scale: Scale,
    cut_seconds: float,
    restart: bool = False,
    spool: dict[str, Any] | None = None,
) -> Outage:
    """Cut the network once the crawl has applied `scale.cut_at` rows, restore it
    `cut_seconds` later; with `restart`, the worker is also stopped (SIGTERM, within Docker's
    stop timeout) halfway through the cut and started again once the network is back, its
    spool on disk. (Started during the cut, Faust's producer cannot bootstrap and the worker
    exits with code 1, for its supervisor to start it again.)"""
    want = expected(sim.truth())
    proxy_port = free_port()
    broker = Broker.start(advertised_port=proxy_port)
    proxy = Proxy(broker.port, proxy_port).start()
    worker = Worker.configure(
        tmp_path,
        {
            **scale.settings,
            "api": sim.api(**scale.api),
            "kafka": {
                **scale.settings.get("kafka", {}),
                "bootstrap_servers": f"127.0.0.1:{proxy_port}",
            },
            "crawler": {**scale.settings.get("crawler", {}), "interval": 3600},
            "spool": spool or {},
        },
    )
    rows = sim.total()
    seen = Outage()
    stopped_in = None
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(lambda s: s["current_offset"] >= scale.cut_at, timeout=60)
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
                seen.look(worker.url, time.monotonic() - cut_at)
                assert worker.process is not None and worker.process.poll() is None, "exited"
            await asyncio.sleep(scale.look_every)
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
        jobs = await read_topic(broker.bootstrap, "job_data", expect=len(want.published))
        rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(want.rejected))
        log = worker.log()
        refetched = "forgotten and fetched again" in log
    finally:
        with contextlib.ExitStack() as cleanup:  # all of them, whichever fails
            cleanup.callback(broker.stop)
            cleanup.callback(proxy.stop)
            cleanup.callback(worker.stop, wait=False)

    offsets = Counter(job["source_offset"] for _, job in jobs)
    duplicated = sum(n - 1 for n in offsets.values())
    missing, unexpected = want.published - set(offsets), set(offsets) - want.published
    print(
        f"cut {cut_seconds:.0f}s at offset >= {scale.cut_at}: rows expected {len(want.published)}, "
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
    if not restart and not spool:
        # Fetching went on past the point where the run's wait for its pages to be applied
        # timed out: the spool grew after `crawler.apply_timeout` too.
        before = [
            n
            for n, t in zip(seen.spool_pages, seen.looked_at, strict=True)
            if t <= scale.apply_timeout
        ]
        assert max(growing) > max(before, default=0), (seen.spool_pages, seen.looked_at)
    # One line when spooling starts, one when the drain ends.
    assert len(re.findall(r"fetched pages go to the local spool", log)) >= 1
    assert refetched or re.search(r"spool drained: \d+ events \(\d+ rows\)", log), log[-3000:]
    seen.log = log
    return seen


def scaled(rows: int) -> tuple[Simulator, Scale]:
    """A simulator of `rows` rows, and SCALED for them."""
    sim = Simulator.serve("--rate-limit", "0", "--total", str(rows))
    return sim, dataclasses.replace(SCALED, rows=rows)


async def test_spool_cut_longer_than_every_timeout_keeps_fetching_drains_and_loses_nothing(
    tmp_path: Path,
) -> None:
    """18 s against a tenth of the timeouts, as 3 minutes against the defaults; rows enough to
    fetch throughout the cut (100 a second) and a little more."""
    sim, scale = scaled(2_400)
    try:
        await crawl_through_cut(sim, tmp_path, scale, cut_seconds=18)
    finally:
        sim.stop()


async def test_spool_restart_during_cut_resumes_and_loses_nothing(tmp_path: Path) -> None:
    sim, scale = scaled(1_000)
    try:
        await crawl_through_cut(sim, tmp_path, scale, cut_seconds=10, restart=True)
    finally:
        sim.stop()


async def test_spool_full_pauses_fetching_and_loses_nothing(tmp_path: Path) -> None:
    """Long descriptions and the smallest spool: it fills during the cut (5 pages of 100 rows
    a second), fetching pauses at the limit, and resumes once the spool is drained."""
    limit = 1_048_576
    sim = Simulator.serve("--rate-limit", "0", "--total", "4000", "--description-chars", "3000")
    scale = dataclasses.replace(
        SCALED, rows=4_000, api={**SCALED.api, "batch_size": 100, "max_requests_per_second": 5}
    )
    try:
        seen = await crawl_through_cut(
            sim, tmp_path, scale, cut_seconds=10, spool={"max_bytes": limit}
        )
    finally:
        sim.stop()
    print(f"spool limit {limit} bytes, peak {seen.peak_bytes} bytes")
    assert "the spool is full: fetching pauses until Kafka is back" in seen.log
    assert 0 < seen.peak_bytes <= limit


@pytest.mark.soak
@pytest.mark.timeout(600)
async def test_spool_cut_3min_worker_stays_up_drains_and_loses_nothing(tmp_path: Path) -> None:
    """The defaults' timeouts, and a cut of 3 minutes in real time."""
    sim = Simulator.serve("--rate-limit", "0", "--total", str(REAL.rows))
    try:
        await crawl_through_cut(sim, tmp_path, REAL, cut_seconds=180)
    finally:
        sim.stop()
