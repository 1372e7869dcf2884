"""The HTTP views on a real worker, for what only a worker shows: /status and /crawl/* as its
agents apply the progress (checked against the declarations /openapi.json shows), a stop that
survives a restart, a shutdown that ends open streams, and a broker outage it lives through.
Everything else about the views is tested in-process in tests/web."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import msgspec
import pytest

from jobstream.web.status import Status
from tests.harness import TASK_ID, Broker, Simulator, Worker, http, wait_until
from tests.integration.truth import settled

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token-for-tests"
# A second task, crawled on every tick: its runs show that ticks have passed.
OTHER_TASK = "5d0c1c3e-0000-4000-8000-00000000beef"
# Docker kills a container this long after asking it to stop.
DOCKER_STOP_TIMEOUT = 10.0
SEED_KEYS = ["task_id", "total", "current_offset", "progress", "kafka_lag", "status", "last_update"]


@dataclass
class Stack:
    sim: Simulator
    worker: Worker

    @property
    def url(self) -> str:
        return self.worker.url

    def post(self, path: str, token: str | None = TOKEN) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
        return http("POST", f"{self.url}{path}", headers=headers)

    def runs_of(self, task_id: str) -> int:
        """Crawl runs of the task so far (the log is kept across restarts)."""
        return sum(
            1
            for line in self.worker.log().splitlines()
            if f"task_id={task_id} offset=" in line and "crawl run starts" in line
        )


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    sim = Simulator.serve(
        "--rate-limit", "0", "--total", "300", "--task-id", TASK_ID, "--task-id", OTHER_TASK
    )
    worker = Worker.configure(
        tmp_path_factory.mktemp("guarded"),
        {
            "api": sim.api(task_id=[TASK_ID, OTHER_TASK], batch_size=50),
            "crawler": {"interval": 1},
            "app": {"admin_token": TOKEN},
        },
    )
    try:
        worker.start()
        worker.wait_ready()
        for task_id in (TASK_ID, OTHER_TASK):
            # Settled: the dedupe agent reports its counts a moment after the run ends.
            worker.wait_status(
                lambda s: s["current_offset"] == 300 and s["status"] == "idle" and settled(s),
                task_id=task_id,
            )
        yield Stack(sim, worker)
    finally:
        worker.stop()
        sim.stop()


def test_worker_status_body_is_its_declaration(guarded: Stack) -> None:
    # Two tasks: without task_id /status lists both (tests/integration/test_dashboard*.py).
    code, body = http("GET", f"{guarded.url}/status?task_id={TASK_ID}")
    assert code == 200, body
    assert list(body["data"])[: len(SEED_KEYS)] == SEED_KEYS
    status = msgspec.convert(body["data"], Status)
    assert (status.task_id, status.current_offset, status.progress) == (TASK_ID, 300, "100.00%")
    assert status.rows.applied == status.current_offset
    # Nothing consumed yet: the lag (measured at most once a second) comes to every job both
    # tasks published.
    published = status.rows.published + guarded.worker.status(OTHER_TASK)["rows"]["published"]
    guarded.worker.wait_status(lambda s: s["kafka_lag"] == published, timeout=10)


# "/" is ours (it sends browsers to /dashboard).
@pytest.mark.parametrize("path", ["/router/", "/table/", "/table/crawl_progress/", "/graph/"])
def test_worker_faust_pages_not_served_without_debug(guarded: Stack, path: str) -> None:
    code, body = http("GET", f"{guarded.url}{path}")
    assert code == 404 and body["code"] == 404, body


def test_worker_stop_survives_restart_and_start_resumes(guarded: Stack) -> None:
    code, body = guarded.post(f"/crawl/stop?task_id={TASK_ID}")
    assert code == 200, body
    stopped = msgspec.convert(body["data"], Status)
    assert (stopped.status, stopped.current_offset) == ("stopped", 300)

    # New rows wait at the source, but a stopped task is not crawled, not even after a restart
    # (the broker is embedded, memory only: the stop comes back from the SQLite mirror).
    guarded.sim.grow(200)
    assert guarded.worker.stop() == 0
    runs_before = guarded.runs_of(OTHER_TASK)
    guarded.worker.start()
    guarded.worker.wait_ready()
    # Each tick passes over the stopped task before it runs the other one: two runs of the
    # other task are two ticks in which the stopped task was not crawled.
    wait_until(lambda: guarded.runs_of(OTHER_TASK) >= runs_before + 2, 30, "two crawl ticks")
    after_restart = guarded.worker.status()
    assert (after_restart["status"], after_restart["current_offset"]) == ("stopped", 300)

    code, body = guarded.post(f"/crawl/start?task_id={TASK_ID}")
    assert code == 200 and body["data"]["status"] in ("idle", "running"), body
    guarded.worker.wait_status(lambda s: s["current_offset"] == 500, timeout=30)


def test_worker_shutdown_ends_open_streams(guarded: Stack) -> None:
    """Runs last in this module: it stops the module's worker."""
    opened, ended = threading.Event(), threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{guarded.url}/consume/stream", timeout=60) as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                opened.set()
        ended.set()

    threading.Thread(target=listen, daemon=True).start()
    assert opened.wait(10), "the stream did not open"
    assert guarded.worker.stop() == 0
    assert ended.wait(5), "the stream outlived the worker"
    assert "SSE stream closed after" in guarded.worker.log()


