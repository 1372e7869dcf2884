"""The repo's defaults on a fresh machine: embedded broker, built-in simulator, nothing else."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import time

import pytest
import yaml
from aiokafka import AIOKafkaProducer
from aiokafka.errors import UnknownError

from jobstream.embedded.orphans import OWNER_ENV, guarded, owner_mark
from jobstream.embedded.tansu import broker_command
from jobstream.records import Job
from tests.harness import TASK_ID, Worker, read_topic, wait_for_port, wait_until
from tests.integration.truth import expected, settled

pytestmark = pytest.mark.slow

# What job_data carries, as the record declares it.
JOB_FIELDS = set(Job.__struct_fields__)


async def test_embedded_defaults_publish_demo_jobs_within_a_minute(worker_factory):
    worker = worker_factory()  # config/config.yml as shipped, on free ports
    worker.start()
    ready = worker.wait_ready(timeout=60)
    port = yaml.safe_load(worker.config_path.read_text())["kafka"]["embedded_port"]

    jobs = await read_topic(f"127.0.0.1:{port}", "job_data", expect=500, deadline_s=60)
    status = worker.wait_status(lambda s: s["progress"] == "100.00%", timeout=60)
    elapsed = time.monotonic() - worker.started_at

    assert len(jobs) >= 500
    for key, job in jobs[:50]:
        assert set(job) == JOB_FIELDS
        assert key == job["id"] and job["demo"] is True
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", job["publish_date"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", job["collect_time"])
        assert job["crawl_time"].endswith("+08:00")
    assert status["status"] in ("idle", "running") and status["demo"] is True
    # Plain UTF-8 JSON on the wire: readable Chinese, no \u escapes.
    raw = await read_topic(f"127.0.0.1:{port}", "job_data", expect=1, raw=True)
    value = raw[0].value.decode("utf-8")
    assert "\\u" not in value and re.search("[\u4e00-\u9fff]", value)
    assert json.loads(value)["demo"] is True
    print(f"ready {ready:.1f}s, {len(jobs)} jobs and 100% after {elapsed:.1f}s")  # the speed
    # is benchmarks/bench_pipeline.py's to measure
    # Stopping the worker stops its broker too: nothing is left listening.
    assert worker.stop() == 0


def test_worker_invalid_credentials_reports_error_and_stays_up(
    session_broker, simulator_factory, worker_factory
):
    # The API repeats the request in its error message, JSON-escaped and cut mid-password: no
    # form of it may reach /status or a log line (the suite checks every log line too).
    sim = simulator_factory("--total", "200", "--echo-secrets")
    password = "wrong-secret-123-密码-long"
    worker = worker_factory(
        name="invalid-credentials",
        api=sim.api(password=password),
        kafka={"bootstrap_servers": session_broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    worker.wait_ready()
    status = worker.wait_status(lambda s: s["status"] == "error")

    assert "authentication" in status["last_error"] and "Request: {" in status["last_error"]
    assert "wrong-se" not in status["last_error"]
    assert status["current_offset"] == 0

    def failed_runs() -> int:
        return worker.log().count("crawl run failed")

    # A few ticks: retried, not crashed, and not in a hot loop (about one token request a run).
    wait_until(lambda: failed_runs() >= 3, 30, "three failed runs")
    assert worker.process is not None and worker.process.poll() is None
    token_calls = sim.stats()["requests"]["token"]
    assert 3 <= token_calls <= 2 * (failed_runs() + 1), (token_calls, failed_runs())
    assert "wrong-se" not in worker.log()


def test_embedded_broker_port_taken_stops_worker_with_clear_message(worker_factory):
    worker = worker_factory()
    port = yaml.safe_load(worker.config_path.read_text())["kafka"]["embedded_port"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        worker.start()
        assert worker.process is not None
        code = worker.process.wait(timeout=60)

    assert code != 0
    assert f"port {port} on 127.0.0.1 is already in use" in worker.log()


# -- the broker child lives and dies with its worker ---------------------------------------

# The bound: on the embedded defaults a worker started again is ready within 15 s.
RESTART_READY_WITHIN = 15.0


def _embedded_port(worker: Worker) -> int:
    return int(yaml.safe_load(worker.config_path.read_text())["kafka"]["embedded_port"])


def _dead_pid() -> int:
    """The pid of a process that has ended (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def _foreign_broker(port: int, owner: str) -> subprocess.Popen[bytes]:
    """A broker on `port` marked as started by the worker `owner` names (OWNER_ENV); it dies
    with this test process at the latest."""
    process = subprocess.Popen(
        guarded(broker_command("127.0.0.1", port)),
        env={**os.environ, OWNER_ENV: owner},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, 15, process)
    return process


def test_broker_stale_one_of_ours_is_replaced_at_start(worker_factory):
    worker = worker_factory()
    port = _embedded_port(worker)
    stale = _foreign_broker(port, owner=f"{_dead_pid()}:1")
    try:
        worker.start()
        ready = worker.wait_ready(timeout=RESTART_READY_WITHIN)
        assert stale.wait(5) == -signal.SIGKILL
    finally:
        stale.kill()
    assert f"held by an embedded broker (pid {stale.pid}) left behind" in worker.log()
    print(f"ready in {ready:.1f}s after replacing the stale broker")


def test_broker_of_a_running_worker_is_left_alone(worker_factory):
    worker = worker_factory()
    port = _embedded_port(worker)
    # Marked as started by this test process, which is alive: not stale.
    other = _foreign_broker(port, owner=owner_mark())
    try:
        worker.start()
        assert worker.process is not None
        code = worker.process.wait(timeout=60)
        assert other.poll() is None, "the other worker's broker was killed"
    finally:
        other.kill()
        other.wait()
    assert code != 0
    assert f"of a jobstream worker that is still running (pid {os.getpid()})" in worker.log()


async def test_broker_gone_stopped_or_killed_restart_resumes_from_sqlite_mirror(
    simulator_factory, worker_factory
):
    """The embedded broker keeps everything in memory: stopped with its worker, or killed
    under it (the worker then exits with code 1, within Docker's stop timeout), it takes every
    topic and the progress table along. Each restart is ready within 15 s and resumes from the
    SQLite mirror, counters included, not from 0. (A worker killed with -9 takes its broker
    along: tests/integration/test_kill.py.)"""
    sim = simulator_factory("--total", "1000")
    worker = worker_factory(api=sim.api())
    worker.start()
    worker.wait_ready()
    # Settled: the dedupe agent reports its counts a moment after the run ends; a worker
    # stopped before they are in the mirror loses them with the embedded broker.
    first = worker.wait_status(
        lambda s: s["current_offset"] == 1000 and s["status"] == "idle" and settled(s)
    )
    assert worker.stop() == 0

    sim.grow(400)
    worker.start()
    stopped_ready = worker.wait_ready(timeout=RESTART_READY_WITHIN)
    status = worker.wait_status(
        lambda s: s["current_offset"] == 1400 and s["status"] == "idle" and settled(s)
    )
    eligible = expected(sim.truth()).published
    new_rows = {o for o in eligible if o >= 1000}
    jobs = await read_topic(worker.bootstrap, "job_data", expect=len(new_rows))
    # Only the rows after the mirrored offset were crawled into the new broker.
    assert {job["source_offset"] for _, job in jobs} == new_rows
    assert f"task_id={TASK_ID} offset=1000 crawl run starts" in worker.log()
    # The counters came back with the progress.
    assert status["rows"]["published"] == len(eligible)
    assert status["rows"]["published"] > first["rows"]["published"]

    broker = worker.broker_pids()[-1]
    assert worker.process is not None
    os.kill(broker, signal.SIGKILL)
    killed = time.monotonic()
    # Within Docker's stop timeout (the unhealthy /health in between: tests/web/test_health.py).
    code = worker.process.wait(timeout=10)
    exited_after = time.monotonic() - killed
    assert code == 1
    assert f"the embedded broker (Tansu, pid {broker}) exited with code -9" in worker.log()
    worker.stop()
    sim.grow(100)
    worker.start()
    killed_ready = worker.wait_ready(timeout=RESTART_READY_WITHIN)
    # A new, empty broker: the crawl resumed from the SQLite mirror, not from 0.
    worker.wait_status(lambda s: s["current_offset"] == 1500 and s["status"] == "idle")
    assert f"task_id={TASK_ID} offset=1400 crawl run starts" in worker.log()
    print(
        f"ready {stopped_ready:.1f}s after a stop; the worker exited {exited_after:.1f}s after "
        f"its broker died; restarted, ready in {killed_ready:.1f}s"
    )


# -- why there is no exactly_once (README "不丢不重") ----------------------------------------


@pytest.mark.parametrize(
    "options",
    [{"enable_idempotence": True}, {"transactional_id": "jobstream-eos-check"}],
    ids=["idempotent", "transactional"],
)
async def test_embedded_broker_refuses_idempotent_and_transactional_producers(
    broker, options
) -> None:
    """Tansu 0.6 answers InitProducerId with UnknownError: neither an idempotent nor a
    transactional producer (Faust's processing_guarantee="exactly_once") can start on it. If
    this test fails, the broker learned it: the README's choice is worth revisiting."""
    producer = AIOKafkaProducer(
        bootstrap_servers=broker.bootstrap, request_timeout_ms=5000, **options
    )
    with pytest.raises(UnknownError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()
