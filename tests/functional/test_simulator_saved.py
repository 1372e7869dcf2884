"""The simulator's rows kept in a file (`state_file`, jobstream/simulator/saved.py): a simulator
started again serves, over HTTP, exactly the rows the first one served, and grows from there."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jobstream.simulator.rows import RowOptions
from tests.functional.conftest import FIXED_NOW, TASK_ID, MakeApi, MakeSim, SimApi

OTHER_TASK = "6a1e9d2c-5b7f-4c3a-9e8d-2f4b6c8a0e13"


def ticking(start: datetime) -> Callable[[], datetime]:
    """A calendar clock an hour later at each reading: each batch of rows gets its own anchor,
    and a simulator started again reads a later time than any it saved."""
    hours = itertools.count()
    return lambda: start + timedelta(hours=next(hours))


async def page(api: SimApi, offset: int) -> Any:
    """A page's data as served (its `requestId` differs each time)."""
    return json.loads(await api.page(offset, 50))["data"]


async def test_simulator_saved_restart_serves_same_rows_and_grows_on(
    make_sim: MakeSim, make_api: MakeApi, tmp_path: Path
) -> None:
    state = str(tmp_path / "data" / "demo-api.jsonl")
    first = await make_sim(total=120, state_file=state, clock=ticking(FIXED_NOW))
    api = make_api(first)
    await api.admin("POST", "/_sim/grow", {"n": 30})
    await api.admin("POST", "/_sim/grow", {"n": 7, "taskId": TASK_ID})
    served = [await page(api, offset) for offset in (0, 50, 100, 150)]
    truth = await api.truth()
    await first.stop()

    later = FIXED_NOW + timedelta(days=3)
    second = await make_sim(total=120, state_file=state, clock=ticking(later))
    api = make_api(second)

    assert second.state.restored and second.state.total(TASK_ID) == 157
    assert [await page(api, offset) for offset in (0, 50, 100, 150)] == served
    assert await api.truth() == truth
    # Growth goes on from there, anchored at the new clock, and is kept too.
    status, body = await api.admin("POST", "/_sim/grow", {"n": 3})
    assert status == 200 and body["totals"][TASK_ID] == 160
    grown = await api.truth(157, 3)
    await second.stop()
    third = await make_sim(total=120, state_file=state, clock=ticking(later))
    assert third.state.total(TASK_ID) == 160
    assert await make_api(third).truth(157, 3) == grown


async def test_simulator_saved_reset_new_task_and_cut_line(
    make_sim: MakeSim, make_api: MakeApi, tmp_path: Path
) -> None:
    path = tmp_path / "sim.jsonl"
    first = await make_sim(total=40, state_file=str(path))
    await make_api(first).admin("POST", "/_sim/reset", {"taskId": TASK_ID, "total": 25})
    first.state.grow(5)
    await first.stop()
    # A crash while a line was written: the last line is cut short.
    path.write_text(path.read_text()[:-10])

    second = await make_sim(total=40, state_file=str(path), task_ids=(TASK_ID, OTHER_TASK))

    # The reset is kept, the cut growth lost; a task the file does not know starts afresh.
    assert second.state.total(TASK_ID) == 25
    assert second.state.total(OTHER_TASK) == 40
    assert second.state.tasks[TASK_ID].options.seed == 1


async def test_simulator_saved_other_row_options_start_afresh(
    make_sim: MakeSim, tmp_path: Path
) -> None:
    path = str(tmp_path / "sim.jsonl")
    first = await make_sim(total=40, state_file=path)
    first.state.grow(10)
    await first.stop()

    second = await make_sim(total=40, state_file=path, rows=RowOptions(junk_ratio=0.5))

    assert not second.state.restored and second.state.total(TASK_ID) == 40
