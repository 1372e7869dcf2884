"""kill -9 at random points of a backfill, several times, then a restart: nothing lost, nothing
published that should not be, a row fetched again keeps its id, and the progress never goes
backwards nor past rows whose messages are not in Kafka (job_data, or job_candidates on the way
to it through the dedupe agent).

The first test keeps job_data across the kills (a broker of its own, which the kills do not
touch) and checks every row; the second runs on the embedded defaults, where the broker dies
with its worker (memory only: what it held is gone), and checks that the broker goes with its
worker, that every restart starts a new one and is ready within 15 s, and that it resumes from
the SQLite mirror.

The default run kills three times in a backfill of 3,000 rows (a kill lands wherever the crawl
is, as in a longer one); the soak run (`pytest -m soak`) five times in 20,000 rows.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from jobstream.dedupe.sightings import decode_candidates
from jobstream.embedded.orphans import start_time
from tests.harness import (
    TASK_ID,
    Broker,
    Simulator,
    Worker,
    mirrored_offset,
    read_topic,
    wait_until,
)
from tests.integration.truth import expected

pytestmark = pytest.mark.slow

# (rows, kills): the default run's, and the soak run's.
QUICK = pytest.param(3_000, 3, id="3000-rows-3-kills")
SOAK = pytest.param(20_000, 5, id="20000-rows-5-kills", marks=[pytest.mark.soak])
SIZES = pytest.mark.parametrize(("rows", "kills"), [QUICK, SOAK])
# The bound for a restart on the embedded defaults.
READY_WITHIN = 15.0


class MirrorWatch:
    """The task's offset in the SQLite mirror, read every 20 ms from another process, as long
    as the test runs: every value it ever had, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seen: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> MirrorWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def now(self) -> int:
        return mirrored_offset(self.path)

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            offset = self.now()
            if not self.seen or offset != self.seen[-1]:
                self.seen.append(offset)

    def assert_never_backwards(self) -> None:
        backwards = [(a, b) for a, b in zip(self.seen, self.seen[1:], strict=False) if b < a]
        assert not backwards, f"the mirror's offset went backwards: {backwards[:5]}"


async def candidate_offsets(bootstrap: str) -> set[int]:
    """The source offsets of every job in job_candidates."""
    return {
        msgspec.json.decode(job.job)["source_offset"]
        for message in await read_topic(bootstrap, "job_candidates", raw=True)
        for job in decode_candidates(message.value).jobs
    }


def kill_points(rng: random.Random, rows: int, kills: int) -> list[int]:
    return sorted(int(rng.uniform(0.05, 0.95) * rows) for _ in range(kills))


@pytest.fixture
def sim(rows: int) -> Iterator[Simulator]:
    started = Simulator.serve("--rate-limit", "0", "--total", str(rows))
    yield started
    started.stop()


