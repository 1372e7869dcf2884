"""The simulator's HTTP surface, checked against bazhuayu-api.md with a bare aiohttp session."""

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

import jobstream.simulator
from jobstream.simulator import SimulatorConfig
from jobstream.simulator.__main__ import config_from_args, parse_args
from jobstream.simulator.state import SimulatorState

# The repo root, for the CLI subprocess (the package may not be installed).
ROOT = Path(jobstream.simulator.__file__).resolve().parents[2]
DEMO = {"grant_type": "password", "username": "demo", "password": "demo"}


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def get_token(http, url, body=DEMO) -> dict:
    async with http.post(f"{url}/token", json=body) as resp:
        assert resp.status == 200
        return await resp.json()


async def get_page(http, url, token, **params) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{url}/data/all", params=params, headers=headers) as resp:
        return resp.status, await resp.json()


async def test_simulator_token_answers_data_envelope_with_string_expires_in(sim, http):
    body = await get_token(http, sim.url)
    assert set(body) == {"data", "requestId"}
    assert body["data"]["token_type"] == "Bearer"
    assert body["data"]["expires_in"] == "86400"
    assert body["data"]["access_token"] and body["data"]["refresh_token"]


async def test_simulator_legacy_token_is_top_level_with_numeric_expires_in(make_sim, http):
    sim = await make_sim(legacy_token_shape=True, token_ttl=600)
    body = await get_token(http, sim.url)
    assert body["expires_in"] == 600 and body["token_type"] == "Bearer"
    assert "data" not in body


async def test_simulator_token_wrong_password_answers_invalid_grant(sim, http):
    async with http.post(f"{sim.url}/token", json={**DEMO, "password": "nope"}) as resp:
        assert resp.status == 400
        body = await resp.json()
    assert body["error"]["code"] == "Invalid.Grant" and body["error"]["message"]
    assert "requestId" in body


async def test_simulator_refresh_token_rotates(sim, http):
    first = (await get_token(http, sim.url))["data"]
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = (await get_token(http, sim.url, refresh))["data"]
    assert second["access_token"] != first["access_token"]
    async with http.post(f"{sim.url}/token", json=refresh) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == "Invalid.Grant"


async def test_simulator_data_without_valid_token_answers_401(sim, http, task_id):
    for token in ("", "made-up"):
        status, body = await get_page(http, sim.url, token, taskId=task_id, offset=0, size=1)
        assert status == 401 and body["error"]["code"] == "Invalid.Token"


async def test_simulator_short_lived_token_expires(make_sim, http, task_id):
    sim = await make_sim(token_ttl=0.5)
    token = (await get_token(http, sim.url))["data"]["access_token"]
    assert (await get_page(http, sim.url, token, taskId=task_id, offset=0, size=1))[0] == 200
    await asyncio.sleep(0.55)
    assert (await get_page(http, sim.url, token, taskId=task_id, offset=0, size=1))[0] == 401


async def test_simulator_page_carries_total_next_offset_and_rest_total(sim, http, task_id):
    token = (await get_token(http, sim.url))["data"]["access_token"]
    status, body = await get_page(http, sim.url, token, taskId=task_id, offset=250, size=100)
    assert status == 200 and set(body) == {"data", "requestId"}
    page = body["data"]
    assert (page["total"], page["offset"], page["restTotal"]) == (257, 257, 0)
    assert len(page["data"]) == 7


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"offset": 0, "size": 0}, "size must be between 1 and 1000"),
        ({"offset": 0, "size": 1001}, "size must be between 1 and 1000"),
        ({"offset": 0, "size": "ten"}, "size must be an integer"),
        ({"offset": -1, "size": 10}, "offset must be >= 0"),
        ({"size": 10}, "offset is required"),
        ({"taskId": "", "offset": 0, "size": 10}, "taskId is required"),
        ({"taskId": "ghost", "offset": 0, "size": 10}, "task ghost does not exist"),
    ],
)
async def test_simulator_bad_data_params_answer_400_with_error_object(
    sim, http, task_id, params, message
):
    token = (await get_token(http, sim.url))["data"]["access_token"]
    status, body = await get_page(http, sim.url, token, **{"taskId": task_id, **params})
    assert status == 400 and body["error"]["message"].startswith(message)