def test_worker_outage_stays_up_and_status_answers(
    tmp_path: Path, simulator_factory: Callable[..., Simulator]
) -> None:
    """The broker crashes. On the default `app.stop_deadline` (8 s): the stop that Kafka holds
    up ends within Docker's stop timeout."""
    broker = Broker.start()
    sim = simulator_factory("--total", "300")
    worker = Worker.configure(
        tmp_path,
        {
            "api": sim.api(),
            "kafka": {"bootstrap_servers": broker.bootstrap},
            "crawler": {"interval": 3600},
        },
    )
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(lambda s: s["current_offset"] == 300)
    finally:
        broker.process.kill()  # a crash, not a goodbye
        broker.stop()
    try:
        wait_until(lambda: http("GET", f"{worker.url}/ready")[0] == 503, 10, "/ready 503")
        # The lag is measured at most once a second: the next measurement finds Kafka gone.
        status = worker.wait_status(lambda s: s["kafka_lag"] is None, timeout=10)
        assert status["kafka"]["error"] and status["current_offset"] == 300
        code, metrics = http("GET", f"{worker.url}/metrics")
        assert code == 200 and "jobstream_kafka_up 0.0" in metrics
        assert worker.process is not None and worker.process.poll() is None
        # Faust's shutdown waits on the broker without a bound; the worker's own deadline
        # ends it within Docker's stop timeout.
        worker.process.send_signal(signal.SIGTERM)
        worker.process.wait(timeout=DOCKER_STOP_TIMEOUT)
    finally:
        worker.stop()


def test_worker_broker_cut_off_no_call_waits_and_stop_within_docker_timeout(
    tmp_path: Path, simulator_factory: Callable[..., Simulator]
) -> None:
    """A broker that stops answering without closing its connections (a network cut, a hung
    broker): the worst case, every request to it waits for its timeout. The stop it holds up
    ends after `app.stop_deadline`: 2 s here (the default's bound is the outage test's)."""
    broker = Broker.start()
    sim = simulator_factory("--total", "300")
    worker = Worker.configure(
        tmp_path,
        {
            "api": sim.api(),
            "kafka": {"bootstrap_servers": broker.bootstrap},
            "app": {"stop_deadline": 2.0},
        },
    )
    # Each call must answer well within kafka.http_timeout (10 s), which it would otherwise
    # wait out.
    guard = 5.0
    try:
        worker.start()
        worker.wait_ready()
        worker.wait_status(lambda s: s["current_offset"] == 300)
        broker.process.send_signal(signal.SIGSTOP)
        cut_at = time.monotonic()
        slowest = 0.0

        def noticed() -> bool:
            nonlocal slowest
            asked = time.monotonic()
            code, body = http("GET", f"{worker.url}/status", timeout=guard)
            assert code == 200, body
            slowest = max(slowest, time.monotonic() - asked)
            return http("GET", f"{worker.url}/ready", timeout=guard)[0] == 503

        wait_until(noticed, 15, "the cut noticed")
        noticed_after = time.monotonic() - cut_at
        # Known down: the data endpoints answer 503 at once, /status without the lag.
        for path in ("/consume?timeout_ms=30000", "/consume/stream", "/consume?group=other"):
            code, body = http("GET", f"{worker.url}{path}", timeout=guard)
            assert code == 503 and "Kafka" in body["message"], (path, body)
        code, body = http("GET", f"{worker.url}/status", timeout=guard)
        assert code == 200 and body["data"]["kafka_lag"] is None and body["data"]["kafka"]["error"]

        assert worker.process is not None
        stopping = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        worker.process.wait(timeout=DOCKER_STOP_TIMEOUT)
        print(
            f"cut noticed after {noticed_after:.1f}s (slowest /status meanwhile "
            f"{slowest:.2f}s); stopped {time.monotonic() - stopping:.1f}s after SIGTERM"
        )
    finally:
        broker.process.kill()
        worker.stop()
        broker.stop()
