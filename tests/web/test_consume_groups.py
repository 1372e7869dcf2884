"""GET /consume's consumer groups are its own: a group a program reads job_data with directly
keeps its offsets whatever /consume is asked; and the pool of groups is shared fairly, frees
idle slots, and keeps no metric label of a group it closed."""

from __future__ import annotations

import uuid

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from jobstream import metrics
from jobstream.web.readers import RECLAIM_IDLE
from tests.web.conftest import PARTITIONS, Dataset, Served, ServeFactory, assert_json_error

DIRECT_READS = 40


async def committed(bootstrap: str, topic: str, group: str) -> dict[int, int | None]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in range(PARTITIONS)}
    finally:
        await consumer.stop()


async def read_directly(dataset: Dataset, group: str, most: int) -> list[str]:
    """What a downstream program (README: 下游系统直接消费) reads in its own group, committing
    as it goes; `most` jobs, or fewer if no more come within two seconds."""
    consumer = AIOKafkaConsumer(
        dataset.topic,
        bootstrap_servers=dataset.bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        # Tansu completes a join after about half the session timeout (design.md).
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
    )
    await consumer.start()
    ids: list[str] = []
    try:
        while len(ids) < most:
            batch = await consumer.getmany(timeout_ms=2000, max_records=most - len(ids))
            if not batch:
                break
            ids += [r.key.decode() for records in batch.values() for r in records]
            await consumer.commit()
    finally:
        await consumer.stop()
    return ids


async def test_consume_never_moves_a_group_a_direct_consumer_uses(
    served: Served, dataset: Dataset
) -> None:
    downstream = f"my_downstream2-{uuid.uuid4().hex[:6]}"
    first = await read_directly(dataset, downstream, DIRECT_READS)
    assert len(first) == DIRECT_READS
    before = await committed(dataset.bootstrap, dataset.topic, downstream)
    http_group = f"{served.app.settings.app.name}.http.{downstream}"

    # The README's pattern for direct consumers, the worker's own Faust group, /consume's own
    # prefix: none of them is the direct consumer's group in Kafka.
    async with httpx.AsyncClient(timeout=30) as client:
        for group in (downstream, downstream, "jobstream", http_group, downstream):
            answer = await client.get(
                f"{served.url}/consume", params={"group": group, "batch_size": 200}
            )
            assert answer.status_code == 200, answer.text

    assert await committed(dataset.bootstrap, dataset.topic, downstream) == before
    moved = await committed(dataset.bootstrap, dataset.topic, http_group)
    assert sum(o or 0 for o in moved.values()) == 600  # /consume's three calls in its own group
    rest = await read_directly(dataset, downstream, len(dataset.messages) - DIRECT_READS)
    assert sorted(first + rest) == sorted(dataset.ids)


def client_at(address: str) -> httpx.AsyncClient:
    """A client whose requests come from `address` (any 127.x.y.z is this machine)."""
    return httpx.AsyncClient(timeout=30, transport=httpx.AsyncHTTPTransport(local_address=address))


def labelled_groups() -> set[str]:
    return {s.labels["group"] for m in metrics.CONSUMED.collect() for s in m.samples}


async def test_consume_groups_one_client_cannot_take_every_slot(
    serve_factory: ServeFactory, dataset: Dataset
) -> None:
    # Four slots, the default group in one: a caller's share is one.
    served = await serve_factory(dataset.topic, app={"max_consumer_groups": 4})
    await served.warm_groups(0)
    url = f"{served.url}/consume"
    greedy, other = client_at("127.0.0.2"), client_at("127.0.0.3")
    async with greedy, other:
        for n in range(3):
            answer = await greedy.get(url, params={"group": f"greedy{n}", "batch_size": 1})
            assert answer.status_code == 200, answer.text
        assert "greedy0" in labelled_groups()

        # Every slot taken, all recently used: the greedy client gets no fourth...
        refused = await greedy.get(url, params={"group": "greedy3", "timeout_ms": 0})
        assert_json_error(refused.status_code, refused.json(), 429)
        assert refused.headers["Retry-After"]

        # ...but another client gets its share: the greedy client's least recently used goes.
        answer = await other.get(url, params={"group": "other0", "batch_size": 1})
        assert answer.status_code == 200, answer.text
        assert set(served.readers.readers) == {served.default_group, "greedy1", "greedy2", "other0"}
        assert "greedy0" not in labelled_groups()

        # A slot idle long enough goes to whoever asks, the greedy client too.
        served.readers.readers["greedy1"].last_used -= RECLAIM_IDLE + 1
        answer = await greedy.get(url, params={"group": "greedy3", "batch_size": 1})
        assert answer.status_code == 200, answer.text
        assert "greedy1" not in served.readers.readers
