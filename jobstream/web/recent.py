"""GET /messages/recent: the newest messages of job_data or job_rejects (with the reason each row
was rejected), for the dashboard's viewer and for anyone who wants to look without a Kafka
client.

Each partition is read from near its true end: the embedded broker reports end offsets short by
up to a batch (see jobstream.broker.lag), so the reader asks for the real ends first and reads
up to them. Without `task_id` the newest `limit` messages are among the last `limit` of each
partition; with it, up to `SCAN_PER_PARTITION` messages of each partition are looked through,
and the answer says how many were (`scanned`) and whether that reached the partitions' starts
(`complete`). Nothing here belongs to a consumer group or moves one.

Messages are untrusted bytes: a value larger than `VALUE_BYTES`, or one that is not JSON, is
answered as an excerpt of its text.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import msgspec
from aiohttp import web
from aiokafka import AIOKafkaClient, AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord
from mode import Service

from jobstream.broker.clients import client_options, start_or_close, stream_reader
from jobstream.broker.lag import LagProbe
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config
from jobstream.errors import BrokerUnavailable
from jobstream.limits import EXCERPT_BYTES
from jobstream.web import params
from jobstream.web.endpoint import Doc, JsonView, Ok, Refusal
from jobstream.web.params import Choice, Integer, TaskId

logger = logging.getLogger(__name__)

TOPICS = ("data", "rejects")
TOPIC = Choice(
    "topic",
    "data：job_data；rejects：job_rejects（带被拒绝的原因）",
    choices=TOPICS,
    default="data",
)
LIMIT = Integer("limit", "最多返回的条数", low=1, high=100, default=20)
# With task_id: how far back each partition is looked through.
SCAN_PER_PARTITION = 2000
# A larger value is answered as an excerpt (a reject keeps rows up to 64 KB; a job's description
# may be near a megabyte).
VALUE_BYTES = 32 * 1024
# Longest a read takes; what was read by then is answered, `complete` false.
READ_SECONDS = 5.0
FETCH_BYTES = 1024 * 1024


def _about(text: str) -> msgspec.Meta:
    return msgspec.Meta(description=text)


class RecentMessage(msgspec.Struct, frozen=True):
    """Kafka 中的一条消息"""

    partition: int
    offset: int
    timestamp: Annotated[str | None, _about("消息的时间（ISO 8601）")]
    key: Annotated[
        str | None, _about("消息的 key（job_data：职位 id；job_rejects：task_id:offset）")
    ]
    value: Annotated[
        Any, _about("消息内容（job_data：Job；job_rejects：Reject）；过大或不是 JSON 时为 null")
    ]
    bytes: Annotated[int, _about("消息内容的字节数")]
    excerpt: Annotated[str, _about("value 为 null 时，内容开头的片段（最多 4096 字节）")] = ""


class RecentMessages(msgspec.Struct, frozen=True):
    """job_data 或 job_rejects 中最新的消息，新的在前"""

    topic: Annotated[str, _about("读取的主题")]
    task_id: Annotated[str | None, _about("只列出该任务的消息；null 为所有任务")]
    limit: int
    scanned: Annotated[int, _about("读过的消息数")]
    complete: Annotated[
        bool, _about("false：没有读到各分区的开头（只看了最近的一部分），或读取超时")
    ]
    messages: list[RecentMessage]


class RecentReader(Service):
    """One consumer (no group) and one metadata client, shared by the views one read at a
    time; the true ends come from a lag probe of its own."""

    def __init__(self, config: Config, probe: BrokerProbe, **kwargs: object) -> None:
        self.config = config
        self.probe = probe
        self._options = client_options(config)
        self._ends = LagProbe(self._options)
        self._consumer: AIOKafkaConsumer | None = None
        self._client: AIOKafkaClient | None = None
        self._lock = asyncio.Lock()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    async def on_stop(self) -> None:
        await self._ends.close()
        if self._consumer is not None:
            await self._consumer.stop()
        if self._client is not None:
            await self._client.close()

    def topic_name(self, topic: str) -> str:
        kafka = self.config.kafka
        return kafka.rejects_topic if topic == "rejects" else kafka.topic

    async def read(self, topic: str, task_id: str | None, limit: int) -> RecentMessages:
        """The newest `limit` messages of `topic` ("data" or "rejects"), of `task_id` only when
        given; 503 (BrokerUnavailable) when Kafka cannot be reached."""
        if not self.probe.started or self.probe.should_stop:
            raise BrokerUnavailable("the worker is starting or stopping; retry shortly")
        if not self.probe.broker_up:
            raise BrokerUnavailable("Kafka is unreachable; retry later")
        name = self.topic_name(topic)
        async with self._lock:
            try:
                return await self.probe.bounded(
                    self._read(name, task_id, limit), READ_SECONDS + self.probe.timeout
                )
            except TimeoutError:
                raise BrokerUnavailable("Kafka did not answer in time; retry later") from None

    async def _read(self, name: str, task_id: str | None, limit: int) -> RecentMessages:
        tps = await self._partitions(name)
        if not tps:
            return RecentMessages(name, task_id, limit, 0, True, [])
        ends = await self._ends.true_end_offsets(tps)
        consumer = await self._reader()
        consumer.assign(tps)
        starts = await consumer.beginning_offsets(tps)
        window = SCAN_PER_PARTITION if task_id is not None else limit
        first = {tp: max(starts[tp], ends[tp] - window) for tp in tps}
        for tp in tps:
            consumer.seek(tp, first[tp])
        try:
            records, finished = await self._until_ends(consumer, ends, first)
        finally:
            # Paused between reads: an assigned consumer would go on fetching at the end.
            consumer.pause(*tps)
        complete = finished and all(first[tp] <= starts[tp] for tp in tps)
        chosen = [
            message
            for record in records
            if (message := self._message(record, name, task_id)) is not None
        ]
        chosen.sort(key=lambda m: (m[0], m[1].partition, m[1].offset), reverse=True)
        return RecentMessages(
            topic=name,
            task_id=task_id,
            limit=limit,
            scanned=len(records),
            complete=complete,
            messages=[message for _, message in chosen[:limit]],
        )

    async def _until_ends(
        self,
        consumer: AIOKafkaConsumer,
        ends: dict[TopicPartition, int],
        first: dict[TopicPartition, int],
    ) -> tuple[list[ConsumerRecord[bytes, bytes]], bool]:
        """Every record from `first` up to `ends`; whether all were read in READ_SECONDS."""
        records: list[ConsumerRecord[bytes, bytes]] = []
        remaining = {tp for tp in ends if first[tp] < ends[tp]}
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(READ_SECONDS):
                while remaining:
                    batch = await consumer.getmany(*remaining, timeout_ms=200)
                    for tp, found in batch.items():
                        records.extend(r for r in found if r.offset < ends[tp])
                    for tp in list(remaining):
                        if await consumer.position(tp) >= ends[tp]:
                            remaining.discard(tp)
        return records, not remaining

    def _message(
        self, record: ConsumerRecord[bytes, bytes], topic: str, task_id: str | None
    ) -> tuple[int, RecentMessage] | None:
        raw = record.value or b""
        key = record.key.decode(errors="replace") if record.key is not None else None
        value: Any = None
        if len(raw) <= VALUE_BYTES or task_id is not None:
            try:
                value = msgspec.json.decode(raw)
            except msgspec.DecodeError:
                value = None
        if task_id is not None and _task_of(topic, key, value, self.config) != task_id:
            return None
        excerpt = ""
        if value is None or len(raw) > VALUE_BYTES:
            value = None
            excerpt = raw[:EXCERPT_BYTES].decode(errors="replace")
        stamp = None
        if record.timestamp is not None and record.timestamp >= 0:
            stamp = datetime.fromtimestamp(record.timestamp / 1000, self.config.tz).isoformat(
                timespec="milliseconds"
            )
        message = RecentMessage(
            partition=record.partition,
            offset=record.offset,
            timestamp=stamp,
            key=key,
            value=value,
            bytes=len(raw),
            excerpt=excerpt,
        )
        return (record.timestamp or 0, message)

    async def _partitions(self, name: str) -> list[TopicPartition]:
        if self._client is None:
            client = AIOKafkaClient(client_id="jobstream-recent", **self._options)
            await start_or_close(client.bootstrap(), client.close)
            self._client = client
        cluster = await self._client.fetch_all_metadata()
        found = cluster.partitions_for_topic(name)
        return [TopicPartition(name, p) for p in sorted(found or ())]

    async def _reader(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = stream_reader(
                self._options,
                "jobstream-recent",
                self.config.kafka.fetch_max_wait_ms,
                FETCH_BYTES,
            )
            await start_or_close(consumer.start(), consumer.stop)
            self._consumer = consumer
        return self._consumer


def _task_of(topic: str, key: str | None, value: Any, config: Config) -> str | None:
    """The task a message belongs to: a reject's key is `task_id:offset`, a job names it."""
    if isinstance(value, dict) and isinstance(value.get("task_id"), str):
        return str(value["task_id"])
    if topic == config.kafka.rejects_topic and key is not None:
        return key.rpartition(":")[0]
    return None


