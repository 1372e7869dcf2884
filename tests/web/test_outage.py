"""A broker outage: the views answer 503 at once (not a hang), /status and /metrics keep
answering with the lag unknown, and the worker stays up."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.harness import Broker, http
from tests.web.conftest import Stack, assert_json_error

pytestmark = pytest.mark.slow


def timed(method: str, url: str) -> tuple[int, dict, float]:
    started = time.monotonic()
    status, body = http(method, url, timeout=30)
    return status, body, time.monotonic() - started


def test_outage_broker_down_answers_503_quickly(stack_factory: Callable[..., Stack]) -> None:
    broker = Broker.start()
    try:
        stack = stack_factory(kafka={"bootstrap_servers": broker.bootstrap})
        stack.worker.wait_status(lambda s: s["current_offset"] == 300)
    finally:
        broker.process.kill()  # a crash, not a goodbye
        broker.stop()

    deadline = time.monotonic() + 10
    while http("GET", f"{stack.url}/ready")[0] != 503:
        assert time.monotonic() < deadline, "/ready still 200 with the broker gone"
        time.sleep(0.2)
    status, body = http("GET", f"{stack.url}/ready")
    assert_json_error(status, body, 503)
    assert "broker_reachable" in body["message"]

    for method, path in [
        ("GET", "/consume?timeout_ms=30000"),
        ("GET", "/consume?group=other"),
        ("GET", "/consume/stream"),
        ("POST", "/crawl/stop"),
    ]:
        status, body, elapsed = timed(method, f"{stack.url}{path}")
        assert_json_error(status, body, 503)
        assert elapsed < 1.0, (path, elapsed)

    status, body, elapsed = timed("GET", f"{stack.url}/status")
    assert status == 200 and elapsed < 1.0
    assert body["data"]["kafka_lag"] is None and body["data"]["kafka"]["error"]
    assert body["data"]["current_offset"] == 300
    status, metrics, _ = timed("GET", f"{stack.url}/metrics")
    assert status == 200 and "jobstream_kafka_up 0.0" in metrics
    assert stack.worker.process is not None and stack.worker.process.poll() is None
    # Faust's own consumer thread waits for the broker when stopping (outside the HTTP layer);
    # do not spend the harness's 20 s stop timeout on it.
    stack.worker.process.kill()