@SIZES
async def test_kill9_during_backfill_loses_nothing_and_doubles_nothing(
    sim: Simulator, tmp_path: Path, rows: int, kills: int
) -> None:
    seed = random.randrange(1 << 30)
    points = kill_points(random.Random(seed), rows, kills)
    want = expected(sim.truth())
    broker = Broker.start()
    worker = Worker.configure(
        tmp_path, {"api": sim.api(), "kafka": {"bootstrap_servers": broker.bootstrap}}
    )
    mirror = MirrorWatch(tmp_path / "data" / "crawl_progress.db")
    report: list[str] = []
    try:
        with mirror:
            worker.start()
            for point in points:
                wait_until(lambda p=point: mirror.now() >= p, 120, f"offset {point}")
                worker.kill()
                at = mirror.now()
                # Progress never past unapplied rows: every eligible row below the stored
                # offset is durable in Kafka (nothing runs now that could add it): in job_data,
                # or in job_candidates, which the dedupe agent forwards from after the restart
                # (the final check below sees them in job_data).
                below = {o for o in want.published if o < at}
                jobs = await read_topic(broker.bootstrap, "job_data")
                missing = below - {job["source_offset"] for _, job in jobs}
                if missing:
                    missing -= await candidate_offsets(broker.bootstrap)
                assert not missing, f"killed at {at}: rows {sorted(missing)[:10]} not in Kafka"
                worker.start()
                ready = worker.wait_ready(60)
                report.append(f"kill at {at} ({len(jobs)} in job_data), ready {ready:.1f}s")
            worker.wait_status(
                lambda s: s["current_offset"] == rows and s["status"] == "idle", timeout=180
            )
        mirror.assert_never_backwards()

        jobs = await read_topic(broker.bootstrap, "job_data", expect=len(want.published))
        rejects = await read_topic(broker.bootstrap, "job_rejects", expect=len(want.rejected))
    finally:
        with contextlib.ExitStack() as cleanup:  # both, whichever fails
            cleanup.callback(broker.stop)
            cleanup.callback(worker.stop, wait=False)

    offsets = Counter(job["source_offset"] for _, job in jobs)
    assert set(offsets) == want.published, (
        sorted(want.published - set(offsets))[:10],
        sorted(set(offsets) - want.published)[:10],
    )
    ids: dict[int, set[str]] = {}
    for key, job in jobs:
        assert key == job["id"]
        ids.setdefault(job["source_offset"], set()).add(job["id"])
    assert all(len(v) == 1 for v in ids.values()), "a replayed row with another id"
    assert {r["source_offset"] for _, r in rejects} == want.rejected
    replays = sum(n - 1 for n in offsets.values())
    print(
        f"seed {seed}: {'; '.join(report)}; {len(want.published)} eligible rows, "
        f"{len(jobs)} messages, {replays} replays (same id), {len(want.filtered)} filtered, "
        f"{len(want.rejected)} rejected"
    )


@SIZES
def test_kill9_embedded_defaults_broker_goes_too_each_restart_ready_within_15s(
    sim: Simulator, tmp_path: Path, rows: int, kills: int
) -> None:
    seed = random.randrange(1 << 30)
    points = kill_points(random.Random(seed), rows, kills)
    worker = Worker.configure(tmp_path, {"api": sim.api()})  # the embedded broker
    mirror = MirrorWatch(tmp_path / "data" / "crawl_progress.db")
    readies: list[float] = []
    resumed: list[int] = []
    try:
        with mirror:
            worker.start()
            worker.wait_ready(60)
            for point in points:
                wait_until(lambda p=point: mirror.now() >= p, 120, f"offset {point}")
                broker = worker.broker_pids()[-1]
                worker.kill()
                # The broker dies with its worker (its parent-death signal).
                wait_until(lambda b=broker: start_time(b) is None, 5, "the broker gone")
                resumed.append(mirror.now())
                worker.start()
                readies.append(worker.wait_ready(READY_WITHIN))
            status: dict[str, Any] = worker.wait_status(
                lambda s: s["current_offset"] == rows and s["status"] == "idle", timeout=180
            )
        mirror.assert_never_backwards()
    finally:
        worker.stop(wait=False)

    assert len(readies) == kills and max(readies) <= READY_WITHIN
    log = worker.log()
    # Each start started a broker of its own, on the port the killed one held.
    assert len(set(worker.broker_pids())) == kills + 1
    assert "already in use" not in log
    # Each start resumed where the mirror stood, not from 0.
    for offset in resumed:
        assert f"task_id={TASK_ID} offset={offset} crawl run starts" in log
    # Every row went through the page agent once: its filtered and rejected counts are
    # exact. Kept rows are counted by the dedupe agent on their way from job_candidates to
    # job_data; those still in job_candidates when the worker was killed went with the
    # embedded broker (memory only), so the published count may fall short by them.
    want = expected(sim.truth())
    rows = status["rows"]
    assert (rows["filtered"], rows["rejected"]) == (len(want.filtered), len(want.rejected))
    kept = rows["published"] + rows["duplicates"]
    assert kept <= len(want.published)
    print(
        f"seed {seed}: killed at {resumed}; ready after each restart in "
        f"{', '.join(f'{r:.1f}s' for r in readies)} (bound {READY_WITHIN:.0f}s); "
        f"{len(want.published) - kept} of {len(want.published)} kept rows went with the "
        "embedded broker before the dedupe agent counted them"
    )
