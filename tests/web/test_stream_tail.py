"""GET /consume/stream's shared tail: many live clients on one reader, each getting every new
message once and in order; a client that stops reading is cut off without holding up the
others, and resumes from its last id; a resumed stream catches up on its own reader and then
joins the tail; shutdown ends streams of both kinds."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse

from jobstream.web.sse import tail
from tests.harness import wait_until_async
from tests.web.conftest import (
    Message,
    Served,
    ServeFactory,
    create_topic,
    make_job,
    produce,
)
from tests.web.test_stream import check_ids, open_streams_become, positions


async def served_over_new_topic(serve_factory: ServeFactory, bootstrap: str) -> Served:
    topic = f"tail_{uuid.uuid4().hex[:8]}"
    await create_topic(bootstrap, topic)
    served = await serve_factory(topic)

    async def topic_seen() -> int | None:
        return served.probe.partitions

    await wait_until_async(topic_seen, what="the topic seen by the probe")
    return served


class Reader:
    """One SSE client reading in the background: its opening block and its job events."""

    def __init__(self, client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None):
        self.opening: ServerSentEvent | None = None
        self.jobs: list[ServerSentEvent] = []
        self.opened = asyncio.Event()
        self._task = asyncio.create_task(self._read(client, url, headers or {}))

    async def _read(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with aconnect_sse(client, "GET", url, headers=headers) as source:
            assert source.response.status_code == 200
            async for event in source.aiter_sse():
                if self.opening is None:
                    self.opening = event
                    self.opened.set()
                else:
                    assert event.event == "job", event
                    self.jobs.append(event)

    async def until(self, count: int) -> list[dict[str, Any]]:
        async def enough() -> bool:
            assert not self._task.done() or self._task.exception() is None
            return len(self.jobs) >= count

        await wait_until_async(enough, within=20, what=f"{count} events")
        assert self.opening is not None
        return check_ids(self.jobs, positions(self.opening.id))

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


def in_partition_order(messages: list[Message]) -> dict[int, list[str]]:
    order: dict[int, list[str]] = {}
    for m in sorted(messages, key=lambda m: (m.partition, m.offset)):
        order.setdefault(m.partition, []).append(m.job["id"])
    return order


def by_partition(jobs: list[dict[str, Any]], messages: list[Message]) -> dict[int, list[str]]:
    where = {m.job["id"]: m.partition for m in messages}
    order: dict[int, list[str]] = {}
    for job in jobs:
        order.setdefault(where[job["id"]], []).append(job["id"])
    return order


async def test_stream_tail_many_live_clients_get_every_message_in_order_once(
    serve_factory: ServeFactory, session_broker: Any
) -> None:
    served = await served_over_new_topic(serve_factory, session_broker.bootstrap)
    async with httpx.AsyncClient(timeout=30) as client:
        readers = [Reader(client, f"{served.url}/consume/stream") for _ in range(20)]
        for reader in readers:
            await asyncio.wait_for(reader.opened.wait(), 20)
        # All of them on the one shared reader, none with a consumer of its own.
        assert served.streams.tail.subscribers == 20
        assert all(stream.consumer is None for stream in served.streams._open)
        messages = await produce(served.bootstrap, served.topic, [make_job(n) for n in range(400)])
        for reader in readers:
            jobs = await reader.until(len(messages))
            assert len(jobs) == len({j["id"] for j in jobs}) == len(messages)
            assert by_partition(jobs, messages) == in_partition_order(messages)
        for reader in readers:
            await reader.close()
    await open_streams_become(served, 0)
    assert served.streams.tail.subscribers == 0


def stalled_client(url: str) -> socket.socket:
    """A client with a tiny receive window that sends its request and never reads."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.sendall(f"GET /consume/stream HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    return sock


def received_by(sock: socket.socket) -> bytes:
    """What the stalled client finds in its socket once it reads again, up to the end."""
    sock.setblocking(True)
    sock.settimeout(10)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        sock.close()
    return received


def dechunked(body: bytes) -> bytes:
    """The payload of a chunked HTTP body, as far as it arrived."""
    payload = b""
    while True:
        size_line, found, rest = body.partition(b"\r\n")
        if not found or int(size_line, 16) == 0:
            return payload
        size = int(size_line, 16)
        payload += rest[:size]
        if len(rest) < size + 2:
            return payload
        body = rest[size + 2 :]