RECENT = web.AppKey("jobstream.recent", RecentReader)


@dataclass(frozen=True)
class TaskFilter(TaskId):
    """A configured task id that narrows the answer; none given: every task."""

    def describe(self, config: Config) -> str:
        return self.description


TASK = TaskFilter(
    "task_id", "只列出该任务的消息；不指定时为所有任务", refusals={404: "未配置的 task_id"}
)


class RecentMessagesView(JsonView):
    """GET /messages/recent?topic=data|rejects&task_id=&limit="""

    params = (TOPIC, TASK, LIMIT)
    access = "read"
    doc = Doc(
        "job_data 或 job_rejects 中最新的消息",
        "消费",
        {
            200: Ok("最新的消息，新的在前", RecentMessages),
            503: Refusal("Kafka 不可用"),
        },
        "从各分区真实的末尾往前读；job_rejects 的每条消息带有被拒绝的原因。"
        "不属于任何消费组，不影响消费位置。",
    )

    async def get(self, request: web.Request) -> web.Response:
        topic = TOPIC.read(request)
        limit = LIMIT.read(request)
        task_id = None
        if "task_id" in request.query:
            task_id = params.task_id(request, self.config.api.task_ids)
        return self.ok(await request.app[RECENT].read(topic, task_id, limit))
