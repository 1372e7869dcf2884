"""POST /crawl/start and /crawl/stop against a real worker: the bearer token, the answer with the
new status, a stop that survives a restart, and a shutdown that ends open streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest

from tests.harness import http
from tests.web.conftest import Dataset, Stack, assert_json_error

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token-for-tests"


@pytest.fixture(scope="module")
def guarded(stack_factory: Callable[..., Stack]) -> Stack:
    stack = stack_factory(("--total", "300"), app={"admin_token": TOKEN}, crawler={"interval": 1})
    stack.worker.wait_status(lambda s: s["current_offset"] == 300 and s["status"] == "idle")
    return stack


def post(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return http("POST", url, headers=headers)


@pytest.mark.parametrize("token", [None, "wrong", ""])
def test_crawl_stop_without_valid_token_answers_401(guarded: Stack, token: str | None) -> None:
    status, body = post(f"{guarded.url}/crawl/stop", token)
    assert_json_error(status, body, 401)
    assert TOKEN not in str(body)
    assert guarded.worker.status()["status"] != "stopped"


def test_crawl_start_without_valid_token_answers_401(guarded: Stack) -> None:
    response = httpx.post(f"{guarded.url}/crawl/start", headers={"Authorization": "Basic eDp5"})
    assert_json_error(response.status_code, response.json(), 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_crawl_token_checked_before_parameters(guarded: Stack) -> None:
    status, body = post(f"{guarded.url}/crawl/stop?task_id=nope")
    assert_json_error(status, body, 401)
    status, body = post(f"{guarded.url}/crawl/stop?task_id=nope", TOKEN)
    assert_json_error(status, body, 404)


def test_crawl_stopped_survives_restart_and_start_resumes(guarded: Stack) -> None:
    status, body = post(f"{guarded.url}/crawl/stop", TOKEN)
    assert status == 200 and body["data"]["status"] == "stopped", body
    assert body["data"]["current_offset"] == 300

    # New rows wait at the source, but a stopped task is not crawled, not even after a restart
    # (the broker is embedded, memory only: the stop comes back from the SQLite mirror).
    guarded.sim.grow(200)
    assert guarded.worker.stop() == 0
    guarded.worker.start()
    guarded.worker.wait_ready()
    time.sleep(3)  # three crawl intervals
    after_restart = guarded.worker.status()
    assert (after_restart["status"], after_restart["current_offset"]) == ("stopped", 300)

    status, body = post(f"{guarded.url}/crawl/start", TOKEN)
    assert status == 200 and body["data"]["status"] in ("idle", "running"), body
    guarded.worker.wait_status(lambda s: s["current_offset"] == 500, timeout=30)


def test_crawl_start_open_without_token_and_warned_at_start(dataset: Dataset) -> None:
    """The dataset worker has no admin_token: it says so at start and lets anyone in."""
    assert "app.admin_token (ADMIN_TOKEN) is not set" in dataset.stack.worker.log()
    status, body = post(f"{dataset.url}/crawl/start")
    assert status == 200 and body["data"]["status"] in ("idle", "running"), body


def test_crawl_worker_shutdown_ends_open_streams_promptly(guarded: Stack) -> None:
    """Runs last in this module: it stops the module's worker."""
    ended = threading.Event()

    def listen() -> None:
        with httpx.stream("GET", f"{guarded.url}/consume/stream", timeout=60) as response:
            assert response.status_code == 200
            for _ in response.iter_raw():
                pass
        ended.set()

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(1.0)
    started = time.monotonic()
    assert guarded.worker.stop() == 0
    stopped_in = time.monotonic() - started
    assert ended.wait(5), "the stream outlived the worker"
    assert stopped_in < 15, stopped_in
    assert "SSE stream closed after" in guarded.worker.log()