async def test_simulator_no_offset_and_datalist_switches_shape_pages(make_sim, http, task_id):
    sim = await make_sim(include_offset=False, rows_key="dataList")
    token = (await get_token(http, sim.url))["data"]["access_token"]
    _, body = await get_page(http, sim.url, token, taskId=task_id, offset=0, size=5)
    assert set(body["data"]) == {"total", "restTotal", "dataList"}


async def test_simulator_rate_limit_answers_429_with_retry_after(make_sim, http):
    sim = await make_sim(rate_limit=1.0, rate_burst_seconds=2.0)
    statuses = []
    for _ in range(3):
        async with http.post(f"{sim.url}/token", json=DEMO) as resp:
            statuses.append((resp.status, resp.headers.get("Retry-After")))
    assert statuses == [(200, None), (200, None), (429, "1")]


async def test_simulator_admin_endpoints_steer_faults_growth_and_stats(sim, http, task_id):
    async with http.post(
        f"{sim.url}/_sim/faults", json={"fail_next": {"n": 1, "status": 503, "endpoint": "any"}}
    ) as resp:
        assert resp.status == 200 and len((await resp.json())["pending_failures"]) == 1
    async with http.post(f"{sim.url}/token", json=DEMO) as resp:
        assert resp.status == 503 and resp.content_type == "text/html"
        assert "<h1>503" in await resp.text()

    async with http.post(f"{sim.url}/_sim/grow", json={"n": 43}) as resp:
        assert (await resp.json())["totals"] == {task_id: 300}
    async with http.post(f"{sim.url}/_sim/expire-tokens", json={}) as resp:
        assert resp.status == 200
    async with http.get(f"{sim.url}/_sim/truth", params={"taskId": task_id, "size": 2}) as resp:
        truth = await resp.json()
    assert truth["total"] == 300 and [t["index"] for t in truth["rows"]] == [0, 1]
    assert truth["rows"][0]["url"] == sim.state.row(task_id, 0)["ACE760"]

    async with http.get(f"{sim.url}/_sim/stats") as resp:
        stats = await resp.json()
    assert stats["requests"] == {"token": 1}
    assert stats["statuses"] == {"token": {"503": 1}}
    assert stats["totals"] == {task_id: 300}

    async with http.post(f"{sim.url}/_sim/faults", json={"latency_ms": -1}) as resp:
        assert resp.status == 400


def test_simulator_grow_per_minute_appends_rows_over_time(task_id):
    seconds = [0.0]
    config = SimulatorConfig(task_ids=(task_id,), total=257, grow_per_minute=60)
    state = SimulatorState(config, monotonic=lambda: seconds[0])
    seconds[0] = 30.5
    state.tick()
    assert state.total(task_id) == 257 + 30
    seconds[0] = 61
    state.tick()
    assert state.total(task_id) == 257 + 61


def test_simulator_cli_arguments_map_to_config():
    config = config_from_args(
        parse_args(["--total", "10", "--rate-limit", "0", "--no-offset", "--task-id", "a"])
    )
    assert config.total == 10 and config.rate_limit is None and not config.include_offset
    assert config.task_ids == ("a",)


async def test_simulator_cli_prints_url_and_serves_until_interrupted(http):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jobstream.simulator",
        "--port",
        "0",
        "--total",
        "10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        url = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode().strip()
        assert url.startswith("http://127.0.0.1:")
        async with http.get(f"{url}/_sim/stats") as resp:
            assert (await resp.json())["totals"] == {"00f3b445-d8ec-44e8-88b2-4b971a228b1e": 10}
    finally:
        proc.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
