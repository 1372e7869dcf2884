"""Where job_data holds a published job: found when asked, from the time the dedupe agent
forwarded it. The partition is known (the id's); the broker's time index gives the first offset
written from a second before, and the job is read from there (its key, its task and source
offset). A forwarded job is written right after it was decided, so few messages are read; the
read is bounded in messages and time all the same, and a job not found is answered as such
(offset null), never guessed.

One consumer without a group, shared by the views one lookup at a time, started at the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict

from aiokafka import AIOKafkaConsumer, TopicPartition
from mode import Service

from jobstream.broker.clients import client_options, start_or_close, stream_reader
from jobstream.config import Config
from jobstream.trace.judge import job_offset

logger = logging.getLogger(__name__)

# Seconds before the decision the read starts at (clocks of one process agree; a retried
# forward is written later, never earlier).
BEFORE = 1.0
# How far a lookup reads at most.
MAX_MESSAGES = 200_000
MAX_SECONDS = 5.0
# Lookups remembered (a published job does not move).
REMEMBERED = 10_000
FETCH_BYTES = 1024 * 1024


class JobLocator(Service):
    def __init__(self, config: Config, **kwargs: object) -> None:
        self.config = config
        self._options = client_options(config)
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()
        self._found: OrderedDict[tuple[int, str, float], tuple[int, int]] = OrderedDict()
        super().__init__(**kwargs)  # type: ignore[arg-type]

    async def on_stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def locate(
        self, partition: int, job_id: str, at: float, task_id: str, offset: int
    ) -> tuple[int, int] | None:
        """(offset, timestamp in ms) of the job `task_id`/`offset` in job_data's `partition`,
        forwarded at `at` (Unix seconds); None when it is not found."""
        key = (partition, job_id, at)
        found = self._found.get(key)
        if found is not None:
            return found
        async with self._lock:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(MAX_SECONDS):
                    found = await self._read(partition, job_id.encode(), at, task_id, offset)
        if found is not None:
            self._found[key] = found
            while len(self._found) > REMEMBERED:
                self._found.popitem(last=False)
        return found

    async def _read(
        self, partition: int, key: bytes, at: float, task_id: str, offset: int
    ) -> tuple[int, int] | None:
        consumer = await self._reader()
        tp = TopicPartition(self.config.kafka.topic, partition)
        consumer.assign([tp])
        since = int((at - BEFORE) * 1000)
        start = (await consumer.offsets_for_times({tp: since})).get(tp)
        # The embedded broker answers "nothing at or after" with offset 0 and timestamp -1.
        if start is None or start.timestamp < 0:
            return None
        consumer.seek(tp, start.offset)
        consumer.resume(tp)  # paused after the previous lookup, which may have had it too
        task = task_id.encode()
        read = 0
        try:
            while read < MAX_MESSAGES:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=2000)
                records = batch.get(tp, [])
                if not records:
                    # Nothing came in time: the end, once a fetch has told where it is.
                    end = consumer.highwater(tp)
                    if end is not None and await consumer.position(tp) >= end:
                        return None
                    continue
                for record in records:
                    read += 1
                    value = record.value or b""
                    if record.key == key and task in value and job_offset(value) == offset:
                        return record.offset, record.timestamp
        finally:
            consumer.pause(tp)
        return None

    async def _reader(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = stream_reader(
                self._options, "jobstream-trace", self.config.kafka.fetch_max_wait_ms, FETCH_BYTES
            )
            await start_or_close(consumer.start(), consumer.stop)
            self._consumer = consumer
        return self._consumer
