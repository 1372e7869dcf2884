"""Fixtures that start real parts: a broker, the API simulator and the worker (tests/harness.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from tests.harness import Broker, Simulator, Worker


@pytest.fixture
def broker() -> Iterator[Broker]:
    started = Broker.start()
    yield started
    started.stop()


@pytest.fixture
def simulator_factory() -> Iterator[Callable[..., Simulator]]:
    started: list[Simulator] = []

    def start(*args: str) -> Simulator:
        sim = Simulator.start("--rate-limit", "0", *args)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def make(**overrides: dict[str, Any]) -> Worker:
        worker = Worker.configure(tmp_path, overrides)
        started.append(worker)
        return worker

    yield make
    for worker in started:
        worker.stop()


async def read_topic(
    bootstrap: str,
    topic: str,
    *,
    expect: int | None = None,
    idle: float = 3.0,
    deadline_s: float = 60.0,
    raw: bool = False,
) -> list[Any]:
    """Every message of `topic` from the beginning, as (key, value) pairs, or as aiokafka's
    ConsumerRecords (partition, offset, raw bytes) with `raw=True`.

    Reads until `expect` messages arrived (and one more idle poll finds nothing), or until
    nothing new arrives for `idle` seconds: the embedded broker reports end offsets short,
    so "reached the end offsets" cannot be trusted.
    """
    import asyncio
    import time

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    messages: list[Any] = []
    try:
        deadline = time.monotonic() + deadline_s
        quiet_since = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=500)
            got = [m for records in batch.values() for m in records]
            if got:
                messages.extend(got)
                quiet_since = time.monotonic()
                continue
            enough = expect is not None and len(messages) >= expect
            if enough or time.monotonic() - quiet_since >= idle:
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    if raw:
        return messages
    return [(m.key.decode() if m.key else None, json.loads(m.value)) for m in messages]
