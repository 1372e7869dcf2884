"""GET /consume/stream: job_data as server-sent events, one `event: job` per message.

Each stream has its own consumer without a group, so it never moves the /consume group. Every
event's `id` is the stream's position in all partitions (`jobstream.web.positions`); a client
reconnecting with it as `Last-Event-ID` continues with the next message, no gap, no repeat.
The stream opens with `retry:` and an id-only block carrying the start position, so even a
client that saw no job yet resumes where it connected. aiohttp-sse sends the heartbeat
comments; the stream ends when the client leaves (checked four times a second) or the
worker stops, and its consumer goes with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from jobstream import metrics
from jobstream.web import params, positions
from jobstream.web.consume import client_gone
from jobstream.web.endpoint import Endpoint
from jobstream.web.probe import PROBE, BrokerProbe
from jobstream.web.responses import HttpError, unavailable
from jobstream.web.stream_registry import STREAMS, OpenStream

logger = logging.getLogger(__name__)

RETRY_MS = 3000
# How long the pump waits for messages before it looks again whether the client is still there.
POLL_MS = 250
MAX_EVENTS_PER_POLL = 500
# A client that takes longer than this to accept a write is cut off (aiohttp-sse's guard).
SEND_TIMEOUT = 60.0


class EventStream(EventSourceResponse):
    """aiohttp-sse's response (event framing, heartbeats, the send timeout) that writes all
    events of one Kafka poll with one system call instead of one per event: with a hundred
    streams, per-event writes were the worker's largest cost."""

    def __init__(self, *, ping_interval: float) -> None:
        super().__init__(ping_interval=ping_interval, send_timeout=SEND_TIMEOUT)
        self._pending: list[bytes | bytearray | memoryview] | None = None
        self._request: web.BaseRequest | None = None

    async def prepare(self, request: web.BaseRequest) -> Any:
        self._request = request
        return await super().prepare(request)

    async def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._pending is not None:
            self._pending.append(data)
            return
        await super().write(data)

    async def send_jobs(self, jobs: list[tuple[str, str]]) -> None:
        """Send (data, id) pairs as `event: job` events, written at once."""
        self._pending = []
        try:
            for data, event_id in jobs:
                await self.send(data, id=event_id, event="job")
            chunk = b"".join(self._pending)
        finally:
            self._pending = None
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await super().write(chunk)
        except ConnectionResetError:
            self.stop_streaming()
            raise
        except TimeoutError:
            self.stop_streaming()
            # A stalled peer never drains the buffer; closing gracefully would wait forever.
            if self._request is not None and self._request.transport is not None:
                self._request.transport.abort()
            raise


class StreamView(Endpoint):
    methods_allowed = frozenset({"GET"})
    access = "read"
    params = frozenset({"from"})

    async def get(self, request: web.Request) -> web.StreamResponse:
        start = params.choice(request, "from", ("latest", "earliest"), "latest")
        last_event_id = request.headers.get("Last-Event-ID", "").strip()
        probe = request.app[PROBE]
        tps = probe.require_topic()
        resume = None
        if last_event_id:
            try:
                resume = positions.decode(last_event_id, len(tps))
            except ValueError as exc:
                raise HttpError(400, f"Last-Event-ID: {exc}") from None
        async with request.app[STREAMS].open(tps) as stream:
            try:
                at = await self._position(probe, stream.consumer, tps, start, resume)
            except (KafkaError, TimeoutError):
                raise unavailable("Kafka did not answer in time; retry later") from None
            return await self._stream(request, stream, at)

    async def _position(
        self,
        probe: BrokerProbe,
        consumer: AIOKafkaConsumer,
        tps: list[TopicPartition],
        start: str,
        resume: dict[int, int] | None,
    ) -> dict[int, int]:
        if resume is not None:
            for tp in tps:
                if tp.partition in resume:
                    consumer.seek(tp, resume[tp.partition])
                else:
                    await consumer.seek_to_beginning(tp)
        elif start == "earliest":
            await consumer.seek_to_beginning(*tps)
        else:
            for tp, end in (await probe.true_end_offsets()).items():
                consumer.seek(tp, end)

        async def positions() -> dict[int, int]:
            return {tp.partition: await consumer.position(tp) for tp in tps}

        return await probe.bounded(positions(), probe.timeout)

    async def _stream(
        self, request: web.Request, stream: OpenStream, at: dict[int, int]
    ) -> EventStream:
        response = EventStream(ping_interval=self.config.app.sse_heartbeat)
        await response.prepare(request)
        stream.attach(response)
        tasks: list[asyncio.Future[None]] = []
        try:
            # Opening block: the reconnection delay, and the start position as the last event
            # id (a block without data sets the id and dispatches nothing).
            opening = f"retry: {RETRY_MS}\r\nid: {positions.encode(at)}\r\n\r\n"
            await response.write(opening.encode())
            tasks = [
                asyncio.create_task(self._pump(request, response, stream.consumer, at)),
                asyncio.ensure_future(response.wait()),
            ]
            # Ends when the client goes (the heartbeat or an event fails to write, or the pump
            # sees the socket closed) or when the registry ends every stream at shutdown.
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            response.stop_streaming()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return response

    async def _pump(
        self,
        request: web.Request,
        response: EventStream,
        consumer: AIOKafkaConsumer,
        at: dict[int, int],
    ) -> None:
        sent = 0
        try:
            while not client_gone(request):
                batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_EVENTS_PER_POLL)
                jobs = []
                for tp in sorted(batch, key=lambda t: t.partition):
                    for record in batch[tp]:
                        at[tp.partition] = record.offset + 1
                        data = record.value.decode("utf-8", errors="replace")
                        jobs.append((data, positions.encode(at)))
                if jobs:
                    await response.send_jobs(jobs)
                    sent += len(jobs)
                    metrics.STREAM_EVENTS.inc(len(jobs))
        except (ConnectionError, TimeoutError):
            pass  # the client left, or stopped reading (aiohttp-sse's send timeout)
        except Exception:
            logger.exception("SSE stream failed at %s", positions.encode(at))
        finally:
            logger.info("SSE stream closed after %d events at %s", sent, positions.encode(at))