def complete_events(payload: bytes) -> tuple[str, list[dict[str, Any]]]:
    """The last id among the whole blocks of an SSE payload, and the jobs they carry."""
    last_id, jobs = "", []
    for block in payload.split(b"\r\n\r\n")[:-1]:
        for line in block.split(b"\r\n"):
            if line.startswith(b"id: "):
                last_id = line[4:].decode()
            elif line.startswith(b"data: "):
                jobs.append(json.loads(line[6:]))
    return last_id, jobs


async def test_stream_tail_stalled_client_is_cut_off_and_others_get_everything(
    serve_factory: ServeFactory, session_broker: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tail, "QUEUE_BYTES", 256 * 1024)
    served = await served_over_new_topic(serve_factory, session_broker.bootstrap)
    async with httpx.AsyncClient(timeout=30) as client:
        fast = Reader(client, f"{served.url}/consume/stream")
        await asyncio.wait_for(fast.opened.wait(), 20)
        sock = await asyncio.to_thread(stalled_client, served.url)

        async def both_at_the_tail() -> bool:
            return served.streams.tail.subscribers == 2

        await wait_until_async(both_at_the_tail, what="the stalled client at the tail")
        # Batches until the stalled client is cut off: its kernel buffers (megabytes on
        # loopback) fill first, then its queue at the tail...
        messages: list[Message] = []
        while served.streams.count == 2:
            assert len(messages) < 30_000, "the stalled client was never cut off"
            jobs = [make_job(n) for n in range(len(messages), len(messages) + 500)]
            messages += await produce(served.bootstrap, served.topic, jobs)
            await asyncio.sleep(0.1)
        # ...while the fast client gets every message.
        jobs = await fast.until(len(messages))
        assert len({j["id"] for j in jobs}) == len(messages)
        assert served.streams.tail.subscribers == 1
        raw = await asyncio.to_thread(received_by, sock)
        # It resumes with the last id it received whole, and gets the rest: no gap, no repeat.
        last_id, stalled_jobs = complete_events(dechunked(raw.partition(b"\r\n\r\n")[2]))
        resumed = Reader(client, f"{served.url}/consume/stream", headers={"Last-Event-ID": last_id})
        rest = await resumed.until(len(messages) - len(stalled_jobs))
        every = [j["id"] for j in stalled_jobs + rest]
        assert len(every) == len(set(every)) == len(messages)
        await fast.close()
        await resumed.close()
    await open_streams_become(served, 0)


async def test_stream_tail_last_event_id_catches_up_then_joins_the_tail(
    serve_factory: ServeFactory, session_broker: Any
) -> None:
    served = await served_over_new_topic(serve_factory, session_broker.bootstrap)
    url = f"{served.url}/consume/stream"
    async with httpx.AsyncClient(timeout=30) as client:
        first = Reader(client, url)
        await asyncio.wait_for(first.opened.wait(), 20)
        messages = await produce(served.bootstrap, served.topic, [make_job(n) for n in range(200)])
        got = await first.until(77)
        last_id = first.jobs[76].id
        await first.close()
        # Written while the client is away: the resumed stream reads them on its own reader.
        messages += await produce(
            served.bootstrap, served.topic, [make_job(n) for n in range(200, 400)]
        )
        resumed = Reader(client, url, headers={"Last-Event-ID": last_id})
        await asyncio.wait_for(resumed.opened.wait(), 20)
        assert resumed.opening is not None and resumed.opening.id == last_id
        rest = await resumed.until(len(messages) - 77)

        async def on_the_tail() -> bool:
            return served.streams.tail.subscribers == 1 and all(
                stream.consumer is None for stream in served.streams._open
            )

        await wait_until_async(on_the_tail, what="the resumed stream on the tail")
        # Written after it joined: they come from the tail, ids continuing without a seam.
        messages += await produce(
            served.bootstrap, served.topic, [make_job(n) for n in range(400, 500)]
        )
        rest = await resumed.until(len(messages) - 77)
        await resumed.close()
    every = [j["id"] for j in got[:77] + rest]
    assert len(every) == len(set(every)) == len(messages)
    assert by_partition(got[:77] + rest, messages) == in_partition_order(messages)
