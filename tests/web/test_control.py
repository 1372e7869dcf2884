"""POST /crawl/start and /crawl/stop in-process: the bearer token, checked before anything
else, and what a worker that is still starting answers. Applying the commands is a real
worker's business: tests/integration/test_web_worker.py."""

from __future__ import annotations

import logging

import pytest
import pytest_asyncio

from tests.web.conftest import Served, ServeFactory, assert_json_error

TOKEN = "s3cret-token-for-tests"


@pytest_asyncio.fixture(loop_scope="session")
async def guarded(serve_factory: ServeFactory) -> Served:
    return await serve_factory(app={"admin_token": TOKEN})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "headers", [{}, bearer("wrong"), bearer(""), {"Authorization": "Basic eDp5"}]
)
@pytest.mark.parametrize("path", ["/crawl/start", "/crawl/stop"])
async def test_control_without_valid_token_answers_401(
    guarded: Served, path: str, headers: dict[str, str]
) -> None:
    response = await guarded.client.post(path, headers=headers)
    body = await response.json()
    assert_json_error(response.status, body, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in str(body)


async def test_control_token_checked_before_parameters(guarded: Served) -> None:
    response = await guarded.client.post("/crawl/stop?task_id=nope")
    assert_json_error(response.status, await response.json(), 401)
    response = await guarded.client.post("/crawl/stop?task_id=nope", headers=bearer(TOKEN))
    assert_json_error(response.status, await response.json(), 404)
    response = await guarded.client.post("/crawl/stop?bogus=1", headers=bearer(TOKEN))
    assert_json_error(response.status, await response.json(), 400)


async def test_control_valid_token_on_a_starting_worker_answers_503(guarded: Served) -> None:
    response = await guarded.client.post("/crawl/stop", headers=bearer(TOKEN))
    assert_json_error(response.status, await response.json(), 503)
    assert response.headers["Retry-After"]


async def test_control_open_without_token_and_warned_at_start(
    serve_factory: ServeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """No admin_token: the app says so when it starts, and lets anyone past the token check
    (here to the 503 of a worker that is still starting) who sends JSON; a bare POST, which
    any web page could send, is refused (tests/web/test_doors.py)."""
    with caplog.at_level(logging.WARNING, logger="jobstream.web.control"):
        served = await serve_factory()
    assert "app.admin_token (ADMIN_TOKEN) is not set" in caplog.text
    response = await served.client.post("/crawl/start", json={})
    assert_json_error(response.status, await response.json(), 503)
