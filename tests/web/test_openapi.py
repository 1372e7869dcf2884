"""The OpenAPI description against the views in-process (schemathesis: every default check, no
5xx, no answer the description contradicts), with both tokens set and with none, and the docs
page served from packaged assets.

The app has no worker, so /status and /crawl/* answer their documented 503; their bodies on a
real worker are checked against the same declarations in tests/integration/test_web_worker.py.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from jobstream.web.consume import BATCH_SIZE, TIMEOUT_MS
from jobstream.web.routes import ROUTES
from tests.web.conftest import Dataset, Served, config_for, serve

TOKEN = "schemathesis-token"
READ_TOKEN = "schemathesis-read-token"
GROUP = "schemathesis"
TOKENS = {"tokens": {"admin_token": TOKEN, "read_token": READ_TOKEN}, "open": {}}


@pytest.fixture(scope="module", params=list(TOKENS))
def documented(request: pytest.FixtureRequest, dataset: Dataset) -> Iterator[Served]:
    """The app served from a thread of its own: schemathesis and Hypothesis run in this one,
    and block it while they call. Once with both tokens set, once with none."""
    config = config_for(
        dataset.bootstrap,
        dataset.topic,
        app={**TOKENS[request.param], "max_consumer_groups": 4},
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    served = asyncio.run_coroutine_threadsafe(serve(config), loop).result(30)
    # The groups /consume's cases use, joined before the first case.
    asyncio.run_coroutine_threadsafe(served.warm_groups(0, GROUP), loop).result(30)
    try:
        yield served
    finally:
        asyncio.run_coroutine_threadsafe(served.close(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def get_json(url: str) -> Any:
    return httpx.get(url, timeout=10).json()


@pytest.fixture(scope="module")
def api_schema(documented: Served) -> Any:
    config = SchemathesisConfig.from_dict({"generation": {"database": "none"}})
    return schemathesis.openapi.from_dict(get_json(f"{documented.url}/openapi.json"), config=config)


WORKER_ONLY = {"/status", "/status/history", "/crawl/start", "/crawl/stop", "/ready"}
POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# Every operation but GET /consume/stream: an event stream never ends, so it cannot be fetched
# as one response; test_stream.py checks it with a real SSE client. Invalid input can only be
# generated for operations that take parameters.
CASES = [
    *[
        (method, path, mode)
        for method, path in [
            ("GET", "/consume"),
            ("GET", "/status"),
            ("GET", "/status/history"),
            ("GET", "/messages/recent"),
            ("POST", "/crawl/start"),
            ("POST", "/crawl/stop"),
        ]
        for mode in (POSITIVE, NEGATIVE)
    ],
    *[
        ("GET", path, POSITIVE)
        for path in (
            "/metrics",
            "/health",
            "/ready",
            "/kafka",
            "/openapi.json",
            "/docs",
            "/dashboard",
            "/dashboard/app.js",
            "/dashboard/app.css",
            "/dashboard/settings",
            "/",
        )
    ],
]


def within_limits(case: Any) -> None:
    """Keep generated calls short and within the app's limits, which the description
    documents as 503s but which are not what this test is after: waits of up to 30 s for
    data that does not come, a new consumer group (and its join) per generated name, and
    answers of a thousand jobs to validate."""
    query = case.query or {}
    if case.path == "/consume":
        for param, most in ((TIMEOUT_MS, 20), (BATCH_SIZE, 20)):
            value = query.get(param.name, most)
            # Only valid values are made smaller: an invalid one (negative mode) must stay
            # invalid, or the app rightly accepts what the generator meant to be refused.
            if isinstance(value, int) and param.low <= value <= param.high:
                query[param.name] = min(value, most)
        case.query = query
    group = query.get("group")
    if isinstance(group, str) and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", group):
        query["group"] = GROUP


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
# The app served from this process draws from the `random` module (aiokafka's retry jitter)
# while Hypothesis generates a case in another thread; Hypothesis takes that for the strategy.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
def test_openapi_schemathesis_finds_no_5xx_and_no_contradiction(
    documented: Served, api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    """Every default check: no 5xx, status codes, content types, bodies and headers as
    described, valid input accepted, invalid input rejected, the token enforced."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def run(case: Any) -> None:
        within_limits(case)
        protected = bool(documented.app.settings.app.admin_token)
        case.call_and_validate(
            base_url=documented.url,
            headers={"Authorization": f"Bearer {TOKEN}"} if protected else {},
            timeout=30,
            # Without a worker these answer their documented 503 (the other checks hold them
            # to the description); everything else must never answer 5xx.
            excluded_checks=[not_a_server_error] if path in WORKER_ONLY else [],
        )

    run()


def test_openapi_describes_every_route(documented: Served) -> None:
    spec = get_json(f"{documented.url}/openapi.json")
    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == set(ROUTES)
    stop = spec["paths"]["/crawl/stop"]["post"]
    if documented.app.settings.app.admin_token:
        assert stop["security"] == [{"bearerAuth": []}] and "requestBody" not in stop
    else:
        assert "security" not in stop and stop["requestBody"]["required"] is True


def test_openapi_docs_page_loads_only_packaged_assets(documented: Served) -> None:
    page = httpx.get(f"{documented.url}/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "style-src 'self';" in policy
    assert "unsafe-inline" not in policy and "default-src 'none'" in policy
    sources = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    for source in sources:
        if source.startswith("/docs/static/"):
            asset = httpx.get(f"{documented.url}{source}")
            assert asset.status_code == 200 and asset.content, source
    script = httpx.get(f"{documented.url}/docs/static/docs.js").text
    assert 'url: "/openapi.json"' in script
    assert httpx.get(f"{documented.url}/docs/static/nothing.js").status_code == 404
