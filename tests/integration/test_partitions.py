"""Task partitions beyond three: a new deployment with `kafka.partitions: 6` creates every
topic keyed by task with six partitions (so six workers can crawl), and a worker started with
another count against those topics stops at once with one line naming the key."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer

from tests.harness import TASK_ID, Broker, Simulator, Worker

pytestmark = pytest.mark.slow


async def partition_counts(bootstrap: str, topics: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        await consumer.topics()  # every topic's metadata
        return {topic: len(consumer.partitions_for_topic(topic) or ()) for topic in topics}
    finally:
        await consumer.stop()


async def test_partitions_raised_for_a_new_deployment_and_kept_by_the_next_start(
    tmp_path: Path,
) -> None:
    broker = Broker.start()
    sim = Simulator.start("--rate-limit", "0", "--total", "300")
    try:
        (tmp_path / "six").mkdir()
        six = Worker.configure(
            tmp_path / "six",
            {"api": sim.api(), "kafka": {"bootstrap_servers": broker.bootstrap, "partitions": 6}},
        )
        six.start()
        six.wait_ready(60)
        six.wait_status(lambda s: s["current_offset"] == 300 and s["status"] == "idle")
        assert six.stop() == 0
        topics = ["job_raw", "job_commands", "job_candidates", "job_data", "job_rejects"]
        counts = await partition_counts(broker.bootstrap, topics)
        assert counts == dict.fromkeys(topics, 6), counts

        (tmp_path / "three").mkdir()
        three = Worker.configure(
            tmp_path / "three", {"api": sim.api(), "kafka": {"bootstrap_servers": broker.bootstrap}}
        )
        three.start()
        assert three.process is not None
        code = await asyncio.to_thread(three.process.wait, 60)
        three.stop()
        log = three.log()
        assert code == 1, log[-2000:]
        assert (
            "configuration error: kafka.partitions: 3, but topic job_raw already has 6 partitions"
        ) in log
        assert "Traceback" not in log
        assert f"task_id={TASK_ID}" not in log  # nothing was crawled
    finally:
        broker.stop()
        sim.stop()
