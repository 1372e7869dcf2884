"""A cursor that lies, a source that resets, and per-task counts, all steered over HTTP."""

import json

import pytest

from tests.harness import TASK_ID, Simulator

OTHER_TASK = "7d9c2f4e-0000-4000-8000-000000000002"


def page_of(body: bytes) -> dict:
    return json.loads(body)["data"]


def shape(page: dict) -> tuple[int, int, int, int]:
    """(rows, offset, restTotal, total) of one answer."""
    return len(page["data"]), page["offset"], page["restTotal"], page["total"]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"kind": "jump", "skip": 30}, (50, 180, 77)),
        ({"kind": "long_page", "extra": 20, "cursor": "rows"}, (70, 170, 87)),
        ({"kind": "long_page", "extra": 20, "cursor": "size"}, (70, 150, 107)),
        ({"kind": "backwards", "back": 40}, (50, 60, 197)),
        ({"kind": "empty"}, (0, 100, 157)),
    ],
)
async def test_simulator_cursor_anomaly_fires_once_at_the_armed_offset_only(
    sim, make_api, spec, expected
):
    api = make_api(sim)
    honest = page_of(await api.page(100, 70))["data"]
    status, armed = await api.admin("POST", "/_sim/cursor", {**spec, "at_offset": 100})
    assert status == 200 and len(armed["armed"]) == 1

    elsewhere = page_of(await api.page(50, 50))
    lie = page_of(await api.page(100, 50))
    again = page_of(await api.page(100, 50))

    assert shape(elsewhere) == (50, 100, 157, 257)
    assert shape(lie) == (*expected, 257)
    assert lie["data"] == honest[: expected[0]]  # the rows themselves are never wrong
    assert shape(again) == (50, 150, 107, 257)
    _, after = await api.admin("GET", "/_sim/cursor")
    assert after == {"armed": [], "fired": {spec["kind"]: 1}}
    _, stats = await api.admin("GET", "/_sim/stats")
    assert stats["cursor"] == {spec["kind"]: 1}


async def test_simulator_cursor_times_fires_that_many_times_then_disarms(sim, make_api):
    api = make_api(sim)
    spec = {"kind": "backwards", "at_offset": 0, "back": 0, "times": 3}
    _, armed = await api.admin("POST", "/_sim/cursor", spec)
    assert armed["armed"][0]["times"] == 3

    offsets = [page_of(await api.page(0, 10))["offset"] for _ in range(4)]

    assert offsets == [0, 0, 0, 10]
    assert (await api.admin("GET", "/_sim/cursor"))[1]["fired"] == {"backwards": 3}


async def test_simulator_cursor_near_the_end_long_page_stops_at_total(sim, make_api):
    api = make_api(sim)
    await api.admin("POST", "/_sim/cursor", {"kind": "long_page", "at_offset": 240, "extra": 20})
    await api.admin("POST", "/_sim/cursor", {"kind": "empty", "at_offset": 257})
    assert shape(page_of(await api.page(240, 50))) == (17, 257, 0, 257)
    assert shape(page_of(await api.page(257, 50))) == (0, 257, 1, 257)  # claims more


async def test_simulator_cursor_armed_for_one_task_leaves_the_other_alone(
    make_sim, make_api, task_id
):
    sim = await make_sim(task_ids=(task_id, OTHER_TASK))
    api = make_api(sim)
    await api.admin("POST", "/_sim/cursor", {"kind": "jump", "at_offset": 0, "skip": 5})
    await api.admin("POST", "/_sim/cursor", {"kind": "empty", "at_offset": 0, "taskId": OTHER_TASK})
    _, armed = await api.admin("GET", "/_sim/cursor")
    assert [a["taskId"] for a in armed["armed"]] == [task_id, OTHER_TASK]  # default: first task

    assert shape(page_of(await api.page(0, 10, OTHER_TASK))) == (0, 0, 257, 257)
    assert shape(page_of(await api.page(0, 10, task_id))) == (10, 15, 242, 257)


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "sideways", "at_offset": 0},
        {"kind": "jump", "at_offset": -1},
        {"kind": "jump"},
        {"kind": "jump", "at_offset": 0, "taskId": "ghost"},
        {"kind": "jump", "at_offset": 0, "times": 0},
        {"kind": "long_page", "at_offset": 0, "cursor": "pages"},
        {"kind": "backwards", "at_offset": 0, "back": "5"},
        {"kind": "jump", "at_offset": 0, "bogus": 1},
    ],
)
async def test_simulator_cursor_bad_spec_answers_400_and_arms_nothing(sim, make_api, spec):
    api = make_api(sim)
    status, body = await api.admin("POST", "/_sim/cursor", spec)
    assert status == 400 and body["error"]["message"]
    assert (await api.admin("GET", "/_sim/cursor"))[1]["armed"] == []


