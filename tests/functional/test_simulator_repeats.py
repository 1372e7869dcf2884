"""Repeats: the same posting collected again on a later day, by its task or (shared postings)
another one; the truth says which row each repeats and which posting every row carries."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import timedelta

import aiohttp

from jobstream.simulator import RowGenerator, RowOptions
from jobstream.simulator.state import SimulatorState
from jobstream.transform.ids import job_id_for_text, normalize_url
from tests.functional.conftest import BASE_CONFIG, TASK_ID

OTHER = "6a1e9d2c-5b7f-4c3a-9e8d-2f4b6c8a0e13"
DATES = {"aae397", "Collect_time", "ACE760"}


def state(total: int, clock=None, **options: object) -> SimulatorState:  # type: ignore[no-untyped-def]
    config = dataclasses.replace(
        BASE_CONFIG,
        task_ids=(TASK_ID, OTHER),
        total=total,
        rows=RowOptions(**options),  # type: ignore[arg-type]
        **({"clock": clock} if clock else {}),
    )
    return SimulatorState(config)


def test_simulator_repeats_leave_other_rows_as_without_them(fixed_now):
    plain = SimulatorState(dataclasses.replace(BASE_CONFIG, total=600))
    repeating = SimulatorState(
        dataclasses.replace(BASE_CONFIG, total=600, rows=RowOptions(repeat_ratio=0.3))
    )
    repeats = 0
    for i in range(600):
        if repeating.truth(TASK_ID, i).repeat_of is None:
            assert repeating.row(TASK_ID, i) == plain.row(TASK_ID, i)
        else:
            repeats += 1
    assert 120 < repeats < 240


def test_simulator_repeat_is_the_same_posting_collected_again_later(fixed_now):
    now = [fixed_now]
    sim = state(800, clock=lambda: now[0], repeat_ratio=0.3, shared_postings=True)
    now[0] = fixed_now + timedelta(days=2)
    sim.grow(400)
    checked = 0
    for task_id in (TASK_ID, OTHER):
        for i in range(1200):
            truth = sim.truth(task_id, i)
            ref = truth.repeat_of
            if ref is None:
                continue
            row, original = sim.row(task_id, i), sim.truth(ref.task_id, ref.index)
            source = sim.row(ref.task_id, ref.index)
            # The same posting: the same text and publish date, the URL spelled its own way.
            assert {k: v for k, v in row.items() if k not in DATES} == {
                k: v for k, v in source.items() if k not in DATES
            }
            assert truth.posting == original.posting and truth.posting.startswith("url:")
            assert normalize_url(row["ACE760"]) == truth.posting.removeprefix("url:")
            assert job_id_for_text(truth.expect_text) == job_id_for_text(original.expect_text)
            assert truth.publish_date == original.publish_date
            assert truth.collect_date >= original.collect_date
            checked += 1
    assert checked > 500


def test_simulator_shared_postings_repeat_only_rows_that_existed_before(fixed_now):
    sim = state(500, repeat_ratio=0.4, shared_postings=True)
    sim.grow(300)
    across = [
        (task_id, i, sim.truth(task_id, i).repeat_of)
        for task_id in (TASK_ID, OTHER)
        for i in range(800)
        if (ref := sim.truth(task_id, i).repeat_of) is not None and ref.task_id != task_id
    ]
    # The first batch repeats its own task only; the grown one also the other task's first 500.
    assert across and all(i >= 500 and ref.index < 500 for _, i, ref in across)
    own = [
        (i, ref)
        for i in range(800)
        if (ref := sim.truth(TASK_ID, i).repeat_of) is not None and ref.task_id == TASK_ID
    ]
    assert own and all(ref.index < i for i, ref in own)


def test_simulator_postings_and_job_ids_correspond_one_to_one(fixed_now):
    sim = state(1500, repeat_ratio=0.25, shared_postings=True, hostile_ratio=0.03)
    sim.grow(500)
    ids_of = defaultdict(set)
    for task_id in (TASK_ID, OTHER):
        for i in range(2000):
            truth = sim.truth(task_id, i)
            if truth.expect_text is not None:
                ids_of[truth.posting].add(job_id_for_text(truth.expect_text))
    ids = [next(iter(found)) for found in ids_of.values()]
    assert all(len(found) == 1 for found in ids_of.values())
    assert len(set(ids)) == len(ids)


def test_simulator_generator_without_earlier_rows_makes_no_repeats(fixed_now):
    gen = RowGenerator(TASK_ID, fixed_now, RowOptions(repeat_ratio=1.0))
    assert all(gen.truth(i).repeat_of is None for i in range(100))


async def test_simulator_truth_endpoint_marks_repeats(make_sim):
    sim = await make_sim(total=300, rows=RowOptions(repeat_ratio=0.5))
    url = f"{sim.url}/_sim/truth?taskId={TASK_ID}&offset=0&size=300"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        rows = (await response.json())["rows"]
    repeats = [r for r in rows if r["repeat_of"] is not None]
    assert repeats and all(r["repeat_of"]["task_id"] == TASK_ID for r in repeats)
    by_index = {r["index"]: r for r in rows}
    assert all(r["posting"] == by_index[r["repeat_of"]["index"]]["posting"] for r in repeats)
    assert all(r["posting"] for r in rows)
