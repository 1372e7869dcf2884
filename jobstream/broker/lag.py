"""The lag of a consumer group on job_data: true end offsets minus committed offsets.

The embedded broker answers ListOffsets with the base offset of the last record batch, short
of the real end by up to a batch (see "Quirks of the embedded broker" in the design notes). A
fetch from that offset carries the real high watermark, so the probe seeks there, waits for one
fetch answer per partition, and takes the larger of the two. On Kafka both agree and this
costs one short fetch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from jobstream.broker.clients import start_or_close, stop_consumer


@dataclass(frozen=True)
class Lag:
    """Consumer lag of a group on job_data; `total` is None when it cannot be measured."""

    total: int | None
    by_partition: dict[int, int] = field(default_factory=dict)
    error: str | None = None


def lag_by_partition(
    ends: Mapping[TopicPartition, int],
    committed: Mapping[TopicPartition, int | None],
    starts: Mapping[TopicPartition, int],
) -> dict[int, int]:
    """Messages each partition holds beyond where the group reads next: its commit, or the
    log start when it has none (the /consume consumers reset to earliest)."""
    lag = {}
    for tp, end in ends.items():
        position = committed.get(tp)
        if position is None or position < 0:
            position = starts[tp]
        lag[tp.partition] = max(0, end - max(position, starts[tp]))
    return lag


class LagProbe:
    """A consumer without a group, paused between probes, and an admin client for offsets."""

    def __init__(self, client_options: dict[str, Any]) -> None:
        self._client_options = client_options
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def close(self) -> None:
        if self._consumer is not None:
            await stop_consumer(self._consumer)
        if self._admin is not None:
            await self._admin.close()

    async def measure(self, group: str, tps: list[TopicPartition]) -> Lag:
        ends = await self.true_end_offsets(tps)
        committed = await self.committed(group, tps)
        consumer = await self._consumer_for(tps)
        starts = await consumer.beginning_offsets(tps)
        by_partition = lag_by_partition(ends, committed, starts)
        return Lag(sum(by_partition.values()), by_partition)

    async def true_end_offsets(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The offset the next message of each partition will get."""
        async with self._lock:
            consumer = await self._consumer_for(tps)
            reported = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, reported[tp])
            asked_at = int(time.time() * 1000)
            consumer.resume(*tps)
            try:
                # aiokafka offers no event for "a fetch answer arrived"; poll its timestamps.
                while any((consumer.last_poll_timestamp(tp) or 0) < asked_at for tp in tps):  # noqa: ASYNC110
                    await asyncio.sleep(0.002)
            finally:
                consumer.pause(*tps)
            return {tp: max(reported[tp], consumer.highwater(tp) or 0) for tp in tps}

    async def committed(
        self, group: str, tps: list[TopicPartition]
    ) -> dict[TopicPartition, int | None]:
        """The group's committed offsets, asked over a connection of its own: a group member's
        coordinator connection is held by its JoinGroup call while the group joins."""
        if self._admin is None:
            admin = AIOKafkaAdminClient(client_id="jobstream-lag-probe", **self._client_options)
            await start_or_close(admin.start(), admin.close)
            self._admin = admin
        offsets = await self._admin.list_consumer_group_offsets(group, partitions=tps)
        # -1 (or no entry): the group has committed nothing for that partition yet.
        return {tp: offsets[tp].offset if tp in offsets else None for tp in tps}

    async def _consumer_for(self, tps: list[TopicPartition]) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                group_id=None,
                enable_auto_commit=False,
                client_id="jobstream-lag-probe",
                # Paused between probes; while probing, an empty fetch at the true end should
                # come back at once, and a small one is enough to learn the high watermark.
                fetch_max_wait_ms=10,
                max_partition_fetch_bytes=1024,
                **self._client_options,
            )
            await start_or_close(consumer.start(), consumer.stop)
            self._consumer = consumer
        if self._consumer.assignment() != set(tps):
            self._consumer.assign(tps)
            self._consumer.pause(*tps)
        return self._consumer
