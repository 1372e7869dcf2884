"""A broker outage, in-process: the views answer 503 with `Retry-After` at once instead of
waiting on Kafka, /metrics keeps answering, and the probe notices a broker that goes away.
That the worker itself stays up is tests/integration/test_web_worker.py's."""

from __future__ import annotations

import asyncio
import gc
import signal

import aiohttp
import pytest

from tests.harness import Broker, free_port
from tests.web.conftest import ServeFactory, assert_json_error, create_topic

# Longer than any answer may take: a view that waited on Kafka (kafka.http_timeout is 30 s
# here) would fail on it instead of hanging the run.
HANG_GUARD = aiohttp.ClientTimeout(total=5)
# For a wait that lasts until the probe notices: the lag measurement (up to 2 s) and the probe's
# round trip (up to 3 s) come first, so 5 s is no margin on a loaded machine; still half of
# kafka.http_timeout.
NOTICE_GUARD = aiohttp.ClientTimeout(total=15)


@pytest.mark.parametrize(
    ("method", "path", "reason"),
    [
        ("GET", "/consume?timeout_ms=30000", "Kafka is unreachable"),
        ("GET", "/consume?group=other", "Kafka is unreachable"),
        ("GET", "/consume/stream", "Kafka is unreachable"),
        ("GET", "/ready", "broker_reachable"),
        ("POST", "/crawl/stop", "starting"),
    ],
)
async def test_outage_broker_down_answers_503_at_once(
    serve_factory: ServeFactory, method: str, path: str, reason: str
) -> None:
    # Nothing listens there: the broker is down from the start.
    served = await serve_factory(bootstrap=f"127.0.0.1:{free_port()}", kafka={"http_timeout": 30})
    assert not served.probe.broker_up
    body = {} if method == "POST" else None
    response = await served.client.request(method, path, json=body, timeout=HANG_GUARD)
    body = await response.json()
    assert_json_error(response.status, body, 503)
    assert reason in body["message"] and response.headers["Retry-After"]


async def test_outage_ready_says_why_and_what_the_spool_holds(
    serve_factory: ServeFactory,
) -> None:
    served = await serve_factory(bootstrap=f"127.0.0.1:{free_port()}")
    response = await served.client.get("/ready", timeout=HANG_GUARD)
    body = await response.json()
    assert_json_error(response.status, body, 503)
    assert "Kafka is unreachable" in body["message"], body
    assert "spooled locally: 0 events, 0 rows, 0 bytes of at most 268435456" in body["message"]
    metrics = await (await served.client.get("/metrics", timeout=HANG_GUARD)).text()
    assert "jobstream_spool_pages" in metrics and "jobstream_spool_bytes" in metrics


async def test_outage_metrics_and_lag_keep_answering(serve_factory: ServeFactory) -> None:
    served = await serve_factory(bootstrap=f"127.0.0.1:{free_port()}")
    response = await served.client.get("/metrics", timeout=HANG_GUARD)
    assert response.status == 200 and "jobstream_kafka_up" in await response.text()
    lag = await served.probe.lag(max_age=0)
    assert lag.total is None and lag.error == "Kafka is unreachable; retry later"


async def test_outage_broker_gone_is_noticed(serve_factory: ServeFactory) -> None:
    broker = Broker.start()
    try:
        served = await serve_factory(bootstrap=broker.bootstrap, kafka={"http_timeout": 2})
        assert served.probe.broker_up
    finally:
        broker.process.kill()  # a crash, not a goodbye
        broker.stop()
    await served.probe.check()  # the probe's next round trip, now rather than in 2 s
    assert not served.probe.broker_up
    response = await served.client.get("/consume", timeout=HANG_GUARD)
    body = await response.json()
    assert_json_error(response.status, body, 503)
    assert body["message"] == "Kafka is unreachable; retry later"


# aiokafka leaves a connection unclosed when a request to a hung broker is cancelled during its
# handshake; it is collected (and its warning ignored) here rather than in a later test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_outage_broker_hung_waits_end_when_noticed(serve_factory: ServeFactory) -> None:
    """A broker that stops answering but keeps its connections (SIGSTOP, a network cut): a
    wait already in progress ends with a 503 once the probe notices, not after the 30 s
    kafka.http_timeout; a lag measurement is waited for at most LAG_WAIT."""
    broker = Broker.start()
    waiting: asyncio.Task[aiohttp.ClientResponse] | None = None
    try:
        await create_topic(broker.bootstrap, "job_data")
        served = await serve_factory(bootstrap=broker.bootstrap, kafka={"http_timeout": 30})
        await served.probe.check()
        assert served.probe.broker_up and served.probe.partitions
        broker.process.send_signal(signal.SIGSTOP)
        # A new group must join: a wait on the broker that would take up to 30 s.
        waiting = asyncio.create_task(
            served.client.get("/consume?group=outage-hung", timeout=NOTICE_GUARD)
        )
        lag = await asyncio.wait_for(served.probe.lag(max_age=0), HANG_GUARD.total)
        assert lag.total is None and "measuring" in (lag.error or "")
        await served.probe.check()  # the probe's next round trip, now rather than in 2 s
        assert served.probe.broker_up is False
        response = await waiting
        body = await response.json()
        assert_json_error(response.status, body, 503)
        assert "Kafka" in body["message"]
    finally:
        if waiting is not None and not waiting.done():
            waiting.cancel()
        broker.process.kill()  # a stopped process takes seconds to end gracefully
        broker.stop()
    gc.collect()
