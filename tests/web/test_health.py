"""/health and /ready when the worker cannot go on (its embedded broker died: the worker then
exits, tests/integration/test_embedded.py), and while all is well."""

from __future__ import annotations

from tests.web.conftest import Served, ServeFactory, assert_json_error


async def test_health_alive_answers_200(served: Served) -> None:
    response = await served.client.get("/health")
    assert response.status == 200
    assert await response.json() == {"code": 0, "data": {"alive": True}}


async def test_health_failure_answers_503_on_health_and_ready(serve_factory: ServeFactory) -> None:
    served = await serve_factory()
    reason = "the embedded broker (Tansu, pid 1) exited with code -9 while the worker was running"
    served.app.failure = lambda: reason  # type: ignore[method-assign]

    for path, expected in (("/health", f"unhealthy: {reason}"), ("/ready", "healthy")):
        response = await served.client.get(path)
        body = await response.json()
        assert_json_error(response.status, body, 503)
        assert expected in body["message"]
