"""Sending bytes to Kafka in the producer's own batches, one per partition: what the page agent
and the dedupe agent send on the hot path, bypassing Faust's per-message `Topic.send`."""

from __future__ import annotations

import asyncio
from typing import Any

import aiokafka

from jobstream.topics import key_partitions

Message = tuple[bytes, bytes]  # (key, value); a value None is a tombstone


async def send_keyed(
    kafka: aiokafka.AIOKafkaProducer, topic: str, messages: list[Message]
) -> list[asyncio.Future[Any]]:
    """Send messages to the partitions Kafka's default partitioner gives their keys; the
    futures that resolve once the broker holds them."""
    partitions = sorted(await kafka.partitions_for(topic))
    deliveries: list[asyncio.Future[Any]] = []
    for partition, batch in by_partition(messages, partitions).items():
        deliveries.extend(await send_batches(kafka, topic, partition, batch))
    return deliveries


def by_partition(messages: list[Message], partitions: list[int]) -> dict[int, list[Message]]:
    """The messages by the partition Kafka's default partitioner gives their key, in order."""
    out: dict[int, list[Message]] = {}
    indexes = key_partitions([key for key, _ in messages], len(partitions))
    for message, index in zip(messages, indexes, strict=True):
        partition = partitions[index]
        group = out.get(partition)
        if group is None:
            out[partition] = [message]
        else:
            group.append(message)
    return out


async def send_batches(
    kafka: aiokafka.AIOKafkaProducer, topic: str, partition: int, messages: list[Message]
) -> list[asyncio.Future[Any]]:
    """Send messages to one partition, as few batches as hold them; a batch's future resolves
    when the broker has acknowledged every message in it."""
    futures = []
    batch = kafka.create_batch()
    for key, value in messages:
        if batch.append(key=key, value=value, timestamp=None) is None:
            # Full: send it and start the next. A batch takes its first message whatever its
            # size, and no message here exceeds kafka.max_message_bytes.
            futures.append(await kafka.send_batch(batch, topic, partition=partition))
            batch = kafka.create_batch()
            batch.append(key=key, value=value, timestamp=None)
    if batch.record_count():
        # Closed: complete, so the producer sends it at once instead of lingering for more.
        batch.close()
        futures.append(await kafka.send_batch(batch, topic, partition=partition))
    return futures
