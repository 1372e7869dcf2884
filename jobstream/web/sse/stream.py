"""GET /consume/stream: job_data as server-sent events, one `event: job` per message.

A live stream (`from=latest`, no Last-Event-ID) reads the worker's shared tail
(`jobstream.web.sse.tail`): one consumer for every live stream, each message encoded once, the same
bytes queued for each of them. A stream that starts earlier (`from=earliest`, a Last-Event-ID)
reads with a consumer of its own, without a group so it never moves the /consume group, until
it is within JOIN_LAG messages of the tail; then it takes a place at the tail, reads on its own
exactly up to where that place starts, closes its consumer and goes on from the tail.

Every event's `id` is the stream's position in all partitions (`jobstream.web.sse.positions`),
whichever reader it came from; a client reconnecting with it as `Last-Event-ID` continues with
the next message, no gap, no repeat. The stream opens with `retry:` and an id-only block
carrying the start position, so even a client that saw no job yet resumes where it connected.

A client that falls QUEUE_BYTES behind the tail is disconnected at once (the others never wait
for it); it reconnects with its last id and catches up on a reader of its own. The stream ends
when the client leaves (checked four times a second) or the worker stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import web
from aiohttp_sse import EventSourceResponse
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from jobstream import metrics
from jobstream.broker.probe import BrokerProbe
from jobstream.web.consume import client_gone
from jobstream.web.endpoint import Body, Doc, Endpoint, Refusal
from jobstream.web.params import Choice, Pattern
from jobstream.web.responses import HttpError, unavailable
from jobstream.web.services import RUNTIME
from jobstream.web.sse import events, positions
from jobstream.web.sse.registry import STREAMS, OpenStream, StreamRegistry
from jobstream.web.sse.tail import MAX_EVENTS_PER_POLL, POLL_MS, Subscription

logger = logging.getLogger(__name__)

# A client that takes longer than this to accept a write is cut off (aiohttp-sse's guard).
CLIENT_WRITE_TIMEOUT = 60.0
# A stream reading on its own joins the tail once it is at most this many messages behind it.
JOIN_LAG = 2000

Batch = dict[TopicPartition, list[ConsumerRecord]]


FROM = Choice(
    "from", "没有 Last-Event-ID 时从哪里开始", choices=("latest", "earliest"), default="latest"
)
LAST_EVENT_ID = Pattern(
    "Last-Event-ID",
    "上次收到的事件 id，用于断点续传",
    where="header",
    pattern=r"[0-9]{1,5}:[0-9]{1,19}(,[0-9]{1,5}:[0-9]{1,19})*",
)


class StreamView(Endpoint):
    methods_allowed = frozenset({"GET"})
    access = "read"
    params = (FROM, LAST_EVENT_ID)
    doc = Doc(
        "SSE 流式消费 job_data",
        "消费",
        {
            200: Body("事件流（连接保持，直到客户端断开或服务停止）", "text/event-stream"),
            503: Refusal("Kafka 不可用，或同时打开的流已达上限"),
        },
        "text/event-stream：每条消息一个 `event: job`，`data:` 为岗位 JSON，"
        "`id:` 为各分区的位置（如 `0:15,1:9,2:12`）。断线后带 `Last-Event-ID` "
        "重连即从下一条继续，不丢不重。空闲时每隔不超过 15 秒发送心跳注释。"
        "不影响 /consume 消费组的位置。读得太慢（落后超过 8 MiB）的客户端会被断开，"
        "带 Last-Event-ID 重连即可继续。",
    )

    async def get(self, request: web.Request) -> web.StreamResponse:
        start = FROM.read(request)
        last_event_id = request.headers.get("Last-Event-ID", "").strip()
        probe = request.app[RUNTIME].probe
        tps = probe.require_topic()
        resume = None
        if last_event_id:
            try:
                resume = positions.decode(last_event_id, len(tps))
            except ValueError as exc:
                raise HttpError(400, f"Last-Event-ID: {exc}") from None
        registry = request.app[STREAMS]
        async with registry.open() as stream:
            try:
                tail_ready = await registry.tail.start(tps)
                subscription = None
                if resume is None and start == "latest" and tail_ready:
                    subscription = registry.tail.subscribe(stream.cut_off)
                    at = dict(subscription.start)
                else:
                    consumer = await registry.own_reader(stream, tps)
                    at = await self._position(probe, consumer, tps, start, resume)
            except (KafkaError, TimeoutError):
                raise unavailable("Kafka did not answer in time; retry later") from None
            try:
                return await self._stream(request, registry, stream, at, subscription)
            finally:
                if subscription is not None:
                    registry.tail.unsubscribe(subscription)

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
        self,
        request: web.Request,
        registry: StreamRegistry,
        stream: OpenStream,
        at: dict[int, int],
        subscription: Subscription | None,
    ) -> EventSourceResponse:
        # aiohttp-sse still frames the response: its headers, the heartbeat comments, the
        # kernel's TCP_USER_TIMEOUT for a peer that stopped acknowledging, and stop_streaming()
        # for shutdown. Its send() encodes one event per call for one response; the events here
        # are encoded once for every stream (`jobstream.web.sse.events`) and written as raw bytes,
        # all that is queued in one write.
        response = EventSourceResponse(
            ping_interval=self.config.app.sse_heartbeat, send_timeout=CLIENT_WRITE_TIMEOUT
        )
        await response.prepare(request)
        stream.attach(request, response)
        pump = Pump(request, response, registry, stream, at)
        tasks: list[asyncio.Future[None]] = []
        try:
            await response.write(events.opening(at))
            tasks = [
                asyncio.create_task(pump.run(subscription)),
                asyncio.ensure_future(response.wait()),
            ]
            # Ends when the client goes (the heartbeat or an event fails to write, or the pump
            # sees the socket closed), when it falls too far behind the tail, or when the
            # registry ends every stream at shutdown.
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


class Pump:
    """What one stream sends: from its own consumer until it joins the tail, then from the
    tail; `at` is the position its last event (or its opening) announced."""

    def __init__(
        self,
        request: web.Request,
        response: EventSourceResponse,
        registry: StreamRegistry,
        stream: OpenStream,
        at: dict[int, int],
    ) -> None:
        self.request = request
        self.response = response
        self.registry = registry
        self.stream = stream
        self.at = at
        self.last_id = positions.encode(at)
        self.sent = 0

    async def run(self, subscription: Subscription | None) -> None:
        try:
            if subscription is None:
                subscription = await self._catch_up()
            if subscription is not None:
                await self._follow(subscription)
        except (ConnectionError, TimeoutError):
            pass  # the client left, or stopped reading
        except Exception:
            logger.exception("SSE stream failed at %s", self.last_id)
        finally:
            how = "cut off: it fell behind the tail" if self.stream.cut else "closed"
            log = logger.warning if self.stream.cut else logger.info
            log("SSE stream %s after %d events at %s", how, self.sent, self.last_id)

    async def _follow(self, subscription: Subscription) -> None:
        while not (client_gone(self.request) or subscription.ended or subscription.overflowed):
            chunk, count, last_id = await subscription.take(POLL_MS / 1000)
            if count:
                await self._write(chunk, count, last_id)

    async def _catch_up(self) -> Subscription | None:
        """Send from the stream's own consumer until it stands where its place at the tail
        starts; that place (None if the client left first)."""
        consumer = self.stream.consumer
        assert consumer is not None
        tail = self.registry.tail
        joining: Subscription | None = None
        while not client_gone(self.request):
            if joining is None and tail.running and self._near(tail.position):
                joining = tail.subscribe(self.stream.cut_off)
                self._pause_reached(consumer, joining.start)
            if joining is not None:
                if joining.ended or joining.overflowed:
                    return None
                if all(self.at[p] >= joining.start[p] for p in joining.start):
                    await self.registry.close_reader(self.stream)
                    logger.info("SSE stream joined the tail at %s", self.last_id)
                    return joining
            batch = await consumer.getmany(timeout_ms=POLL_MS, max_records=MAX_EVENTS_PER_POLL)
            if joining is not None:
                batch = _before(batch, joining.start)
            chunk, count = events.job_events(batch, self.at)
            if joining is not None:
                self._pause_reached(consumer, joining.start)
            if count:
                await self._write(chunk, count, positions.encode(self.at))
        return None

    def _near(self, tail: dict[int, int]) -> bool:
        """The stream is behind the tail (or level with it) in every partition, and not by more
        than JOIN_LAG messages in all."""
        if tail.keys() != self.at.keys():
            return False
        behind = [tail[p] - self.at[p] for p in tail]
        return min(behind) >= 0 and sum(behind) <= JOIN_LAG

    def _pause_reached(self, consumer: AIOKafkaConsumer, start: dict[int, int]) -> None:
        reached = [
            tp for tp in consumer.assignment() if self.at[tp.partition] >= start[tp.partition]
        ]
        consumer.pause(*reached)

    async def _write(self, chunk: bytes, count: int, last_id: str) -> None:
        try:
            async with asyncio.timeout(CLIENT_WRITE_TIMEOUT):
                await self.response.write(chunk)
        except TimeoutError:
            # A stalled peer never drains the buffer; closing gracefully would wait forever.
            self.stream.end()
            if self.request.transport is not None:
                self.request.transport.abort()
            raise
        self.sent += count
        self.last_id = last_id
        metrics.STREAM_EVENTS.inc(count)


def _before(batch: Batch, start: dict[int, int]) -> Batch:
    """The records of `batch` below the tail place's start: what the stream reads on its own."""
    return {
        tp: [r for r in records if r.offset < start[tp.partition]] for tp, records in batch.items()
    }
