"""BazhuayuClient token handling (seed §15) against the simulator's /token."""

import asyncio
import json
import logging
import time

import pytest

from jobstream.errors import AuthError, SourceError


async def test_client_concurrent_first_calls_share_one_token(sim, client, task_id):
    await asyncio.gather(*(client.fetch_page(task_id, i * 10, 10) for i in range(5)))
    assert sim.state.stats.grants == {"password": 1}


async def test_client_token_expiry_mid_crawl_renews_and_continues(
    make_sim, make_client, crawl, task_id
):
    sim = await make_sim(token_ttl=1.0)
    client = make_client(sim)
    first = await client.fetch_page(task_id, 0, 100)

    await asyncio.sleep(1.1)
    rows, _ = await crawl(client, task_id, offset=first.next_offset)

    assert first.values() + rows == [sim.state.row(task_id, i) for i in range(257)]
    assert sim.state.stats.requests["token"] == 2
    assert sim.state.stats.grants == {"password": 1, "refresh_token": 1}


async def test_client_token_revoked_mid_crawl_401_renews_once_and_continues(
    make_sim, make_client, crawl, task_id
):
    # The token claims a day but dies after a second: only the 401 tells the client.
    sim = await make_sim(token_ttl=1.0, advertised_ttl=86400)
    client = make_client(sim)
    first = await client.fetch_page(task_id, 0, 100)

    await asyncio.sleep(1.1)
    rows, _ = await crawl(client, task_id, offset=first.next_offset)

    assert len(first.rows + rows) == 257
    # Each death of the token costs one 401 and one renewal, never a new login. Usually once;
    # on a loaded machine the rest of the crawl can outlast the renewed token's second too.
    dead = sim.state.stats.status_count("data", 401)
    assert dead >= 1
    assert sim.state.stats.grants == {"password": 1, "refresh_token": dead}


async def test_client_401_once_renews_token_and_succeeds(sim, client, task_id):
    await client.fetch_page(task_id, 0, 10)
    sim.state.expire_tokens()

    page = await client.fetch_page(task_id, 10, 10)

    assert page.values() == [sim.state.row(task_id, i) for i in range(10, 20)]
    assert sim.state.stats.status_count("data", 401) == 1
    assert sim.state.stats.requests["token"] == 2


async def test_client_dead_refresh_token_falls_back_to_password(sim, client, task_id):
    await client.fetch_page(task_id, 0, 10)
    sim.state.expire_tokens(refresh_too=True)

    await client.fetch_page(task_id, 10, 10)

    assert sim.state.stats.grants == {"password": 2, "refresh_token": 1}
    assert sim.state.stats.status_count("token", 400) == 1


async def test_client_fresh_token_rejected_again_raises_source_error(sim, client, task_id):
    await client.fetch_page(task_id, 0, 10)
    sim.state.faults.fail_next(2, status=401)

    with pytest.raises(SourceError, match="rejected a freshly issued token"):
        await client.fetch_page(task_id, 10, 10)
    assert sim.state.stats.status_count("data", 401) == 2


async def test_client_invalid_credentials_raise_auth_error_quickly_without_password(
    sim, make_client, task_id, caplog
):
    caplog.set_level(logging.DEBUG)
    password = "Tr0ub4dor&3-not-this"
    client = make_client(sim, password=password)

    started = time.perf_counter()
    with pytest.raises(AuthError) as caught:
        await client.fetch_page(task_id, 0, 10)

    assert time.perf_counter() - started < 0.5
    assert sim.state.stats.requests == {"token": 1}
    assert "Invalid.Grant" in str(caught.value) and "'demo'" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(client), caplog.text):
        assert password not in text


async def test_client_password_absent_from_logs_during_retries(sim, make_client, task_id, caplog):
    caplog.set_level(logging.DEBUG)
    sim.state.faults.fail_next(2, status=500, endpoint="token")
    client = make_client(sim)
    await client.fetch_page(task_id, 0, 10)
    assert "retrying" in caplog.text
    assert '"password"' not in caplog.text and "password=" not in caplog.text


async def test_client_legacy_token_shape_with_numeric_expires_in_works(
    make_sim, make_client, crawl, task_id
):
    sim = await make_sim(legacy_token_shape=True)
    rows, _ = await crawl(make_client(sim), task_id)
    assert len(rows) == 257
    assert sim.state.stats.requests["token"] == 1


async def test_client_token_renewed_five_minutes_before_expiry(make_sim, make_client, task_id):
    sim = await make_sim(token_ttl=301)
    now = [1000.0]
    client = make_client(sim, clock=lambda: now[0])

    await client.fetch_page(task_id, 0, 10)  # token valid until 1301, renewal due at 1001
    now[0] = 1000.9
    await client.fetch_page(task_id, 10, 10)
    assert sim.state.stats.grants == {"password": 1}

    now[0] = 1001.0
    await client.fetch_page(task_id, 20, 10)
    assert sim.state.stats.grants == {"password": 1, "refresh_token": 1}
    assert sim.state.stats.status_count("data", 401) == 0


async def test_client_day_long_token_reused_until_five_minutes_left(sim, make_client, task_id):
    now = [0.0]
    client = make_client(sim, clock=lambda: now[0])
    await client.fetch_page(task_id, 0, 10)

    now[0] = 86400 - 300.5
    await client.fetch_page(task_id, 10, 10)
    assert sim.state.stats.requests["token"] == 1

    now[0] = 86400 - 299
    await client.fetch_page(task_id, 20, 10)
    assert sim.state.stats.grants == {"password": 1, "refresh_token": 1}


async def test_client_token_service_down_keeps_using_valid_token(sim, make_client, task_id):
    now = [0.0]
    client = make_client(sim, clock=lambda: now[0], max_retries=1)
    await client.fetch_page(task_id, 0, 10)
    now[0] = 86400 - 100  # renewal due, token still valid
    sim.state.faults.fail_next(4, status=503, endpoint="token")

    page = await client.fetch_page(task_id, 10, 10)

    assert len(page.rows) == 10
    assert sim.state.stats.status_count("token", 503) == 4


async def test_client_echoed_secrets_cut_and_escaped_never_shown(
    make_sim, make_client, task_id, caplog
):
    """An API whose error messages repeat what was sent, JSON-escaped and cut mid-secret."""
    caplog.set_level(logging.DEBUG)
    sim = await make_sim(echo_secrets=True)
    password = "密码-Tr0ub4dor&3-long-enough-to-be-cut"
    with pytest.raises(AuthError) as caught:
        await make_client(sim, password=password).fetch_page(task_id, 0, 10)
    assert "Request: {" in str(caught.value)  # the echo is there, and cut

    client = make_client(sim)
    await client.fetch_page(task_id, 0, 10)
    sim.state.expire_tokens(refresh_too=True)  # the refresh grant fails, echoing its token
    await client.fetch_page(task_id, 10, 10)
    assert sim.state.stats.status_count("token", 400) == 2

    issued = [s for t in sim.state.tokens.issued for s in (t.access_token, t.refresh_token)]
    for text in (str(caught.value), caplog.text):
        for secret in (password, *issued):
            for form in (secret, json.dumps(secret)[1:-1]):
                assert form[:8] not in text, (form, text)
