"""The simulator's accounts: each with its own credentials, tasks and rate limit, counted apart
(what the rate-share tests read: calls and 429s per account)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from jobstream.simulator import SimulatorServer
from jobstream.simulator.__main__ import config_from_args, parse_args
from jobstream.simulator.options import SimAccount
from tests.functional.conftest import TASK_ID, MakeSim

OTHER_TASK = "b0b0b0b0-0000-4000-8000-000000000001"
TEAM_B = {"grant_type": "password", "username": "team_b", "password": "secret-b"}
DEMO = {"grant_type": "password", "username": "demo", "password": "demo"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def two_accounts(make_sim: MakeSim, b_rate: float | None = None) -> SimulatorServer:
    return await make_sim(
        task_ids=(TASK_ID, OTHER_TASK),
        accounts=(SimAccount("team_b", "secret-b", b_rate, (OTHER_TASK,)),),
    )


async def token(http: aiohttp.ClientSession, url: str, body: dict[str, str]) -> str:
    async with http.post(f"{url}/token", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return str((await resp.json())["data"]["access_token"])


async def page_status(http: aiohttp.ClientSession, url: str, token: str, task_id: str) -> int:
    params = {"taskId": task_id, "offset": "0", "size": "1"}
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{url}/data/all", params=params, headers=headers) as resp:
        await resp.read()
        return resp.status


async def test_simulator_accounts_each_reads_its_own_tasks_only(make_sim, http):
    sim = await two_accounts(make_sim)
    demo, team_b = await token(http, sim.url, DEMO), await token(http, sim.url, TEAM_B)
    assert await page_status(http, sim.url, demo, TASK_ID) == 200
    assert await page_status(http, sim.url, team_b, OTHER_TASK) == 200
    # Another account's task is unknown to this one.
    assert await page_status(http, sim.url, demo, OTHER_TASK) == 400
    assert await page_status(http, sim.url, team_b, TASK_ID) == 400
    async with http.post(f"{sim.url}/token", json={**TEAM_B, "password": "demo"}) as resp:
        assert resp.status == 400


async def test_simulator_accounts_are_rate_limited_and_counted_apart(make_sim, http):
    sim = await two_accounts(make_sim, b_rate=1.0)
    sim.state.faults.set_rate_limit(1.0, 2.0)  # the default account: 2 requests at once
    sim.state.faults.set_rate_limit(1.0, 2.0, "team_b")
    demo = await token(http, sim.url, DEMO)  # one request of the default account's two
    team_b = await token(http, sim.url, TEAM_B)
    statuses = [await page_status(http, sim.url, demo, TASK_ID) for _ in range(3)]
    assert statuses == [200, 429, 429]
    # The default account's 429s took nothing from team_b's bucket.
    assert await page_status(http, sim.url, team_b, OTHER_TASK) == 200
    stats = sim.state.stats.to_json()["accounts"]
    assert stats["demo"]["requests"] == 4 and stats["demo"]["statuses"] == {"200": 2, "429": 2}
    assert stats["team_b"]["requests"] == 2 and stats["team_b"]["statuses"] == {"200": 2}
    assert len(stats["team_b"]["arrivals"]) == 2


def test_simulator_accounts_from_the_command_line():
    config = config_from_args(
        parse_args(
            [
                "--task-id", "a", "--task-id", "b@team_b", "--task-id", "c@team_b",
                "--account", "team_b:pw:10", "--account", "team_c:pw2",
                "--rate-limit", "20", "--rate-burst-seconds", "1",
            ]
        )
    )  # fmt: skip
    assert config.task_ids == ("a", "b", "c")
    assert config.rate_limits() == {"demo": 20.0, "team_b": 10.0, "team_c": 20.0}
    assert [a.tasks for a in config.accounts] == [("b", "c"), ()]
    assert config.account_of_task("b") == "team_b" and config.account_of_task("a") == "demo"
    assert config.rate_burst_seconds == 1.0
    with pytest.raises(SystemExit):
        config_from_args(parse_args(["--task-id", "a@nobody"]))
