"""The repo's defaults on a fresh machine: embedded broker, built-in simulator, nothing else."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
import yaml

from jobstream.records import Job
from tests.harness import read_topic, wait_until

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
    broker, simulator_factory, worker_factory
):
    sim = simulator_factory("--total", "200")
    worker = worker_factory(
        api=sim.api(password="wrong-secret-123"),
        kafka={"bootstrap_servers": broker.bootstrap},
        crawler={"interval": 1},
    )
    worker.start()
    worker.wait_ready()
    status = worker.wait_status(lambda s: s["status"] == "error")

    assert "authentication" in status["last_error"]
    assert status["current_offset"] == 0

    def failed_runs() -> int:
        return worker.log().count("crawl run failed")

    # A few ticks: retried, not crashed, and not in a hot loop (about one token request a run).
    wait_until(lambda: failed_runs() >= 3, 30, "three failed runs")
    assert worker.process is not None and worker.process.poll() is None
    token_calls = sim.stats()["requests"]["token"]
    assert 3 <= token_calls <= 2 * (failed_runs() + 1), (token_calls, failed_runs())
    assert "wrong-secret-123" not in worker.log()


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
