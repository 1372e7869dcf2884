"""GET /kafka: job_data's true end offsets, the lag of each consumer group reading it (per
partition, the default group first), and the messages job_data lost: to a restart of the
embedded broker (memory only), or to the topic being recreated."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx
from aiokafka.admin import AIOKafkaAdminClient

from jobstream.config import from_mapping
from jobstream.progress.mirror import ProgressMirror
from jobstream.records import Progress
from jobstream.web.kafka_status import KAFKA_WATCH
from tests.harness import TASK_ID, Broker, free_port, wait_until_async
from tests.web.conftest import (
    Dataset,
    Served,
    ServeFactory,
    assert_json_error,
    create_topic,
    make_job,
    produce,
)

OTHER = "6a1e9d2c-5b7f-4c3a-9e8d-2f4b6c8a0e13"


async def kafka_status(served: Served) -> dict[str, Any]:
    response = await served.client.get("/kafka")
    body = await response.json()
    assert response.status == 200, body
    return dict(body["data"])


async def test_kafka_lag_of_each_group_per_partition_default_first(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    served = await serve_factory(dataset.topic)
    group = f"lag-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(
            f"{served.url}/consume", params={"group": group, "batch_size": 100}
        )
    taken = answer.json()["count"]
    assert taken == 100
    total = len(dataset.messages)
    data = await kafka_status(served)
    assert data["reachable"] is True and data["error"] is None
    assert (data["topic"], data["partitions"], data["embedded"]) == (dataset.topic, 3, False)
    assert data["end_offsets"] == {str(p): end for p, end in dataset.ends().items()}
    groups = {g["group"]: g for g in data["groups"]}
    # /consume's group=<name> is the Kafka group <app.name>.http.<name>: shown as Kafka has it.
    group = served.readers.kafka_group(group)
    default = data["groups"][0]
    assert default["group"] == served.default_group and default["default"] is True
    assert default["lag"] == total
    assert default["lag_by_partition"] == {str(p): end for p, end in dataset.ends().items()}
    mine = groups[group]
    assert mine["default"] is False and mine["lag"] == total - taken
    assert sum(mine["lag_by_partition"].values()) == mine["lag"]
    # Groups reading other topics are not listed.
    assert all(g["lag"] is not None for g in data["groups"])
    assert data["losses"] == []


async def test_kafka_unreachable_says_since_when(serve_factory: ServeFactory) -> None:
    served = await serve_factory(bootstrap=f"127.0.0.1:{free_port()}")
    data = await kafka_status(served)
    assert data["reachable"] is False and data["unreachable_since"].endswith("+08:00")
    assert data["groups"] == [] and "unreachable" in data["error"]
    response = await served.client.get("/kafka?x=1")
    assert_json_error(response.status, await response.json(), 400)


async def test_kafka_embedded_broker_started_empty_reports_what_the_last_run_published(
    serve_factory: ServeFactory, session_broker: Broker, dataset: Dataset, tmp_path: Path
) -> None:
    """The worker starts the embedded broker (here: the session's broker on its port) while the
    SQLite mirror holds what an earlier run applied: job_data lost what that run published."""
    database = tmp_path / "crawl_progress.db"
    mirror = ProgressMirror(database)
    earlier = "2026-01-01T08:00:00+08:00"
    mirror.save(
        Progress(task_id=TASK_ID, source="demo", current_offset=500, published=300, rejected=7,
                 last_update=earlier)
    )  # fmt: skip
    mirror.save(
        Progress(task_id=OTHER, source="demo", current_offset=90, published=17, rejected=1,
                 last_update=earlier)
    )  # fmt: skip
    # Progress of another API is not this one's: not counted.
    mirror.save(Progress(task_id="elsewhere", source="https://x", current_offset=9, published=9))
    mirror.close()
    config = from_mapping(
        {
            "kafka": {
                "bootstrap_servers": "embedded",
                "embedded_port": session_broker.port,
                "topic": dataset.topic,
                "consumer_group": f"jobs-{uuid.uuid4().hex[:8]}",
            },
            "api": {"task_id": [TASK_ID, OTHER, "elsewhere"]},
            "database": {"path": str(database)},
        }
    )
    served = await serve_factory(config=config)
    data = await kafka_status(served)
    assert data["embedded"] is True
    [loss] = data["losses"]
    assert (loss["kind"], loss["messages"], loss["rejects"]) == ("embedded_restart", 317, 8)
    assert loss["at"].endswith("+08:00") and "2 tasks" in loss["detail"]


async def test_kafka_topic_recreated_is_a_loss(
    serve_factory: ServeFactory, session_broker: Broker
) -> None:
    topic = f"recreated_{uuid.uuid4().hex[:8]}"
    await create_topic(session_broker.bootstrap, topic)
    await produce(session_broker.bootstrap, topic, [make_job(n) for n in range(30)])
    served = await serve_factory(topic)
    watch = served.client.app[KAFKA_WATCH]
    await watch.sample_ends()
    admin = AIOKafkaAdminClient(bootstrap_servers=session_broker.bootstrap)
    await admin.start()
    try:
        await admin.delete_topics([topic])
    finally:
        await admin.close()
    await create_topic(session_broker.bootstrap, topic)
    await produce(session_broker.bootstrap, topic, [make_job(n) for n in range(3)])

    async def loss_seen() -> list[Any]:
        await served.probe.check()
        await watch.sample_ends()
        return watch.losses

    [loss] = await wait_until_async(loss_seen, 10, "the recreated topic seen")
    assert loss.kind == "offsets_went_back" and "->" in loss.detail
