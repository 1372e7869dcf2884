"""BazhuayuClient retries (seed §9): 5xx, gateway pages, timeouts, 429 and its Retry-After."""

import asyncio
import logging
import socket
import time

import pytest

from jobstream.errors import SourceError
from jobstream.simulator.options import SimAccount
from tests.functional.conftest import TASK_ID


async def test_client_rate_limited_honours_retry_after_then_succeeds(sim, client, task_id):
    await client.fetch_page(task_id, 0, 10)
    sim.state.faults.fail_next(1, status=429)

    started = time.perf_counter()
    page = await client.fetch_page(task_id, 10, 10)

    assert time.perf_counter() - started >= 0.95  # Retry-After: 1, not the 0.01 s backoff
    assert len(page.rows) == 10
    assert sim.state.stats.status_count("data", 429) == 1


async def test_client_leaky_bucket_429_slows_crawl_without_losing_rows(
    make_sim, make_client, crawl, task_id
):
    # Room for one request at a time, refilled at 2 a second: the token call fills the bucket,
    # so the first data call is refused.
    sim = await make_sim(total=80, rate_limit=2.0, rate_burst_seconds=0.5)
    client = make_client(sim)

    rows, _ = await crawl(client, task_id, size=100)

    assert rows == [sim.state.row(task_id, i) for i in range(80)]
    assert sim.state.stats.status_count("data", 429) == 1


async def test_client_rate_limit_waits_are_bounded(sim, make_client, task_id):
    client = make_client(sim, max_rate_limit_waits=1)
    await client.fetch_page(task_id, 0, 10)
    sim.state.faults.fail_next(5, status=429)

    with pytest.raises(SourceError, match=r"still rate limited \(HTTP 429\) after 1 waits"):
        await client.fetch_page(task_id, 10, 10)
    assert sim.state.stats.status_count("data", 429) == 2


async def test_client_transient_5xx_then_success_retries(sim, client, task_id, caplog):
    caplog.set_level(logging.WARNING)
    sim.state.faults.fail_next(3, status=500)

    page = await client.fetch_page(task_id, 0, 10)

    assert page.values() == [sim.state.row(task_id, i) for i in range(10)]
    assert sim.state.stats.requests["data"] == 4
    lefts = [r.getMessage() for r in caplog.records if "attempts left" in r.getMessage()]
    assert len(lefts) == 3
    assert "task_id=" in lefts[0] and "offset=0" in lefts[0]
    assert [m.split("(")[-1] for m in lefts] == [
        "3 attempts left)",
        "2 attempts left)",
        "1 attempts left)",
    ]


async def test_client_5xx_forever_raises_source_error_after_max_retries_plus_one(
    sim, client, task_id
):
    sim.state.faults.fail_next(100, status=502)

    with pytest.raises(SourceError, match="gave up after 4 attempts"):
        await client.fetch_page(task_id, 0, 10)
    assert sim.state.stats.requests["data"] == 4  # max_retries=3


async def test_client_gateway_html_503_is_retried(sim, client, task_id, caplog):
    caplog.set_level(logging.WARNING)
    sim.state.faults.fail_next(2, status=503)

    page = await client.fetch_page(task_id, 0, 10)

    assert len(page.rows) == 10
    assert sim.state.stats.status_count("data", 503) == 2
    assert "non-JSON body" in caplog.text and "<html>" in caplog.text


async def test_client_truncated_json_body_is_retried(sim, client, task_id):
    sim.state.faults.fail_next(1, status=200, body="truncated")
    page = await client.fetch_page(task_id, 0, 10)
    assert len(page.rows) == 10
    assert sim.state.stats.status_count("data", 200) == 2


async def test_client_timeout_is_retried(sim, make_client, task_id):
    client = make_client(sim, request_timeout=0.2)
    await client.fetch_page(task_id, 0, 10)
    sim.state.faults.stall_next(1, 0.5)

    page = await client.fetch_page(task_id, 10, 10)

    assert len(page.rows) == 10
    assert sim.state.stats.requests["data"] == 3


async def test_client_token_endpoint_5xx_is_retried(sim, client, task_id):
    sim.state.faults.fail_next(2, status=502, endpoint="token")
    await client.fetch_page(task_id, 0, 10)
    assert sim.state.stats.requests["token"] == 3


async def test_client_connection_refused_raises_source_error_after_retries(make_client, task_id):
    with socket.socket() as sock:  # a port nothing listens on once this block closes it
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    calls: list[tuple[str, int | None, float]] = []
    client = make_client(f"http://127.0.0.1:{port}", on_request=lambda *a: calls.append(a))

    with pytest.raises(SourceError, match="gave up after 4 attempts"):
        await client.fetch_page(task_id, 0, 10)
    assert [(endpoint, status) for endpoint, status, _ in calls] == [("token", None)] * 4


async def test_client_on_request_reports_endpoint_status_and_seconds(sim, make_client, task_id):
    calls: list[tuple[str, int | None, float]] = []
    sim.state.faults.latency_ms = 30
    client = make_client(sim, on_request=lambda *a: calls.append(a))
    sim.state.faults.fail_next(1, status=500)

    await client.fetch_page(task_id, 0, 10)

    assert [(e, s) for e, s, _ in calls] == [("token", 200), ("data", 500), ("data", 200)]
    assert all(seconds >= 0.025 for _, _, seconds in calls)


async def test_client_min_interval_spaces_requests(sim, make_client, task_id):
    client = make_client(sim, min_interval=0.1)
    started = time.perf_counter()
    await asyncio.gather(*(client.fetch_page(task_id, i * 10, 10) for i in range(4)))
    # token + 4 data calls = 5 requests, at least 4 intervals apart
    assert time.perf_counter() - started >= 0.39


async def test_client_429_of_one_account_pauses_that_account_only(make_sim, make_client):
    # Two accounts, each with its own client and limiter (as a worker has one per account): a
    # 429 of team_b holds team_b's calls for its Retry-After, never the default account's.
    other = "b0b0b0b0-0000-4000-8000-000000000001"
    sim = await make_sim(
        total=100,
        task_ids=(TASK_ID, other),
        accounts=(SimAccount("team_b", "secret-b", None, (other,)),),
    )
    sim.state.faults.set_rate_limit(1.0, 2.0, "team_b")  # the token call and one page at once
    team_b = make_client(sim, username="team_b", password="secret-b")
    default = make_client(sim)
    await team_b.fetch_page(other, 0, 10)
    await default.fetch_page(TASK_ID, 0, 10)

    refused = asyncio.create_task(team_b.fetch_page(other, 10, 10))
    await wait_for(lambda: sim.state.stats.status_count("data", 429) == 1)
    started = time.perf_counter()
    for offset in range(10, 60, 10):
        await default.fetch_page(TASK_ID, offset, 10)
    took = time.perf_counter() - started
    assert not refused.done()  # team_b still waits out its Retry-After: 1
    page = await refused

    assert took < 0.5, took
    assert len(page.rows) == 10
    stats = sim.state.stats.to_json()["accounts"]
    assert stats["team_b"]["statuses"].get("429", 0) >= 1
    assert stats["demo"]["statuses"].get("429", 0) == 0


async def wait_for(probe, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not probe():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)
