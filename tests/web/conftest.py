"""The web tier: every view in-process, served by aiohttp's test client from a JobstreamApp of
its own, against the one broker the test run shares (`session_broker`).

An app reads its own topic and consumer groups, so tests never see each other's data:

- `dataset`: a job_data-like topic filled once per run, its last batch written the way that
  makes the embedded broker report an end offset short;
- `served`: an app over the dataset whose spare consumer groups (`group`) joined before the
  first test asked, so a test does not wait for a join;
- `served_empty`: the same over an empty topic, for what happens when data arrives;
- `serve`: an app with any other config (a token, a stream cap, another broker) for one test.

No worker runs here: /status and /crawl/* answer as a worker that is still starting does.
Tests that need a real worker are in tests/integration.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import AppRunner, BaseRunner
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from jobstream.app import JobstreamApp
from jobstream.broker.probe import BrokerProbe
from jobstream.config import Config, from_mapping
from jobstream.redaction import secrets_in
from jobstream.runtime import Runtime
from jobstream.web.readers import READERS, ReaderPool
from jobstream.web.routes import register
from jobstream.web.sse.registry import STREAMS, StreamRegistry
from tests.harness import SECRETS, TASK_ID, Broker, wait_until_async

DATASET_JOBS = 600
# Jobs appended to partition 1 in one record batch (see append_one_batch).
TAIL_BATCH = 40
PARTITIONS = 3
SPARE_GROUPS = 8
# Tansu completes a group join after about half the session timeout (design.md): with one
# second a join takes one, so the session fixtures are ready in seconds.
FAST_GROUPS = {"broker_session_timeout": 1.0, "broker_heartbeat_interval": 0.3}

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # One event loop for the whole tier: the session's apps and broker clients live in it.
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if item.path.is_relative_to(HERE) and pytest_asyncio.is_async_test(item):
            item.add_marker(marker, append=False)


@dataclass(frozen=True)
class Message:
    partition: int
    offset: int
    job: dict[str, Any]


@dataclass
class Dataset:
    bootstrap: str
    topic: str
    messages: list[Message]

    @property
    def ids(self) -> set[str]:
        return {m.job["id"] for m in self.messages}

    def ends(self) -> dict[int, int]:
        """The true end offset of every partition (next offset to be written)."""
        ends = dict.fromkeys(range(PARTITIONS), 0)
        for m in self.messages:
            ends[m.partition] = max(ends[m.partition], m.offset + 1)
        return ends


def make_job(n: int) -> dict[str, Any]:
    """A job as job_data carries it (seed §6.2), Chinese text included."""
    job_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"https://jobs.example/{n}"))
    return {
        "id": job_id,
        "job_category": "仓储物流",
        "job_title": f"物流调度专员 {n}",
        "company": "临沂佳和网络科技有限公司",
        "salary": "1.5-2万",
        "location": "杭州余杭区",
        "publish_date": "2026-01-13",
        "collect_time": "2026-01-15",
        "url": f"https://jobs.example/{n}",
        "description": "岗位职责:1.协助主管完成日常工作。福利待遇:包吃包住。",
        "experience": "1-3年",
        "education": "大专",
        "crawl_time": "2026-01-15T10:30:00+08:00",
        "task_id": TASK_ID,
        "source_offset": n,
        "demo": True,
    }


def encode(job: dict[str, Any]) -> bytes:
    return json.dumps(job, ensure_ascii=False, separators=(",", ":")).encode()


async def create_topic(bootstrap: str, topic: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, jobs: list[dict[str, Any]]) -> list[Message]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        sent = [await producer.send(topic, encode(job), key=job["id"].encode()) for job in jobs]
        return [
            Message(meta.partition, meta.offset, job)
            for meta, job in zip(await asyncio.gather(*sent), jobs, strict=True)
        ]
    finally:
        await producer.stop()


async def append_one_batch(bootstrap: str, topic: str, jobs: list[dict[str, Any]]) -> list[Message]:
    """`jobs` in partition 1, as one record batch. The embedded broker then reports that
    partition's end offset `len(jobs) - 1` short (the batch's base offset), which the lag and
    the stream's `from=latest` must see through."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_batch_size=500_000)
    await producer.start()
    try:
        batch = producer.create_batch()
        for job in jobs:
            assert batch.append(key=job["id"].encode(), value=encode(job), timestamp=None)
        batch.close()
        meta = await (await producer.send_batch(batch, topic, partition=1))
    finally:
        await producer.stop()
    return [Message(1, meta.offset + i, job) for i, job in enumerate(jobs)]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def dataset(session_broker: Broker) -> Dataset:
    topic = f"job_data_{uuid.uuid4().hex[:8]}"
    await create_topic(session_broker.bootstrap, topic)
    messages = await produce(
        session_broker.bootstrap, topic, [make_job(n) for n in range(DATASET_JOBS)]
    )
    tail = [make_job(n) for n in range(DATASET_JOBS, DATASET_JOBS + TAIL_BATCH)]
    messages += await append_one_batch(session_broker.bootstrap, topic, tail)
    return Dataset(session_broker.bootstrap, topic, messages)


def config_for(bootstrap: str, topic: str, **sections: dict[str, Any]) -> Config:
    """A config on `bootstrap`, reading `topic`, with a default group of its own."""
    values: dict[str, dict[str, Any]] = {
        "kafka": {
            "bootstrap_servers": bootstrap,
            "topic": topic,
            "consumer_group": f"jobs-{uuid.uuid4().hex[:8]}",
        },
        "api": {"task_id": TASK_ID},
    }
    for section, keys in sections.items():
        values.setdefault(section, {}).update(keys)
    return from_mapping(values)


