"""The doors (README "安全"): each one closed refuses with its status, each one open by default
lets the request through. Faust's own pages and the compose ports are the worker's and the
deployment's (tests/integration/test_doors_worker.py, tests/deploy)."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from jobstream.config import from_mapping
from jobstream.web.openapi import spec
from jobstream.web.routes import ROUTES
from tests.web.conftest import (
    Dataset,
    Served,
    ServeFactory,
    assert_json_error,
    config_for,
    serve,
)

ADMIN = "admin-door-token-for-tests"
READ = "read-door-token-for-tests"
# The data endpoints, each as a call that gets its ordinary answer once past the doors (no
# worker runs here: /status answers 503, as a worker that is still starting does).
READS = [
    ("/consume?timeout_ms=0&batch_size=1", 200),
    ("/status", 503),
]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def locked(_apps_of_tests: list[Served], dataset: Dataset) -> Served:
    """Both tokens set, over the dataset (one app for the module: its group joins once)."""
    config = config_for(
        dataset.bootstrap, dataset.topic, app={"admin_token": ADMIN, "read_token": READ}
    )
    served = await serve(config)
    _apps_of_tests.append(served)  # closed at the end of the run
    await served.warm_groups(0)
    return served


async def call(served: Served, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    response = await served.client.request(method, path, **kwargs)
    if response.content_type == "application/json":
        return response.status, await response.json()
    return response.status, await response.read()


@pytest.mark.parametrize(("path", "answered"), [*READS, ("/consume/stream", 200)])
@pytest.mark.parametrize(
    "headers",
    [{}, bearer("wrong"), {"Authorization": f"Basic {READ}"}],
    ids=["none", "wrong", "basic"],
)
async def test_doors_read_token_set_refuses_data_without_it_401(
    locked: Served, path: str, answered: int, headers: dict[str, str]
) -> None:
    status, body = await call(locked, "GET", path, headers=headers)
    assert_json_error(status, body, 401)
    assert READ not in str(body) and ADMIN not in str(body)


@pytest.mark.parametrize(("path", "answered"), READS)
@pytest.mark.parametrize("token", [READ, ADMIN], ids=["read", "admin"])
async def test_doors_read_token_or_admin_token_opens_data(
    locked: Served, path: str, answered: int, token: str
) -> None:
    status, _ = await call(locked, "GET", path, headers=bearer(token))
    assert status == answered


async def test_doors_read_token_opens_stream(locked: Served) -> None:
    response = await locked.client.get("/consume/stream", headers=bearer(READ))
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    response.close()


@pytest.mark.parametrize("path", ["/crawl/start", "/crawl/stop"])
async def test_doors_read_token_does_not_open_crawl_control(locked: Served, path: str) -> None:
    status, body = await call(locked, "POST", path, headers=bearer(READ))
    assert_json_error(status, body, 401)


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics", "/openapi.json", "/docs"])
async def test_doors_operations_endpoints_stay_open_with_tokens_set(
    locked: Served, path: str
) -> None:
    status, _ = await call(locked, "GET", path)
    assert status in (200, 503)  # /ready: no worker here


async def test_doors_without_read_token_data_is_open(served: Served) -> None:
    # The default: documented in the README as open, with a warning at start.
    status, body = await call(served, "GET", "/consume?timeout_ms=0&batch_size=1")
    assert status == 200 and body["count"] == 1


# -- requests from other sites -------------------------------------------------------------

OTHER_SITE = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # another port or subdomain of the same site
    {"Origin": "http://evil.example"},
    {"Origin": "null"},
]
OTHER_SITE_IDS = ["cross-site", "same-site", "origin", "null-origin"]


@pytest.mark.parametrize("headers", OTHER_SITE, ids=OTHER_SITE_IDS)
async def test_doors_consume_from_another_site_refused_403(
    served: Served, headers: dict[str, str]
) -> None:
    """An <img src=".../consume"> on any page would otherwise drain the group."""
    status, body = await call(served, "GET", "/consume?timeout_ms=0", headers=headers)
    assert_json_error(status, body, 403)


@pytest.mark.parametrize("path", ["/crawl/start", "/crawl/stop"])
@pytest.mark.parametrize("headers", OTHER_SITE, ids=OTHER_SITE_IDS)
async def test_doors_crawl_control_from_another_site_refused_403_even_with_json(
    served: Served, path: str, headers: dict[str, str]
) -> None:
    status, body = await call(served, "POST", path, json={}, headers=headers)
    assert_json_error(status, body, 403)


@pytest.mark.parametrize("path", ["/crawl/start", "/crawl/stop"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"data": "a=1", "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
        {"data": "{}", "headers": {"Content-Type": "text/plain"}},
    ],
    ids=["bare", "form", "text"],
)
async def test_doors_crawl_control_simple_post_refused_415(
    served: Served, path: str, kwargs: dict[str, Any]
) -> None:
    """What a page can send without the browser asking first (no admin token is set)."""
    status, body = await call(served, "POST", path, **kwargs)
    assert_json_error(status, body, 415)
    assert "application/json" in body["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},  # typed into the address bar
        {},  # curl, scripts
    ],
    ids=["same-origin", "none", "no-browser"],
)
async def test_doors_own_site_and_non_browsers_let_through(
    served: Served, headers: dict[str, str]
) -> None:
    status, _ = await call(served, "GET", "/consume?timeout_ms=0&batch_size=1", headers=headers)
    assert status == 200
    status, _ = await call(served, "POST", "/crawl/stop", json={}, headers=headers)
    assert status == 503  # past every door: the worker is starting


async def test_doors_origin_of_this_server_let_through(served: Served) -> None:
    own = f"http://{served.client.host}:{served.client.port}"
    status, _ = await call(served, "POST", "/crawl/stop", json={}, headers={"Origin": own})
    assert status == 503
    # Behind a proxy that names the public host.
    headers = {"Origin": "https://jobs.example.com", "X-Forwarded-Host": "jobs.example.com"}
    status, _ = await call(served, "POST", "/crawl/stop", json={}, headers=headers)
    assert status == 503


async def test_doors_token_bearing_post_needs_no_json(serve_factory: ServeFactory) -> None:
    guarded = await serve_factory(app={"admin_token": ADMIN})
    status, _ = await call(guarded, "POST", "/crawl/stop", headers=bearer(ADMIN))
    assert status == 503


def test_doors_described_in_openapi_with_the_read_token() -> None:
    document = spec(from_mapping({"app": {"read_token": READ}}), ROUTES)
    for path in ("/consume", "/consume/stream", "/status"):
        operation = document["paths"][path]["get"]
        assert operation["security"] == [{"bearerAuth": []}] and "401" in operation["responses"]
    for path in ("/crawl/start", "/crawl/stop"):  # no admin token: open, but not to other sites
        operation = document["paths"][path]["post"]
        assert "security" not in operation
        assert {"403", "415"} <= set(operation["responses"])
    assert "403" in document["paths"]["/consume"]["get"]["responses"]
    assert "security" not in document["paths"]["/health"]["get"]
    assert READ not in str(document)


def faust_pages(served: Served) -> list[str]:
    return [
        str(blueprint)
        for _, blueprint in served.app.web.blueprints._enabled
        if str(blueprint).startswith("faust.web.apps.")
    ]


async def test_doors_faust_pages_only_with_debug(
    served: Served, serve_factory: ServeFactory
) -> None:
    # Applied when a worker's server starts (tests/integration/test_web_worker.py asks for them).
    assert faust_pages(served) == []
    debugging = await serve_factory(app={"debug": True})
    assert "faust.web.apps.router:blueprint" in faust_pages(debugging)
