"""GET /consume/stream in-process, read with a real SSE client (httpx-sse): framing,
Last-Event-ID resume, where `from=latest` starts, heartbeats, the stream cap and teardown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from msgspec.structs import replace

from tests.harness import wait_until_async
from tests.web.conftest import Dataset, Served, ServeFactory, assert_json_error, config_for


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
    served: Served, dataset: Dataset
) -> None:
    total = len(dataset.messages)
    async with httpx.AsyncClient(timeout=30) as client:
        opening, events = await read_events(
            client, f"{served.url}/consume/stream?from=earliest", total
        )
    # The opening block: a reconnection delay and the start position, no data.
    assert opening.retry == 3000 and opening.data == ""  # httpx-sse names it "message"
    assert positions(opening.id) == {0: 0, 1: 0, 2: 0}
    jobs = check_ids(events, positions(opening.id))
    assert [j["id"] for j in jobs if j["id"] not in dataset.ids] == []
    assert len({j["id"] for j in jobs}) == total
    assert positions(events[-1].id) == dataset.ends()


async def test_stream_last_event_id_resumes_without_gap_or_repeat(
    served: Served, dataset: Dataset
) -> None:
    total = len(dataset.messages)
    url = f"{served.url}/consume/stream?from=earliest"
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


async def test_stream_from_latest_starts_at_true_end_offsets(
    served: Served, dataset: Dataset
) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        async with aconnect_sse(client, "GET", f"{served.url}/consume/stream") as source:
            opening = await anext(source.aiter_sse())
    # The embedded broker reports end offsets short; the stream must not replay that tail.
    assert positions(opening.id) == dataset.ends()


async def test_stream_idle_sends_heartbeat_comments(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    """Two heartbeats on an idle stream. app.sse_heartbeat is at least 1 s in a config file; a
    tenth of that here keeps the test short (the Struct takes any value in code)."""
    config = config_for(dataset.bootstrap, dataset.topic)
    config = replace(config, app=replace(config.app, sse_heartbeat=0.1))
    served = await serve_factory(config=config)
    received = b""
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", f"{served.url}/consume/stream") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            async with asyncio.timeout(10):
                async for chunk in response.aiter_raw():
                    received += chunk
                    if received.count(b": ping") >= 2:
                        break
    assert received.count(b": ping") >= 2, received


async def test_stream_cap_refuses_extra_stream_and_teardown_frees_everything(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    served = await serve_factory(dataset.topic, app={"max_streams": 4})
    async with httpx.AsyncClient(timeout=30) as client:
        streams = []
        for _ in range(4):
            context = aconnect_sse(client, "GET", f"{served.url}/consume/stream")
            source = await context.__aenter__()
            assert source.response.status_code == 200
            streams.append(context)
        assert served.streams.count == 4
        # Live streams read the shared tail: none has a consumer of its own.
        assert [stream.consumer for stream in served.streams._open] == [None] * 4
        assert served.streams.tail.subscribers == 4
        extra = await client.get(f"{served.url}/consume/stream")
        assert_json_error(extra.status_code, extra.json(), 503)
        assert extra.headers["Retry-After"]

        await streams.pop().__aexit__(None, None, None)
        await open_streams_become(served, 3)
        async with aconnect_sse(client, "GET", f"{served.url}/consume/stream") as source:
            assert source.response.status_code == 200
        for context in streams:
            await context.__aexit__(None, None, None)
    await open_streams_become(served, 0)
    assert served.streams.tail.subscribers == 0


async def open_streams_become(served: Served, expected: int) -> None:
    async def count() -> bool:
        return served.streams.count == expected

    await wait_until_async(count, what=f"{expected} open streams")


@pytest.mark.parametrize("query", ["", "?from=earliest"], ids=["tail", "own-reader"])
async def test_stream_shutdown_ends_open_streams(
    serve_factory: ServeFactory, dataset: Dataset, query: str
) -> None:
    """A live stream (on the shared tail) and one reading on its own both end."""
    served = await serve_factory(dataset.topic)
    async with httpx.AsyncClient(timeout=30) as client:
        async with aconnect_sse(client, "GET", f"{served.url}/consume/stream{query}") as source:
            events = source.aiter_sse()
            await anext(events)  # the opening block: the stream is open
            # What the worker's web server does first when it stops (aiohttp's on_shutdown).
            await served.client.app.shutdown()
            async with asyncio.timeout(10):
                async for _ in events:
                    pass
    await open_streams_become(served, 0)
    refused = await served.client.get("/consume/stream")
    assert_json_error(refused.status, await refused.json(), 503)


@pytest.mark.parametrize(
    "last_event_id",
    ["abc", "0:1,0:2", "9:0", "0:-1", "0:1;1:2", "0:1,", "0:99999999999999999999", "x" * 5000],
)
async def test_stream_bad_last_event_id_answers_json_400(
    served: Served, last_event_id: str
) -> None:
    response = await served.client.get("/consume/stream", headers={"Last-Event-ID": last_event_id})
    assert_json_error(response.status, await response.json(), 400)


@pytest.mark.parametrize("query", ["from=middle", "from=", "from=latest&from=earliest", "x=1"])
async def test_stream_bad_parameter_answers_json_400(served: Served, query: str) -> None:
    response = await served.client.get(f"/consume/stream?{query}")
    assert_json_error(response.status, await response.json(), 400)


async def test_stream_leaves_consume_group_untouched(served: Served, dataset: Dataset) -> None:
    """Streams have no group: reading everything over SSE does not move the /consume group."""
    before = (await served.probe.lag(max_age=0)).total
    async with httpx.AsyncClient(timeout=30) as client:
        url = f"{served.url}/consume/stream?from=earliest"
        await read_events(client, url, len(dataset.messages))
    assert (await served.probe.lag(max_age=0)).total == before
    assert before is not None and before > 0