@dataclass
class Served:
    """An app's web application on a loopback port, and the services behind its views."""

    app: JobstreamApp
    runtime: Runtime
    client: TestClient
    spare_groups: list[str] = field(default_factory=list)

    async def close(self) -> None:
        await self.client.close()
        await self.runtime.stop()

    @property
    def url(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    @property
    def bootstrap(self) -> str:
        return self.app.settings.kafka.bootstrap_servers

    @property
    def topic(self) -> str:
        return self.app.settings.kafka.topic

    @property
    def probe(self) -> BrokerProbe:
        return self.runtime.probe

    @property
    def readers(self) -> ReaderPool:
        return self.client.app[READERS]

    @property
    def streams(self) -> StreamRegistry:
        return self.client.app[STREAMS]

    @property
    def default_group(self) -> str:
        return self.app.settings.kafka.consumer_group

    async def warm_groups(self, count: int, *names: str) -> None:
        """Join `count` spare groups, `names` and the default group at once; `take_group` hands
        out the spare ones."""
        spare = [f"warm-{uuid.uuid4().hex[:8]}" for _ in range(count)]
        readers = await asyncio.gather(
            *(self.readers.reader(n) for n in [*spare, *names, self.default_group])
        )
        for reader in readers:
            await asyncio.wait_for(reader.joined.wait(), 10)
        self.spare_groups.extend(spare)

    def take_group(self) -> str:
        """A group that has joined and read nothing yet (a new one if none is left)."""
        return self.spare_groups.pop() if self.spare_groups else f"cold-{uuid.uuid4().hex[:8]}"


class WorkerLikeServer(TestServer):
    """aiohttp's test server, which cancels a handler whose client left, made to let it run on
    as the worker's server (Faust's AppRunner) does."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return AppRunner(self.app, **{**kwargs, "handler_cancellation": False})


async def serve(config: Config) -> Served:
    SECRETS.watch(*secrets_in(config))
    app = JobstreamApp("jobstream", config=config, autodiscover=False, **FAST_GROUPS)
    # No worker here: the progress table is a plain dict, and the test starts the runtime (the
    # probe and the alerts) that the worker's app would start.
    runtime = Runtime(app, {})
    await runtime.start()
    client = TestClient(WorkerLikeServer(register(app, runtime)))
    await client.start_server()
    return Served(app, runtime, client)


ServeFactory = Callable[..., Awaitable[Served]]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _apps_of_tests() -> AsyncIterator[list[Served]]:
    """The apps made for single tests, closed together at the end of the run: a close waits
    for a group join in flight (a second), which each test would otherwise pay alone."""
    apps: list[Served] = []
    yield apps
    await asyncio.gather(*(served.close() for served in apps))


@pytest.fixture
def serve_factory(session_broker: Broker, _apps_of_tests: list[Served]) -> ServeFactory:
    """`await serve_factory(topic, app={"admin_token": "t"})` (or `config=...`): an app for
    this test only, on the shared broker unless `bootstrap` says otherwise."""

    async def make(
        topic: str = "job_data",
        *,
        bootstrap: str | None = None,
        config: Config | None = None,
        **sections: dict[str, Any],
    ) -> Served:
        if config is None:
            config = config_for(bootstrap or session_broker.bootstrap, topic, **sections)
        served = await serve(config)
        _apps_of_tests.append(served)
        return served

    return make


async def _served_over(bootstrap: str, topic: str, spare_groups: int) -> Served:
    served = await serve(config_for(bootstrap, topic))

    async def topic_seen() -> int | None:
        return served.probe.partitions

    await wait_until_async(topic_seen, what="the topic seen by the probe")
    await served.warm_groups(spare_groups)
    return served


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def _session_apps(
    dataset: Dataset, session_broker: Broker
) -> AsyncIterator[tuple[Served, Served]]:
    # Both made at once: their group joins (a second each) overlap.
    empty_topic = f"empty_{uuid.uuid4().hex[:8]}"
    await create_topic(session_broker.bootstrap, empty_topic)
    over_data, over_empty = await asyncio.gather(
        _served_over(dataset.bootstrap, dataset.topic, SPARE_GROUPS),
        _served_over(session_broker.bootstrap, empty_topic, 2),
    )
    yield over_data, over_empty
    await asyncio.gather(over_data.close(), over_empty.close())


@pytest.fixture
def served(_session_apps: tuple[Served, Served]) -> Served:
    return _session_apps[0]


@pytest.fixture
def served_empty(_session_apps: tuple[Served, Served]) -> Served:
    return _session_apps[1]


@pytest.fixture
def group(served: Served) -> str:
    return served.take_group()


def assert_json_error(status: int, body: Any, expected: int | tuple[int, ...]) -> None:
    """An error answer: the status, and the envelope with nothing internal in it."""
    expected = (expected,) if isinstance(expected, int) else expected
    assert status in expected, (status, body)
    assert isinstance(body, dict) and set(body) == {"code", "message"}, body
    assert body["code"] == status and isinstance(body["message"], str) and body["message"]
    text = json.dumps(body)
    assert "Traceback" not in text and "/work/" not in text and ".py" not in text, text
