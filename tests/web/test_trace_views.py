"""GET /trace and POST /replay in-process: their parameters refused with a 4xx that says why,
their tokens, and an answer for an id nobody has seen."""

from __future__ import annotations

import pytest

from jobstream.web import forwarding
from jobstream.web.responses import HttpError
from tests.harness import TASK_ID
from tests.web.conftest import Served, ServeFactory

ID = "5b0e1c1e-3f5a-5d7e-9a53-1f0d3c0f2b9e"


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("", 400, "give one of: url, id, or task_id and offset"),
        (f"id={ID}&url=https://x", 400, "got id, url"),
        ("id=not-a-uuid", 400, "id: expected a job id"),
        (f"id={ID}&id={ID}", 400, "give it once"),
        ("offset=5", 400, "got offset"),
        (f"task_id={TASK_ID}", 400, "got task_id"),
        (f"task_id={TASK_ID}&offset=-1", 400, "offset: expected an integer from 0"),
        ("task_id=nope&offset=1", 404, "unknown task_id"),
        ("url=", 400, "url: expected 1 to 4096 characters"),
        ("url=" + "x" * 5000, 400, "url: expected 1 to 4096 characters"),
        (f"id={ID}&nope=1", 400, "unknown query parameter"),
    ],
)
async def test_trace_bad_query_refused_with_reason(
    served: Served, query: str, status: int, says: str
) -> None:
    response = await served.client.get(f"/trace?{query}")
    body = await response.json()
    assert response.status == status and body["code"] == status, body
    assert says in body["message"], body


async def test_trace_unknown_id_not_seen(served: Served) -> None:
    response = await served.client.get(f"/trace?id={ID.upper()}")
    body = await response.json()
    assert response.status == 200, body
    data = body["data"]
    assert data["id"] == ID and data["sightings"] == []
    assert data["not_seen"]["reason"] == "unknown"


async def test_trace_by_url_is_the_id_of_the_normalized_url(served: Served) -> None:
    one = await (await served.client.get("/trace?url=http://JOBS.example.com/1?utm_x=1")).json()
    two = await (await served.client.get("/trace?url=https://jobs.example.com/1")).json()
    assert one["data"]["id"] == two["data"]["id"]


async def test_trace_and_replay_tokens(serve_factory: ServeFactory) -> None:
    served = await serve_factory(
        app={"read_token": "reader-token-1", "admin_token": "admin-token-1"}
    )
    client = served.client
    assert (await client.get(f"/trace?id={ID}")).status == 401
    reader = {"Authorization": "Bearer reader-token-1"}
    assert (await client.get(f"/trace?id={ID}", headers=reader)).status == 200
    assert (await client.post("/replay", headers=reader)).status == 401
    admin = {"Authorization": "Bearer admin-token-1"}
    bad = await client.post("/replay?filter_days=0", headers=admin)
    assert bad.status == 400 and "filter_days" in (await bad.json())["message"]
    # Valid, but no worker owns the task here: the answer of a worker still starting.
    assert (await client.post("/replay?filter_days=7", headers=admin)).status == 503
    assert (await client.post("/replay/stop", headers=admin)).status == 503


@pytest.mark.parametrize(
    ("query", "status", "says"),
    [
        ("fate=nope", 400, "fate"),
        ("limit=0", 400, "limit"),
        ("limit=51", 400, "limit"),
        ("task_id=nope", 404, "unknown task_id"),
        ("offset=3", 400, "unknown query parameter"),
    ],
)
async def test_trace_recent_bad_query_refused_with_reason(
    served: Served, query: str, status: int, says: str
) -> None:
    response = await served.client.get(f"/trace/recent?{query}")
    body = await response.json()
    assert response.status == status and body["code"] == status, body
    assert says in body["message"], body


async def test_trace_recent_valid_query_while_the_worker_starts_503_json(served: Served) -> None:
    # In-process no task has progress yet: the answer of a worker still starting, in JSON.
    response = await served.client.get(f"/trace/recent?task_id={TASK_ID}&fate=filtered")
    body = await response.json()
    assert response.status == 503 and body == {
        "code": 503,
        "message": "the worker is starting; retry shortly",
    }, body


def test_owner_unknown_while_a_rebalance_recovers_its_tables() -> None:
    """A worker that just took over a partition holds part of its tables until the rebalance's
    recovery ends: /status, /trace and /replay answer 503 then, not a short answer."""

    class Moving:
        rebalancing = True

        def tables_recovered(self) -> bool:
            return True  # an earlier rebalance's recovery

    with pytest.raises(HttpError) as caught:
        forwarding.owner_of_partition(Moving(), 0)  # type: ignore[arg-type]
    assert caught.value.code == 503 and "moving between workers" in caught.value.detail
    assert caught.value.headers["Retry-After"]
