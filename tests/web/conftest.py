"""Real workers for the HTTP tests, shared where the tests only read.

`dataset` (whole package): a worker on its embedded broker that has crawled a fixed simulator
to the end; tests read job_data through it with their own consumer groups and streams, so they
do not disturb each other. `stack_factory` (per module): workers for tests that change state.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from tests.conftest import read_topic
from tests.harness import Simulator, Worker, http

DATASET_TOTAL = 600
# Jobs the dataset appends to job_data in one record batch (see append_one_batch).
TAIL_BATCH = 40


@dataclass
class Stack:
    """A worker crawling its own simulator, with the embedded broker unless told otherwise."""

    sim: Simulator
    worker: Worker

    @property
    def url(self) -> str:
        return self.worker.url

    @property
    def bootstrap(self) -> str:
        config = yaml.safe_load(self.worker.config_path.read_text())
        servers = config["kafka"]["bootstrap_servers"]
        return f"127.0.0.1:{config['kafka']['embedded_port']}" if servers == "embedded" else servers

    def stop(self) -> None:
        self.worker.stop()
        self.sim.stop()


def start_stack(tmp: Path, sim_args: tuple[str, ...], **overrides: dict[str, Any]) -> Stack:
    sim = Simulator.start("--rate-limit", "0", *sim_args)
    sections: dict[str, dict[str, Any]] = {
        "api": {"base_url": sim.url, "username": "demo", "password": "demo", "batch_size": 50},
        "crawler": {"interval": 3600},
    }
    for section, values in overrides.items():
        sections.setdefault(section, {}).update(values)
    worker = Worker.configure(tmp, sections)
    try:
        worker.start()
        worker.wait_ready()
    except BaseException:
        worker.stop()
        sim.stop()
        raise
    return Stack(sim, worker)


@pytest.fixture(scope="module")
def stack_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def start(sim_args: tuple[str, ...] = ("--total", "300"), **overrides: dict[str, Any]) -> Stack:
        stack = start_stack(tmp_path_factory.mktemp("stack"), sim_args, **overrides)
        started.append(stack)
        return stack

    yield start
    for stack in reversed(started):
        stack.stop()


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    job: dict[str, Any]


@dataclass
class Dataset:
    stack: Stack
    messages: list[Message]

    @property
    def url(self) -> str:
        return self.stack.url

    @property
    def ids(self) -> set[str]:
        return {m.job["id"] for m in self.messages}

    def ends(self) -> dict[int, int]:
        """The true end offset of every partition (next offset to be written)."""
        ends = {p: 0 for p in range(3)}
        for m in self.messages:
            ends[m.partition] = max(ends[m.partition], m.offset + 1)
        return ends


async def read_messages(bootstrap: str, topic: str, expect: int) -> list[Message]:
    """Every message of `topic` from the beginning, read until `expect` arrived (30 s at most)."""
    records = await read_topic(bootstrap, topic, expect=expect, deadline_s=30, raw=True)
    return [Message(r.partition, r.offset, json.loads(r.value)) for r in records]


async def append_one_batch(bootstrap: str, topic: str, count: int) -> None:
    """`count` more jobs in partition 1, as one record batch. The embedded broker then reports
    that partition's end offset `count - 1` short (the batch's base offset), which the lag on
    /status and the stream's `from=latest` must see through."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        template = json.loads((await consumer.getone()).value)
    finally:
        await consumer.stop()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=500_000)
    await producer.start()
    try:
        batch = producer.create_batch()
        for _ in range(count):
            job = {**template, "id": str(uuid.uuid4()), "source_offset": -1}
            assert batch.append(
                key=job["id"].encode(), value=json.dumps(job).encode(), timestamp=None
            )
        batch.close()
        await (await producer.send_batch(batch, topic, partition=1))
    finally:
        await producer.stop()


@pytest.fixture(scope="package")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dataset]:
    stack = start_stack(
        tmp_path_factory.mktemp("dataset"),
        ("--total", str(DATASET_TOTAL)),
        app={"max_streams": 4, "sse_heartbeat": 1},
    )
    try:
        status = stack.worker.wait_status(
            lambda s: s["current_offset"] == DATASET_TOTAL and s["status"] == "idle"
        )
        published = status["rows"]["published"]
        asyncio.run(append_one_batch(stack.bootstrap, "job_data", TAIL_BATCH))
        messages = asyncio.run(read_messages(stack.bootstrap, "job_data", published + TAIL_BATCH))
        assert len(messages) == published + TAIL_BATCH and published > 100
        yield Dataset(stack, messages)
    finally:
        stack.stop()


def assert_json_error(status: int, body: Any, expected: int | tuple[int, ...]) -> None:
    """An error answer: the status, and the envelope with nothing internal in it."""
    expected = (expected,) if isinstance(expected, int) else expected
    assert status in expected, (status, body)
    assert isinstance(body, dict) and set(body) == {"code", "message"}, body
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    text = json.dumps(body)
    assert "Traceback" not in text and "/work/" not in text and ".py" not in text, text


def get(url: str, **headers: str) -> tuple[int, Any]:
    return http("GET", url, headers=headers)


def broker_connections(pid: int, broker_port: int) -> int:
    """TCP connections process `pid` holds to `broker_port` (read from /proc, Linux only)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == broker_port and fields[3] == "01" and fields[9] in inodes:
                    count += 1
    return count
