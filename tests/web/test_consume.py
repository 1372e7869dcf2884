"""GET /consume in-process: disjoint and complete batches, commit only after the answer left,
the wait for data, the true lag, and every bad parameter answered with a JSON 4xx."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from urllib.parse import urlsplit

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.harness import wait_until_async
from tests.web.conftest import (
    TAIL_BATCH,
    Dataset,
    Served,
    assert_json_error,
    make_job,
    produce,
)


async def drain(
    client: httpx.AsyncClient,
    url: str,
    group: str,
    batch_size: int,
    expect: int,
    answered: list[dict] | None = None,
    wait_ms: int = 5000,
) -> list[dict]:
    """Call /consume until `expect` jobs were answered (to this caller and to those sharing
    `answered`), then once more, which must answer nothing; the jobs answered to this caller,
    in order.

    An answer comes as soon as there is data, so `wait_ms` only bounds a call that finds none;
    callers that share a group queue for it, and should not each wait long."""
    jobs: list[dict] = []
    answered = [] if answered is None else answered
    params = {"group": group, "batch_size": batch_size, "timeout_ms": wait_ms}
    while len(answered) < expect:
        response = await client.get(f"{url}/consume", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["code"] == 0 and body["count"] == len(body["data"]) <= batch_size
        jobs += body["data"]
        answered += body["data"]
    return jobs


async def assert_drained(client: httpx.AsyncClient, url: str, group: str) -> None:
    last = await client.get(f"{url}/consume", params={"group": group, "timeout_ms": 100})
    assert last.json() == {"code": 0, "data": [], "count": 0}


def assert_exactly_once(jobs: list[dict], dataset: Dataset) -> None:
    repeated = [i for i, n in Counter(j["id"] for j in jobs).items() if n > 1]
    assert not repeated, f"{len(repeated)} jobs answered twice"
    assert {j["id"] for j in jobs} == dataset.ids


async def test_consume_sequential_calls_return_disjoint_batches_covering_job_data(
    served: Served, dataset: Dataset, group: str
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        jobs = await drain(client, served.url, group, 37, expect=len(dataset.messages))
        await assert_drained(client, served.url, group)
    assert_exactly_once(jobs, dataset)
    # Each job as it is in job_data.
    by_id = {m.job["id"]: m.job for m in dataset.messages}
    assert all(job == by_id[job["id"]] for job in jobs)


async def test_consume_concurrent_calls_return_disjoint_batches_covering_job_data(
    served: Served, dataset: Dataset, group: str
) -> None:
    answered: list[dict] = []
    async with httpx.AsyncClient(timeout=30) as client:
        results = await asyncio.gather(
            *(
                drain(client, served.url, group, 9, len(dataset.messages), answered, wait_ms=50)
                for _ in range(8)
            )
        )
        await assert_drained(client, served.url, group)
    assert all(results), "every client got a share"
    assert_exactly_once([j for jobs in results for j in jobs], dataset)


def request_and_leave(url: str, group: str) -> None:
    """Send a /consume request and close the connection without reading the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(
            f"GET /consume?group={group}&batch_size=50 HTTP/1.1\r\n"
            f"Host: {parts.netloc}\r\n\r\n".encode()
        )
        sock.shutdown(socket.SHUT_RDWR)


async def test_consume_client_gone_before_answer_loses_nothing(
    served: Served, dataset: Dataset, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="jobstream.web.readers")
    async with httpx.AsyncClient(timeout=30) as client:
        warm = await client.get(f"{served.url}/consume", params={"group": group, "batch_size": 3})
        answered = warm.json()["data"]
        # The view fetches 50 messages for each request, finds the caller gone when it answers,
        # and must seek back instead of committing.
        for _ in range(3):
            request_and_leave(served.url, group)

        async def rewound() -> int:
            return caplog.text.count(f"group={group} answer not delivered")

        await wait_until_async(rewound, what="a caller that left noticed")
        rest = await drain(client, served.url, group, 100, expect=len(dataset.messages) - 3)
        await assert_drained(client, served.url, group)
    assert_exactly_once(answered + rest, dataset)


async def reported_end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(3)])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        await consumer.stop()


async def test_consume_lag_falls_as_consume_reads(served: Served, dataset: Dataset) -> None:
    """The lag is the default group's true lag, although the embedded broker reports the
    partitions' end offsets short."""
    total = len(dataset.messages)
    reported = await reported_end_offsets(dataset.bootstrap, dataset.topic)
    assert reported[1] == dataset.ends()[1] - TAIL_BATCH + 1, "the broker quirk is not in play"

    lag = await served.probe.lag(max_age=0)
    assert lag.total == total
    assert lag.by_partition == dataset.ends()
    taken = 0
    async with httpx.AsyncClient(timeout=30) as client:
        for batch_size in (100, 250):
            response = await client.get(f"{served.url}/consume", params={"batch_size": batch_size})
            taken += response.json()["count"]
            assert (await served.probe.lag(max_age=0)).total == total - taken
        metrics = (await client.get(f"{served.url}/metrics")).text
    gauge = f'jobstream_job_data_consumer_lag{{group="{served.default_group}"}}'
    assert f"{gauge} {total - taken}.0" in metrics


async def test_consume_waits_for_data_up_to_timeout_ms(served_empty: Served) -> None:
    group = served_empty.take_group()
    url = f"{served_empty.url}/consume"
    async with httpx.AsyncClient(timeout=30) as client:
        empty = await client.get(url, params={"group": group, "timeout_ms": 0})
        assert empty.json() == {"code": 0, "data": [], "count": 0}
        waiting = asyncio.create_task(
            client.get(url, params={"group": group, "timeout_ms": 30_000})
        )
        reader = served_empty.readers.readers[group]

        async def reading() -> bool:
            return reader.lock.locked()

        # The view holds the group's lock while it waits; a job sent now must be its answer.
        await wait_until_async(reading, what="the view waiting for data")
        job = make_job(10_000)
        await produce(served_empty.bootstrap, served_empty.topic, [job])
        answer = (await waiting).json()
    assert answer == {"code": 0, "data": [job], "count": 1}


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
        "size=10",
    ],
)
async def test_consume_bad_parameter_answers_json_400(served: Served, query: str) -> None:
    response = await served.client.get(f"/consume?{query}")
    assert_json_error(response.status, await response.json(), 400)


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
async def test_consume_wrong_method_answers_json_405_with_allow(
    served: Served, method: str, path: str
) -> None:
    response = await served.client.request(method, path)
    assert response.status == 405
    assert response.headers["Allow"]
    if method != "HEAD":
        assert_json_error(405, await response.json(), 405)


async def test_consume_unknown_path_answers_json_404(served: Served) -> None:
    response = await served.client.get("/consume/nothing")
    assert_json_error(response.status, await response.json(), 404)
