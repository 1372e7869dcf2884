"""GET /consume against a real worker: disjoint and complete batches, commit only after the
answer left, the lag on /status, and every bad parameter answered with a JSON 4xx."""

from __future__ import annotations

import asyncio
import socket
import time
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.web.conftest import TAIL_BATCH, Dataset, assert_json_error, get

pytestmark = pytest.mark.slow


async def drain(client: httpx.AsyncClient, url: str, group: str, batch_size: int) -> list[dict]:
    """Call /consume until it answers an empty batch; every job answered, in order."""
    jobs: list[dict] = []
    while True:
        response = await client.get(
            f"{url}/consume", params={"group": group, "batch_size": batch_size, "timeout_ms": 500}
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == 0 and body["count"] == len(body["data"]) <= batch_size
        if not body["data"]:
            return jobs
        jobs += body["data"]


def assert_exactly_once(jobs: list[dict], dataset: Dataset) -> None:
    repeated = [i for i, n in Counter(j["id"] for j in jobs).items() if n > 1]
    assert not repeated, f"{len(repeated)} jobs answered twice"
    assert {j["id"] for j in jobs} == dataset.ids


async def test_consume_sequential_calls_return_disjoint_batches_covering_job_data(
    dataset: Dataset,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        jobs = await drain(client, dataset.url, "t-sequential", batch_size=37)
    assert_exactly_once(jobs, dataset)
    # Each job as it is in job_data, in partition order.
    by_id = {m.job["id"]: m.job for m in dataset.messages}
    assert all(job == by_id[job["id"]] for job in jobs)


async def test_consume_concurrent_calls_return_disjoint_batches_covering_job_data(
    dataset: Dataset,
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        # The group's first call waits for its join; the race starts after it.
        first = await client.get(
            f"{dataset.url}/consume", params={"group": "t-concurrent", "batch_size": 5}
        )
        results = await asyncio.gather(
            *(drain(client, dataset.url, "t-concurrent", batch_size=9) for _ in range(8))
        )
    assert all(results), "every client got a share"
    assert_exactly_once(first.json()["data"] + [j for jobs in results for j in jobs], dataset)


def request_and_leave(url: str, group: str) -> None:
    """Send a /consume request and close the connection without reading the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            f"GET /consume?group={group}&batch_size=50 HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n\r\n".encode()
        )
        sock.shutdown(socket.SHUT_RDWR)


async def test_consume_client_gone_before_answer_loses_nothing(dataset: Dataset) -> None:
    group = "t-gone"
    async with httpx.AsyncClient(timeout=30) as client:
        warm = await client.get(f"{dataset.url}/consume", params={"group": group, "batch_size": 3})
        answered = warm.json()["data"]
        # The worker fetches 50 messages for each request, finds the caller gone when it answers,
        # and must seek back instead of committing.
        log_before = dataset.stack.worker.log().count(f"group={group} answer not delivered")
        for _ in range(3):
            request_and_leave(dataset.url, group)
        deadline = time.monotonic() + 10
        while dataset.stack.worker.log().count(f"group={group} answer not delivered") == log_before:
            assert time.monotonic() < deadline, "the worker never noticed a caller that left"
            await asyncio.sleep(0.1)
        rest = await drain(client, dataset.url, group, batch_size=100)
    assert_exactly_once(answered + rest, dataset)


async def test_consume_lag_falls_as_consume_reads(dataset: Dataset) -> None:
    """kafka_lag is the default group's true lag, although the embedded broker reports the
    partitions' end offsets short."""
    total = len(dataset.messages)
    reported = await reported_end_offsets(dataset.stack.bootstrap)
    print(f"reported end offsets {reported}, true {dataset.ends()}")
    assert reported[1] == dataset.ends()[1] - TAIL_BATCH + 1, "the broker quirk is not in play"

    status = dataset.stack.worker.status()
    assert status["kafka_lag"] == total
    assert status["kafka"]["lag_by_partition"] == {str(p): n for p, n in dataset.ends().items()}
    async with httpx.AsyncClient(timeout=30) as client:
        taken = 0
        for batch_size in (100, 250):
            response = await client.get(f"{dataset.url}/consume", params={"batch_size": batch_size})
            taken += response.json()["count"]
            await asyncio.sleep(1.1)  # the lag is measured at most once a second
            assert dataset.stack.worker.status()["kafka_lag"] == total - taken
        metrics = (await client.get(f"{dataset.url}/metrics")).text
    gauge = 'jobstream_job_data_consumer_lag{group="job_consumer_group"}'
    assert f"{gauge} {total - taken}.0" in metrics


async def reported_end_offsets(bootstrap: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition("job_data", p) for p in range(3)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def test_consume_drained_group_waits_timeout_then_answers_empty(dataset: Dataset) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        await drain(client, dataset.url, "t-empty", batch_size=1000)
        for timeout_ms, low, high in ((0, 0.0, 0.5), (800, 0.7, 2.0)):
            started = time.monotonic()
            response = await client.get(
                f"{dataset.url}/consume", params={"group": "t-empty", "timeout_ms": timeout_ms}
            )
            elapsed = time.monotonic() - started
            assert response.json() == {"code": 0, "data": [], "count": 0}
            assert low <= elapsed < high, (timeout_ms, elapsed)


@pytest.mark.parametrize(
    "query",
    [
        "batch_size=-1",
        "batch_size=0",
        "batch_size=abc",
        "batch_size=1e9",
        "batch_size=1001",
        "batch_size=%2B5",
        "batch_size=",
        "batch_size=10&batch_size=20",
        "timeout_ms=-1",
        "timeout_ms=30001",
        "timeout_ms=1.5",
        "group=bad%20name",
        "group=-leading-dash",
        "group=" + "g" * 101,
        "group=jobstream",
        "size=10",
    ],
)
def test_consume_bad_parameter_answers_json_400(dataset: Dataset, query: str) -> None:
    status, body = get(f"{dataset.url}/consume?{query}")
    assert_json_error(status, body, 400)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/consume"),
        ("DELETE", "/consume"),
        ("HEAD", "/consume"),
        ("PUT", "/status"),
        ("GET", "/crawl/start"),
        ("POST", "/consume/stream"),
    ],
)
def test_consume_wrong_method_answers_json_405_with_allow(
    dataset: Dataset, method: str, path: str
) -> None:
    response = httpx.request(method, f"{dataset.url}{path}")
    assert response.status_code == 405
    assert response.headers["Allow"]
    if method != "HEAD":
        assert_json_error(405, response.json(), 405)


def test_consume_unknown_path_answers_json_404(dataset: Dataset) -> None:
    status, body = get(f"{dataset.url}/consume/nothing")
    assert_json_error(status, body, 404)
