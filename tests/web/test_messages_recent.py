"""GET /messages/recent: the newest messages of job_data (read past the end offset the embedded
broker reports short) and of job_rejects with their reasons, per task, bounded, newest first;
bad parameters are 4xx JSON."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from jobstream.records import Reject
from tests.harness import TASK_ID, free_port
from tests.web.conftest import (
    PARTITIONS,
    Dataset,
    Served,
    ServeFactory,
    assert_json_error,
    create_topic,
    encode,
    make_job,
    produce,
)

OTHER = "6a1e9d2c-5b7f-4c3a-9e8d-2f4b6c8a0e13"


async def recent(served: Served, query: str = "") -> tuple[int, Any]:
    response = await served.client.get(f"/messages/recent{query}")
    return response.status, await response.json()


async def test_recent_jobs_are_each_partitions_newest_up_to_the_true_end(
    served: Served, dataset: Dataset
) -> None:
    status, body = await recent(served, "?limit=100")
    assert status == 200, body
    data = body["data"]
    assert (data["topic"], data["task_id"], data["limit"]) == (dataset.topic, None, 100)
    messages = data["messages"]
    assert len(messages) == 100
    ends = dataset.ends()
    # The last batch of partition 1 is where the embedded broker's reported end falls short:
    # its last message is the newest of all.
    assert (messages[0]["partition"], messages[0]["offset"]) == (1, ends[1] - 1)
    by_place = {(m.partition, m.offset): m.job for m in dataset.messages}
    for partition in range(PARTITIONS):
        offsets = sorted(m["offset"] for m in messages if m["partition"] == partition)
        # Each partition's newest ones, up to its true end, none skipped.
        assert offsets == list(range(ends[partition] - len(offsets), ends[partition]))
    for message in messages:
        job = by_place[(message["partition"], message["offset"])]
        assert message["value"] == job and message["key"] == job["id"]
        assert message["bytes"] == len(encode(job)) and message["excerpt"] == ""
    stamps = [m["timestamp"] for m in messages]
    assert stamps == sorted(stamps, reverse=True) and stamps[0].endswith("+08:00")


async def test_recent_default_limit_is_20_and_of_one_task(served: Served, dataset: Dataset) -> None:
    status, body = await recent(served, f"?task_id={TASK_ID}")
    assert status == 200, body
    data = body["data"]
    assert (data["task_id"], data["limit"], len(data["messages"])) == (TASK_ID, 20, 20)
    assert {m["value"]["task_id"] for m in data["messages"]} == {TASK_ID}
    # Every message of the dataset was looked through (fewer than the scan's bound).
    assert data["scanned"] == len(dataset.messages) and data["complete"] is True


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?topic=raw", 400),
        ("?topic=data&topic=rejects", 400),
        ("?limit=0", 400),
        ("?limit=101", 400),
        ("?limit=abc", 400),
        ("?limit=1e2", 400),
        ("?offset=3", 400),
        ("?task_id=nope", 404),
    ],
)
async def test_recent_bad_parameters_are_4xx_json(
    served: Served, query: str, expected: int
) -> None:
    status, body = await recent(served, query)
    assert_json_error(status, body, expected)


def reject(task_id: str, offset: int, reason: str) -> Reject:
    return Reject(
        task_id=task_id,
        source_offset=offset,
        field="aae397",
        reason=reason,
        row={"aae397": "面议", "aca112": "<b>司机</b>"},
        crawl_time="2026-01-15T10:30:00+08:00",
    )


async def test_recent_rejects_of_a_task_with_their_reasons(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    rejects_topic = f"rejects_{uuid.uuid4().hex[:8]}"
    await create_topic(dataset.bootstrap, rejects_topic)
    producer = AIOKafkaProducer(bootstrap_servers=dataset.bootstrap)
    await producer.start()
    try:
        for n in range(30):
            task_id = OTHER if n % 3 == 0 else TASK_ID
            value = reject(task_id, n, f"aae397: no known date format matches '面议' ({n})")
            await producer.send_and_wait(
                rejects_topic, json.dumps(_plain(value)).encode(), key=f"{task_id}:{n}".encode()
            )
    finally:
        await producer.stop()
    served = await serve_factory(
        dataset.topic,
        kafka={"rejects_topic": rejects_topic},
        api={"task_id": [TASK_ID, OTHER]},
    )
    status, body = await recent(served, f"?topic=rejects&task_id={OTHER}&limit=5")
    assert status == 200, body
    data = body["data"]
    assert data["topic"] == rejects_topic and len(data["messages"]) == 5
    for message in data["messages"]:
        value = message["value"]
        n = value["source_offset"]
        assert value["task_id"] == OTHER and message["key"] == f"{OTHER}:{n}"
        assert value["reason"] == f"aae397: no known date format matches '面议' ({n})"
        assert value["row"]["aca112"] == "<b>司机</b>"
    # Newest first: the last ones produced.
    assert [m["value"]["source_offset"] for m in data["messages"]] == [27, 24, 21, 18, 15]
    status, body = await recent(served, "?topic=rejects")
    assert status == 200 and len(body["data"]["messages"]) == 20


def _plain(value: Reject) -> dict[str, Any]:
    return {field: getattr(value, field) for field in value.__struct_fields__}


async def test_recent_large_or_broken_values_come_as_excerpts(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    topic = f"big_{uuid.uuid4().hex[:8]}"
    await create_topic(dataset.bootstrap, topic)
    huge = {**make_job(1), "description": "岗位职责" * 20_000}
    await produce(dataset.bootstrap, topic, [huge])
    producer = AIOKafkaProducer(bootstrap_servers=dataset.bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b'{"id": "cut', key=b"k", partition=2)
    finally:
        await producer.stop()
    served = await serve_factory(topic)
    status, body = await recent(served)
    assert status == 200, body
    messages = {m["key"]: m for m in body["data"]["messages"]}
    big = messages[huge["id"]]
    assert big["value"] is None and big["bytes"] == len(encode(huge))
    assert big["excerpt"].startswith('{"id":"') and len(big["excerpt"].encode()) <= 4096
    broken = messages["k"]
    assert (broken["value"], broken["excerpt"]) == (None, '{"id": "cut')


async def test_recent_of_a_topic_not_there_yet_is_empty(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    served = await serve_factory(dataset.topic, kafka={"rejects_topic": f"no_{uuid.uuid4().hex}"})
    status, body = await recent(served, "?topic=rejects")
    assert status == 200, body
    assert body["data"]["messages"] == [] and body["data"]["complete"] is True


async def test_recent_while_kafka_is_unreachable_is_503(serve_factory: ServeFactory) -> None:
    served = await serve_factory(bootstrap=f"127.0.0.1:{free_port()}")
    status, body = await recent(served)
    assert_json_error(status, body, 503)