async def test_simulator_cursor_clear_disarms_everything(sim, make_api):
    api = make_api(sim)
    await api.admin("POST", "/_sim/cursor", {"kind": "empty", "at_offset": 0})
    _, cleared = await api.admin("POST", "/_sim/cursor", {"clear": True})
    assert cleared["armed"] == []
    assert shape(page_of(await api.page(0, 10)))[0] == 10


async def test_simulator_reset_shrinks_total_and_truth_follows(sim, make_api, task_id):
    api = make_api(sim)
    before = page_of(await api.page(0, 100))["data"]

    status, reset = await api.admin("POST", "/_sim/reset", {"total": 100, "seed": 7})
    assert status == 200
    assert reset == {"taskId": task_id, "total": 100, "seed": 7, "totals": {task_id: 100}}

    after = page_of(await api.page(0, 100))
    truth = await api.truth(0, 100)
    assert shape(after) == (100, 100, 0, 100)
    assert [r["ACE760"] for r in after["data"]] == [t["url"] for t in truth]
    assert not {r["ACE760"] for r in after["data"]} & {r["ACE760"] for r in before}
    assert shape(page_of(await api.page(150, 50))) == (0, 150, 0, 100)

    await api.admin("POST", "/_sim/grow", {"n": 10})
    grown = page_of(await api.page(0, 200))
    assert shape(grown) == (110, 110, 0, 110) and grown["data"][:100] == after["data"]


async def test_simulator_reset_without_seed_takes_the_next_one(sim, make_api):
    api = make_api(sim)
    _, first = await api.admin("POST", "/_sim/reset", {"total": 50})
    _, second = await api.admin("POST", "/_sim/reset", {"total": 40})
    assert (first["seed"], second["seed"]) == (1, 2)
    status, _ = await api.admin("POST", "/_sim/reset", {"total": -1})
    assert status == 400


async def test_simulator_stats_count_data_requests_and_rows_by_task(make_sim, make_api, task_id):
    sim = await make_sim(task_ids=(task_id, OTHER_TASK))
    api = make_api(sim)
    await api.page(0, 100, task_id)
    await api.page(100, 100, task_id)
    await api.page(0, 10, OTHER_TASK)
    await api.admin("POST", "/_sim/faults", {"fail_next": {"n": 1, "status": 503}})
    async with api.session.get(
        f"{sim.url}/data/all", params={"taskId": OTHER_TASK, "offset": "10", "size": "10"}
    ) as resp:
        assert resp.status == 503

    _, stats = await api.admin("GET", "/_sim/stats")
    assert stats["tasks"] == {
        task_id: {"requests": 2, "rows": 200},
        OTHER_TASK: {"requests": 2, "rows": 10},
    }
    await api.admin("POST", "/_sim/stats/reset")
    assert (await api.admin("GET", "/_sim/stats"))[1]["tasks"] == {}


def test_simulator_harness_steers_cursor_reset_and_raw_pages_of_the_cli():
    sim = Simulator.start("--rate-limit", "0", "--total", "300", "--hostile-ratio", "0.05")
    try:
        armed = sim.cursor_fault("jump", at_offset=0, skip=5)
        assert armed["armed"][0]["skip"] == 5 and sim.cursor()["armed"] == armed["armed"]
        first = json.loads(sim.page_bytes(0, 10).decode("utf-8", errors="replace"))
        assert first["data"]["offset"] == 15
        assert any(t["hostile"] for t in sim.truth(size=300))

        assert sim.reset(120, seed=3)["totals"] == {TASK_ID: 120}
        assert sim.total() == 120 and len(sim.truth()) == 120
    finally:
        sim.stop()
