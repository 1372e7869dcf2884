"""GET /consume/stream against a real worker, read with a real SSE client (httpx-sse): framing,
Last-Event-ID resume, where `from=latest` starts, heartbeats, the stream cap and teardown."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from tests.web.conftest import Dataset, assert_json_error, broker_connections, get

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
async def no_open_streams(dataset: Dataset) -> None:
    """Streams of the previous test may take up to a second to notice their client left; the
    dataset worker allows only four at a time (app.max_streams: 4)."""
    await wait_for(lambda: open_streams(dataset), 0)


def positions(event_id: str) -> dict[int, int]:
    return {int(p): int(o) for p, o in (entry.split(":") for entry in event_id.split(","))}


async def read_events(
    client: httpx.AsyncClient, url: str, count: int, headers: dict[str, str] | None = None
) -> tuple[ServerSentEvent, list[ServerSentEvent]]:
    """The opening block and the first `count` job events of a stream; then disconnect."""
    jobs: list[ServerSentEvent] = []
    opening = None
    async with (
        asyncio.timeout(20),
        aconnect_sse(client, "GET", url, headers=headers or {}) as source,
    ):
        assert source.response.status_code == 200
        async for event in source.aiter_sse():
            if opening is None:
                opening = event
                continue
            assert event.event == "job", event
            jobs.append(event)
            if len(jobs) == count:
                break
    assert opening is not None
    return opening, jobs


def check_ids(events: list[ServerSentEvent], start: dict[int, int]) -> list[dict[str, Any]]:
    """Each id advances exactly the partition of its message by one; returns the jobs."""
    at = dict(start)
    jobs = []
    for event in events:
        after = positions(event.id)
        moved = {p for p in after if after[p] != at.get(p)}
        assert len(moved) == 1, (at, after)
        (partition,) = moved
        assert after[partition] == at[partition] + 1
        at = after
        jobs.append(json.loads(event.data))
    return jobs


async def test_stream_from_earliest_sends_every_message_once_as_job_events(
    dataset: Dataset,
) -> None:
    total = len(dataset.messages)
    async with httpx.AsyncClient(timeout=30) as client:
        opening, events = await read_events(
            client, f"{dataset.url}/consume/stream?from=earliest", total
        )
    # The opening block: a reconnection delay and the start position, no data.
    assert opening.retry == 3000 and opening.data == ""  # httpx-sse names it "message"
    assert positions(opening.id) == {0: 0, 1: 0, 2: 0}
    jobs = check_ids(events, positions(opening.id))
    assert [j["id"] for j in jobs if j["id"] not in dataset.ids] == []
    assert len({j["id"] for j in jobs}) == total
    assert positions(events[-1].id) == dataset.ends()


async def test_stream_last_event_id_resumes_without_gap_or_repeat(dataset: Dataset) -> None:
    total = len(dataset.messages)
    url = f"{dataset.url}/consume/stream?from=earliest"
    async with httpx.AsyncClient(timeout=30) as client:
        opening, first = await read_events(client, url, 123)
        resumed_opening, second = await read_events(
            client, url, total - 123, headers={"Last-Event-ID": first[-1].id}
        )
    # The resumed stream starts where the first one stopped, and each of its events moves one
    # partition on by exactly one message: no gap, no repeat.
    assert resumed_opening.id == first[-1].id
    jobs = check_ids(first, positions(opening.id)) + check_ids(second, positions(first[-1].id))
    assert len(jobs) == len({j["id"] for j in jobs}) == total
    assert {j["id"] for j in jobs} == dataset.ids


async def test_stream_from_latest_starts_at_true_end_offsets(dataset: Dataset) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        async with aconnect_sse(client, "GET", f"{dataset.url}/consume/stream") as source:
            opening = await anext(source.aiter_sse())
    # The embedded broker reports end offsets short; the stream must not replay that tail.
    assert positions(opening.id) == dataset.ends()


async def test_stream_idle_sends_heartbeat_comments(dataset: Dataset) -> None:
    """The dataset worker runs with app.sse_heartbeat: 1 (the default is 15 s)."""
    received = b""
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", f"{dataset.url}/consume/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            started = time.monotonic()
            async for chunk in response.aiter_raw():
                received += chunk
                if received.count(b": ping") >= 2 or time.monotonic() - started > 5:
                    break
    assert received.count(b": ping") >= 2, received
    assert time.monotonic() - started < 3.5


async def open_streams(dataset: Dataset) -> int:
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"{dataset.url}/metrics")).text
    line = next(x for x in text.splitlines() if x.startswith("jobstream_sse_streams_open "))
    return int(float(line.split()[1]))


async def test_stream_cap_refuses_extra_stream_and_teardown_frees_everything(
    dataset: Dataset,
) -> None:
    """The dataset worker runs with app.max_streams: 4."""
    worker = dataset.stack.worker
    assert worker.process is not None
    broker_port = int(dataset.stack.bootstrap.rsplit(":", 1)[1])
    baseline = broker_connections(worker.process.pid, broker_port)
    async with httpx.AsyncClient(timeout=30) as client:
        streams = []
        for _ in range(4):
            context = aconnect_sse(client, "GET", f"{dataset.url}/consume/stream")
            source = await context.__aenter__()
            assert source.response.status_code == 200
            streams.append(context)
        assert await open_streams(dataset) == 4
        assert broker_connections(worker.process.pid, broker_port) > baseline
        extra = await client.get(f"{dataset.url}/consume/stream")
        assert_json_error(extra.status_code, extra.json(), 503)
        assert extra.headers["Retry-After"]

        await streams.pop().__aexit__(None, None, None)
        await wait_for(lambda: open_streams(dataset), 3)
        async with aconnect_sse(client, "GET", f"{dataset.url}/consume/stream") as source:
            assert source.response.status_code == 200
        for context in streams:
            await context.__aexit__(None, None, None)
    await wait_for(lambda: open_streams(dataset), 0)
    # Every stream's consumer is gone with it.
    deadline = time.monotonic() + 5
    while broker_connections(worker.process.pid, broker_port) > baseline:
        assert time.monotonic() < deadline, "stream consumers still connected to the broker"
        await asyncio.sleep(0.1)


async def wait_for(probe: Any, expected: int) -> None:
    deadline = time.monotonic() + 5
    while (value := await probe()) != expected:
        assert time.monotonic() < deadline, f"{value} != {expected}"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    "last_event_id",
    ["abc", "0:1,0:2", "9:0", "0:-1", "0:1;1:2", "0:1,", "0:99999999999999999999", "x" * 5000],
)
def test_stream_bad_last_event_id_answers_json_400(dataset: Dataset, last_event_id: str) -> None:
    status, body = get(f"{dataset.url}/consume/stream", **{"Last-Event-ID": last_event_id})
    assert_json_error(status, body, 400)


@pytest.mark.parametrize("query", ["from=middle", "from=", "from=latest&from=earliest", "x=1"])
def test_stream_bad_parameter_answers_json_400(dataset: Dataset, query: str) -> None:
    status, body = get(f"{dataset.url}/consume/stream?{query}")
    assert_json_error(status, body, 400)


async def test_stream_leaves_consume_group_untouched(dataset: Dataset) -> None:
    """Streams have no group: reading everything over SSE does not move the /consume group."""
    before = dataset.stack.worker.status()["kafka_lag"]
    async with httpx.AsyncClient(timeout=30) as client:
        url = f"{dataset.url}/consume/stream?from=earliest"
        await read_events(client, url, len(dataset.messages))
    await asyncio.sleep(1.1)  # the lag is measured at most once a second
    assert dataset.stack.worker.status()["kafka_lag"] == before > 0
