"""Factories for the simulator on loopback and for clients pointed at it (no mocks: real HTTP)."""

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from jobstream.simulator import SimulatorConfig, SimulatorServer
from jobstream.simulator.date_formats import SHANGHAI
from jobstream.source import BazhuayuClient, Page
from tests.harness import SECRETS

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
DEMO = {"grant_type": "password", "username": "demo", "password": "demo"}
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
        SECRETS.watch(
            *(s for t in server.state.tokens.issued for s in (t.access_token, t.refresh_token))
        )
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
        rows.extend(page.values())
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


class SimApi:
    """Plain HTTP to a simulator, pages kept as bytes: hostile rows need not be UTF-8 or JSON."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self._token: str | None = None

    async def page(self, offset: int, size: int, task_id: str = TASK_ID) -> bytes:
        if self._token is None:
            async with self.session.post(f"{self.url}/token", json=DEMO) as resp:
                self._token = (await resp.json())["data"]["access_token"]
        params = {"taskId": task_id, "offset": str(offset), "size": str(size)}
        headers = {"Authorization": f"Bearer {self._token}"}
        async with self.session.get(f"{self.url}/data/all", params=params, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.read()

    async def admin(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """An admin call; its answer must be strict UTF-8 JSON."""
        async with self.session.request(method, f"{self.url}{path}", json=body) as resp:
            return resp.status, json.loads((await resp.read()).decode("utf-8"))

    async def truth(self, offset: int = 0, size: int = 1000, task_id: str = TASK_ID) -> list[Any]:
        query = f"/_sim/truth?taskId={task_id}&offset={offset}&size={size}"
        status, body = await self.admin("GET", query)
        assert status == 200, body
        return list(body["rows"])


MakeApi = Callable[[SimulatorServer], SimApi]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    """`make_api(sim)`: a `SimApi` on a session closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield lambda sim: SimApi(session, sim.url)
