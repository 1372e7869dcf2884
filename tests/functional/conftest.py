"""Factories for the simulator on loopback and for clients pointed at it (no mocks: real HTTP)."""

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from jobstream.simulator import SimulatorConfig, SimulatorServer
from jobstream.simulator.dates import SHANGHAI
from jobstream.source import BazhuayuClient, Page

# A fixed calendar clock (noon, so every relative format has room) makes rows reproducible.
FIXED_NOW = datetime(2026, 1, 15, 12, 0, 0, tzinfo=SHANGHAI)
TASK_ID = "00f3b445-d8ec-44e8-88b2-4b971a228b1e"

BASE_CONFIG = SimulatorConfig(
    task_ids=(TASK_ID,),
    total=257,
    rate_limit=None,
    clock=lambda: FIXED_NOW,
)

MakeSim = Callable[..., Awaitable[SimulatorServer]]
MakeClient = Callable[..., BazhuayuClient]
Crawl = Callable[..., Awaitable[tuple[list[dict[str, Any]], list[Page]]]]


@pytest.fixture
async def make_sim() -> AsyncIterator[MakeSim]:
    """`await make_sim(total=10, rows_key="dataList")`: a started simulator, stopped afterwards."""
    servers: list[SimulatorServer] = []

    async def factory(**overrides: Any) -> SimulatorServer:
        server = SimulatorServer(dataclasses.replace(BASE_CONFIG, **overrides))
        await server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        await server.stop()


@pytest.fixture
async def sim(make_sim: MakeSim) -> SimulatorServer:
    return await make_sim()


@pytest.fixture
async def make_client() -> AsyncIterator[MakeClient]:
    """`make_client(sim, max_retries=1)`: a client with test-sized timeouts and backoff."""
    clients: list[BazhuayuClient] = []

    def factory(sim: SimulatorServer | str, **overrides: Any) -> BazhuayuClient:
        url = sim if isinstance(sim, str) else sim.url
        options: dict[str, Any] = {
            "username": "demo",
            "password": "demo",
            "request_timeout": 2.0,
            "backoff_base": 0.01,
            "backoff_max": 0.05,
        }
        options.update(overrides)
        client = BazhuayuClient(url, **options)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        await client.close()


@pytest.fixture
def client(sim: SimulatorServer, make_client: MakeClient) -> BazhuayuClient:
    return make_client(sim)


async def crawl_all(
    client: BazhuayuClient, task_id: str = TASK_ID, offset: int = 0, size: int = 100
) -> tuple[list[dict[str, Any]], list[Page]]:
    """Follow the cursor from `offset` until the API says there is no more (as the crawler will)."""
    rows: list[dict[str, Any]] = []
    pages: list[Page] = []
    for _ in range(10_000):
        page = await client.fetch_page(task_id, offset, size)
        pages.append(page)
        rows.extend(page.rows)
        offset = page.next_offset
        if page.is_last:
            return rows, pages
    raise AssertionError("the crawl did not end within 10,000 pages")


@pytest.fixture
def crawl() -> Crawl:
    return crawl_all


@pytest.fixture
def task_id() -> str:
    return TASK_ID


@pytest.fixture
def fixed_now() -> datetime:
    return FIXED_NOW
